import numpy as np
import pmt
import pytest
from gnuradio import blocks, gr


class MsgCollector(gr.basic_block):
    """Collects messages of one port into a list (python objects)."""

    def __init__(self):
        gr.basic_block.__init__(self, "collector", None, None)
        self.items = []
        self.message_port_register_in(pmt.intern("in"))
        self.set_msg_handler(pmt.intern("in"), self.handle)

    def handle(self, msg):
        self.items.append(msg)

    def drained(self):
        while self.nmsgs(pmt.intern("in")):
            self.items.append(self.delete_head_nowait(pmt.intern("in")))
        return self.items


@pytest.fixture
def collector():
    return MsgCollector


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
