import numpy as np
import pytest
from scipy import signal

from gnuradio.gdm.sim import impairments as imp
from gnuradio.gdm.sim.channel import StreamChannel


def _ofdm_like(n=200000, seed=0):
    rng = np.random.default_rng(seed)
    return ((rng.standard_normal(n) + 1j * rng.standard_normal(n)) * np.sqrt(72 / 128 / 2)).astype(np.complex64)[None]


def test_pa_models_compress_peaks_and_saleh_rotates():
    x = _ofdm_like()
    for pa in (imp.RappPA(3.0), imp.SalehPA(3.0)):
        y = pa.process(x)
        assert np.abs(y).max() < 0.8 * np.abs(x).max()
        small = np.abs(x) < 0.05
        assert np.allclose(np.abs(y[small]), np.abs(x[small]), rtol=0.05)  # unit small-signal gain
    y = imp.SalehPA(3.0).process(x)
    big = np.abs(x) > 1.0
    assert np.mean(np.angle(y[big] / x[big])) > 0.1  # AM/PM
    with pytest.raises(ValueError, match="valid: none, rapp, saleh"):
        imp.Impairments(pa="ghost").tx_chain(1)


def test_wiener_phase_variance_grows_with_linewidth():
    n = 1920  # 1 ms: variance 2 pi * 100 Hz * 1 ms = 0.63 rad^2, small enough not to wrap
    ends = [np.angle(imp.WienerPhaseNoise(100.0, 1.92e6, seed=s).process(np.ones((1, n), np.complex64))[0, -1])
            for s in range(400)]
    assert np.isclose(np.var(ends), 2 * np.pi * 100 * n / 1.92e6, rtol=0.2)


def test_mask_phase_noise_follows_the_mask():
    fs = 1.92e6
    pn = imp.MaskPhaseNoise([(1e3, -70.0), (1e4, -80.0), (1e5, -100.0), (1e6, -120.0)], fs, seed=2)
    y = np.concatenate([pn.process(np.ones((1, 50000), np.complex64)) for _ in range(8)], axis=1)[0]
    f, p = signal.welch(np.unwrap(np.angle(y)), fs=fs, nperseg=16384, return_onesided=False)
    level = 10 * np.log10(np.mean(p[(np.abs(f) > 9e3) & (np.abs(f) < 11e3)]))
    assert abs(level - (-80.0)) < 3.0


def test_iq_imbalance_image_rejection_and_adc_sqnr():
    iq = imp.IQImbalance(1.0, 5.0)
    t = np.arange(4096)
    tone = np.exp(2j * np.pi * 0.05 * t)[None].astype(np.complex64)
    spec = np.abs(np.fft.fft(iq.process(tone)[0])) ** 2
    assert np.isclose(10 * np.log10(spec[205] / spec[-205]), iq.irr_db, atol=0.5)
    x = _ofdm_like(100000)
    for bits, sqnr_min in ((4, 15.0), (8, 38.0)):
        y = imp.QuantizingADC(bits).process(x)
        sqnr = 10 * np.log10(np.mean(np.abs(x) ** 2) / np.mean(np.abs(y - x) ** 2))
        assert sqnr > sqnr_min, (bits, sqnr)


def test_channel_applies_impairments_and_is_chunk_invariant_without_them():
    x = _ofdm_like(20000)
    ch = StreamChannel(1, 2, 1.92e6, "flat", 0, 0, None, impairments=imp.Impairments(pa="rapp", pa_backoff_db=0.0))
    y = ch.process(x)
    assert np.abs(y).max() < 0.6 * np.abs(x).max()  # Rapp at 0 dB back-off clips the peaks
    drift = StreamChannel(1, 1, 1.92e6, "flat", 0, 0, None, impairments=imp.Impairments(cfo_drift_hz_s=1e6))
    z = drift.process(np.ones((1, 19200), np.complex64))
    f_end = np.angle(z[0, -1] * np.conj(z[0, -2])) * 1.92e6 / (2 * np.pi)
    assert abs(abs(f_end) - 1e4) < 200  # 1 MHz/s for 10 ms -> 10 kHz
