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


@pytest.mark.parametrize("backoff", [0, 2, 5])
def test_compiled_acquisition_equals_numpy(backoff):
    # fine timing, CP CFO stage and the CFO-corrected, back-off-rolled bodies: same frames
    from gnuradio.gdm.sim.channel import StreamChannel

    x, _, _ = transmit([random_payload(i, 100) for i in range(12)], range(12), SPEC)
    ch = StreamChannel(1, 2, SPEC.sample_rate, "TDL-C", 300e-9, 50, 15, cfo_hz=-3100, seed=7)
    y = ch.process(np.concatenate([np.zeros((1, 555)), x, np.zeros((1, 3000))], 1)).astype(np.complex64)

    # a noise stretch with short bursts that cross the coarse threshold but hold no plateau
    rng = np.random.default_rng(9)
    burst = (0.3 * (rng.standard_normal((2, 6000)) + 1j * rng.standard_normal((2, 6000)))).astype(np.complex64)
    for b in range(500, 6000, 900):
        burst[:, b:b + 40] = burst[:, b - 64:b - 24]  # a 40-sample echo: metric spikes, no plateau
    y = np.concatenate([burst, y], 1)
    rejected = []

    def run(compiled):
        s = FrameSynchronizer(SPEC, 2, backoff=backoff)
        if not compiled:
            s._kernel = None
        out = []
        for i in range(0, y.shape[1], 4000):
            s.push(y[:, i:i + 4000])
            out += s.pop_frames()
        rejected.append(s.detections_rejected)
        return out

    ref, out = run(False), run(True)
    assert len(out) == len(ref) == 12 and rejected[0] == rejected[1] > 0
    for a, b in zip(out, ref):
        assert a.sample_offset == b.sample_offset
        assert abs(a.cfo_hz - b.cfo_hz) < 1e-3 and abs(a.noise_var / b.noise_var - 1) < 1e-6
        err = np.sum(np.abs(a.grid - b.grid) ** 2) / np.sum(np.abs(b.grid) ** 2)
        assert err < 1e-10, err


def test_compiled_input_check_equals_numpy():
    # NaN, Inf and magnitudes whose squares overflow float32 are zeroed and flagged per sample
    # column (any antenna), the same with the kernel, the numpy form, arrays or a list of rows
    rng = np.random.default_rng(8)
    x = (rng.standard_normal((2, 500)) + 1j * rng.standard_normal((2, 500))).astype(np.complex64)
    x[0, 10], x[1, 20], x[0, 30], x[1, 40] = np.nan, np.inf, 3e19, complex(1, np.nan)
    out = []
    for compiled, rows in ((True, list(x)), (False, list(x)), (True, x), (False, x)):
        s = FrameSynchronizer(SPEC, 2)
        if not compiled:
            s._kernel = None
        s.push(rows[:, :200] if not isinstance(rows, list) else [r[:200] for r in rows])
        s.push(rows[:, 200:] if not isinstance(rows, list) else [r[200:] for r in rows])
        out.append((s._buf.copy(), s._bad.copy(), s.nonfinite_samples))
    for buf, bad, count in out:
        np.testing.assert_array_equal(buf, out[0][0])
        np.testing.assert_array_equal(bad, out[0][1])
        assert count == 4 and set(np.flatnonzero(bad)) == {10, 20, 30, 40}
    b = out[0][0]
    assert b[0, 10] == b[1, 20] == b[0, 30] == b[1, 40] == 0 and b[1, 10] == x[1, 10]  # the bad samples only
    with pytest.raises(ValueError, match="sample arrays of one length"):
        FrameSynchronizer(SPEC, 2).push([x[0], x[1, :10]])
