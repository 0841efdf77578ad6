import numpy as np
import pytest

from gnuradio.gdm import FrameSpec
from gnuradio.gdm.ofdm.modem import occupied
from gnuradio.gdm.ofdm.sync import FrameSynchronizer
from gnuradio.gdm.ofdm.transceiver import random_payload, transmit
from gnuradio.gdm.sim.channel import StreamChannel

SPEC = FrameSpec.preset("nr72")


def _frames(n, gap=0, seed=0):
    x, grids, _ = transmit([random_payload(i, 100) for i in range(n)], range(n), SPEC)
    if gap:
        x = np.concatenate([x.reshape(1, n, -1), np.zeros((1, n, gap), np.complex64)], 2).reshape(1, -1)
    return x, grids


def _run(y, chunk=3000, n_rx=2):
    s = FrameSynchronizer(SPEC, n_rx)
    out = []
    for i in range(0, y.shape[1], chunk):
        s.push(y[:, i:i + chunk])
        out += s.pop_frames()
    return out + s.flush(), s


@pytest.mark.parametrize("gap", [0, 777])
def test_back_to_back_and_gaps_timing_cfo(gap):
    x, grids = _frames(30, gap)
    ch = StreamChannel(1, 2, SPEC.sample_rate, "TDL-A", 30e-9, 0, 25, cfo_hz=2500, seed=3)
    y = ch.process(np.concatenate([np.zeros((1, 1234)), x], 1))
    frames, s = _run(y)
    assert len(frames) == 30
    starts = np.array([f.sample_offset for f in frames])
    true = 1234 + ch.latency + np.arange(30) * (SPEC.frame_len + gap)
    assert np.abs(starts - true).max() <= 1
    assert np.allclose([f.cfo_hz for f in frames], 2500, atol=60)
    nv_db = np.array([10 * np.log10(f.noise_var) for f in frames])
    assert abs(nv_db.mean() + 25) < 0.5 and np.abs(nv_db + 25).max() < 1.5
    # The demodulated grid matches the channel truth x the transmitted grid.
    f = frames[5]
    H = ch.frame_truth(SPEC, 1234 + 5 * (SPEC.frame_len + gap), f.sample_offset, f.cfo_hz)
    err = occupied(f.grid, SPEC) - H[:, 0] * grids[5, 0]
    assert 10 * np.log10(np.mean(np.abs(err) ** 2)) < -23


def test_chunking_does_not_change_results():
    x, _ = _frames(8)
    y = StreamChannel(1, 2, SPEC.sample_rate, "TDL-C", 300e-9, 100, 20, seed=4).process(x)
    a, _ = _run(y, chunk=997)
    b, _ = _run(y, chunk=20000)
    assert [f.sample_offset for f in a] == [f.sample_offset for f in b]
    assert np.allclose(a[3].grid, b[3].grid, atol=1e-4)


def test_noise_only_zeros_and_huge_values_produce_no_frames():
    rng = np.random.default_rng(0)
    noise = (rng.standard_normal((2, 50000)) + 1j * rng.standard_normal((2, 50000))).astype(np.complex64)
    for y in (noise, np.zeros((2, 50000), np.complex64), noise * 1e30):
        frames, _ = _run(y)
        assert frames == []


def test_nonfinite_samples_flag_the_frame_and_keep_going():
    x, _ = _frames(6)
    y = StreamChannel(1, 2, SPEC.sample_rate, "TDL-A", 30e-9, 0, 25, seed=5).process(x)
    y[:, 2 * SPEC.frame_len + 500] = np.nan
    y[1, 2 * SPEC.frame_len + 900] = np.inf
    frames, s = _run(y)
    flags = [f.nonfinite for f in frames]
    assert len(frames) == 6 and flags[2] and sum(flags) == 1
    assert s.nonfinite_samples == 2
    assert all(np.isfinite(f.grid).all() for f in frames)


def test_wrong_shape_is_refused():
    s = FrameSynchronizer(SPEC, 2)
    with pytest.raises(ValueError, match=r"n_rx=2"):
        s.push(np.zeros((3, 100), np.complex64))


def test_detects_most_frames_at_low_snr_in_flat_fading():
    """1x2 flat Rayleigh at 6 dB: only frames with both antennas in a deep fade are missed, and
    nothing is detected that is not a frame."""
    spec = FrameSpec.preset("nr72", modulation="qpsk")
    x, _ = _frames(200)
    y = StreamChannel(1, 2, spec.sample_rate, "flat", 0, 300.0, 6.0, seed=1).process(
        np.concatenate([x, np.zeros((1, spec.frame_len), np.complex64)], 1))
    frames, s = _run(y)
    starts = np.arange(200) * spec.frame_len + 8
    good = [np.min(np.abs(starts - f.sample_offset)) <= 2 for f in frames]
    assert all(good) and len(frames) >= 185
