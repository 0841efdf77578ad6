import numpy as np

from gnuradio.gdm import FrameSpec
from gnuradio.gdm.ofdm.modem import demodulate, occupied
from gnuradio.gdm.ofdm.transceiver import random_payload, transmit
from gnuradio.gdm.sim.channel import StreamChannel

SPEC = FrameSpec.preset("nr72")


def test_truth_matches_noiseless_demodulation_with_doppler_cfo_and_offset():
    x, grids, _ = transmit([random_payload(i, 50) for i in range(3)], range(3), SPEC)
    ch = StreamChannel(1, 2, SPEC.sample_rate, "TDL-C", 300e-9, 300.0, None, cfo_hz=700, timing_offset=2.5, seed=2)
    y = ch.process(np.concatenate([x, np.zeros((1, 100), np.complex64)], 1))
    for b in range(3):
        start = b * SPEC.frame_len + ch.latency + 2  # receiver starts 0.5 sample early
        g = occupied(demodulate(y * np.exp(-2j * np.pi * 700 * (np.arange(y.shape[1]) - start) / SPEC.sample_rate),
                                SPEC, start), SPEC)
        H = ch.frame_truth(SPEC, b * SPEC.frame_len, start, 700)
        err = g - H[:, 0] * grids[b, 0]
        assert 10 * np.log10(np.mean(np.abs(err) ** 2) / np.mean(np.abs(g) ** 2)) < -25


def test_chunked_processing_is_identical_and_snr_is_per_re():
    rng = np.random.default_rng(0)
    x = (rng.standard_normal((2, 9000)) + 1j * rng.standard_normal((2, 9000))).astype(np.complex64)
    a = StreamChannel(2, 2, 1.92e6, "TDL-B", 100e-9, 50, 10.0, seed=1).process(x)
    c = StreamChannel(2, 2, 1.92e6, "TDL-B", 100e-9, 50, 10.0, seed=1)
    b = np.concatenate([c.process(x[:, i:i + 1000]) for i in range(0, 9000, 1000)], 1)
    assert np.allclose(a, b, atol=1e-5)
    n = StreamChannel(1, 1, 1.92e6, "flat", 0, 0, 10.0, seed=1).process(np.zeros((1, 50000), np.complex64))
    assert np.isclose(np.mean(np.abs(n) ** 2), 0.1, rtol=0.03)


def test_bad_port_shape():
    ch = StreamChannel(2, 2, 1.92e6)
    try:
        ch.process(np.zeros((1, 10), np.complex64))
    except ValueError as e:
        assert "n_tx=2" in str(e)
    else:
        raise AssertionError
