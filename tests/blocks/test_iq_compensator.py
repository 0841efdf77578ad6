"""iq_compensator: the block is the streaming core, whatever the chunking."""
import numpy as np
import pytest
from gnuradio import blocks, gr

from gnuradio import gdm
from gnuradio.gdm.ofdm.compensation import BlindIQCompensator
from gnuradio.gdm.sim.impairments import IQImbalance


def test_block_compensates_like_the_core():
    rng = np.random.default_rng(0)
    x = ((rng.standard_normal((2, 60000)) + 1j * rng.standard_normal((2, 60000))) / np.sqrt(2)).astype(np.complex64)
    y = IQImbalance(1.0, 6.0).process(x)
    tb = gr.top_block()
    blk = gdm.iq_compensator(2, memory=2e4)
    sinks = [blocks.vector_sink_c() for _ in range(2)]
    for c in range(2):
        tb.connect(blocks.vector_source_c(y[c].tolist()), (blk, c), sinks[c])
    tb.run()
    got = np.stack([np.asarray(s.data()) for s in sinks])
    assert got.shape == y.shape
    circ = lambda v: abs(np.mean(v[:, -20000:] ** 2)) / np.mean(np.abs(v[:, -20000:]) ** 2)  # noqa: E731
    assert circ(y) > 0.05 and circ(got) < 0.01
    ref = BlindIQCompensator(2, 2e4)
    w_core = None
    for i in range(0, y.shape[1], 4096):
        ref.process(y[:, i:i + 4096])
    w_core = ref.r2 / (2 * ref.p)
    np.testing.assert_allclose(blk.image_coefficients(), w_core, atol=0.01)


def test_bad_memory_is_refused():
    with pytest.raises(ValueError, match="memory must be >= 1 sample"):
        gdm.iq_compensator(2, memory=0)
