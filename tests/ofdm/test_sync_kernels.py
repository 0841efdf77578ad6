"""The compiled Schmidl-Cox metric equals the numpy reference, also on a trimmed (strided) buffer."""
import numpy as np
import pytest

from gnuradio.gdm import FrameSpec
from gnuradio.gdm.ofdm import sync_kernels
from gnuradio.gdm.ofdm.sync import FrameSynchronizer
from gnuradio.gdm.ofdm.transceiver import random_payload, transmit

pytestmark = pytest.mark.skipif(sync_kernels.sc_metric is None, reason="numba not installed")
SPEC = FrameSpec.preset("nr72")


def test_compiled_metric_matches_numpy(monkeypatch):
    x, _, _ = transmit([random_payload(i, 40) for i in range(3)], range(3), SPEC)
    rng = np.random.default_rng(4)
    y = np.concatenate([x, x]) + 0.05 * (rng.standard_normal((2, x.shape[1])) + 1j * rng.standard_normal((2, x.shape[1])))
    s = FrameSynchronizer(SPEC, 2)
    s.push(y.astype(np.complex64))
    s.pop_frames()  # trims the buffer: the kernel then reads a strided view
    assert s._kernel is not None and not s._buf.flags.c_contiguous
    start, n = s._base + 10, s._buf.shape[1] - 10 - 2 * s.L - 5
    M, P = s._metric(start, n)
    s._kernel = None
    M_ref, P_ref = s._metric(start, n)
    assert M.max() > 0.5  # the preambles are in there
    np.testing.assert_allclose(M, M_ref, atol=1e-9)
    np.testing.assert_allclose(P, P_ref, atol=1e-6 * np.abs(P_ref).max())
