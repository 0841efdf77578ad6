"""Stream helpers for block tests (a module of its own: importing them from ``conftest`` clashes
with tests/fuzz/conftest.py when both folders run in one pytest call)."""
import numpy as np
import pmt
from gnuradio import blocks, gr


def vec_source(frames: np.ndarray, vlen: int, tags=()):
    """frames [..., vlen] -> vector_source with optional tags."""
    data = np.ascontiguousarray(frames).reshape(-1)
    if data.dtype == np.complex64 or np.iscomplexobj(data):
        return blocks.vector_source_c(data.astype(np.complex64).tolist(), False, vlen, list(tags))
    return blocks.vector_source_f(data.astype(np.float32).tolist(), False, vlen, list(tags))


def tag(offset: int, key: str, value):
    from gnuradio.gdm.blocks._common import to_pmt
    t = gr.tag_t()
    t.offset, t.key, t.value = offset, pmt.intern(key), to_pmt(value)
    return t
