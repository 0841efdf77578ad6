import numpy as np
import pytest

from gnuradio.gdm import FrameSpec, estimation
from gnuradio.gdm.metrics import nmse_db
from gnuradio.gdm.ofdm.modem import build_grid
from gnuradio.gdm.sim.awgn import complex_noise
from gnuradio.gdm.sim.grid import ChannelConfig, grid_channels

SPEC = FrameSpec.preset("nr72")
CFG = ChannelConfig("TDL-C", 300e-9, 0.0)


def _received(H, spec, snr, rng):
    X = build_grid(np.zeros((H.shape[0], spec.n_tx, spec.n_data)), spec)
    Y = np.einsum("brtsk,btsk->brsk", H, X)
    return Y + complex_noise(rng, Y.shape, 10 ** (-snr / 10))


def test_nmse_ordering_tdl_c_300ns_all_snrs():
    """Issue #3: LS >= LS+interp >= LMMSE >= genie at every SNR from -5 to 30 dB."""
    rng = np.random.default_rng(2024)
    H = grid_channels(SPEC, CFG, 400, rng=rng)
    ests = [estimation.make("ls", SPEC), estimation.make("ls_interp", SPEC),
            estimation.make("lmmse", SPEC, source=CFG, seed=7), estimation.make("genie", SPEC, config=CFG)]
    for snr in range(-5, 31, 5):
        Y = _received(H, SPEC, snr, rng)
        n = [nmse_db(e.estimate(Y, 10 ** (-snr / 10)), H) for e in ests]
        assert n[0] >= n[1] >= n[2] - 0.05 and n[2] >= n[3] - 0.05, (snr, n)
        # LS error is the noise: NMSE ~ -SNR
        assert abs(n[0] + snr) < 1.0 + (snr > 20) * 1.0


def test_two_tx_streams_and_noise_estimate():
    spec = SPEC.replace(n_tx=2)
    rng = np.random.default_rng(1)
    H = grid_channels(spec, ChannelConfig("TDL-A", 100e-9, 50), 100, n_rx=2, rng=rng)
    Y = _received(H, spec, 20, rng)
    nv = estimation.estimate_noise_var(Y, spec)
    assert np.allclose(10 * np.log10(nv), -20, atol=1.0)
    for name in ("ls_interp", "lmmse"):
        Hh = estimation.make(name, spec, n_rx=2).estimate(Y)  # noise_var estimated from pilots
        assert Hh.shape == H.shape
        assert nmse_db(Hh, H) < -12, name


def test_registry_errors_name_valid_estimators():
    with pytest.raises(ValueError, match="valid estimators: .*diffusion.*ls, ls_interp, lmmse, genie"):
        estimation.make("kalman", SPEC)
    with pytest.raises(ValueError, match=r"\[B, 1, 14, 72\]"):
        estimation.make("ls", SPEC).estimate(np.zeros((2, 1, 14, 64)))
    with pytest.raises(ValueError, match="genie needs the true channel config"):
        estimation.make("genie", SPEC).estimate(np.zeros((1, 1, 14, 72)), 1.0)


def test_fast_genie_equals_full_covariance_lmmse():
    from gnuradio.gdm.estimation.lmmse import LMMSE
    from gnuradio.gdm.sim.grid import genie_covariance
    rng = np.random.default_rng(3)
    for cfg in (ChannelConfig("TDL-B", 200e-9, 300.0), ChannelConfig("TDL-D", 100e-9, 100.0)):
        spec = SPEC.replace(n_tx=2)
        H = grid_channels(spec, cfg, 20, n_rx=2, rng=rng)
        Y = _received(H, spec, 10, rng)
        a = estimation.make("genie", spec, 2, config=cfg).estimate(Y, 0.1)
        b = LMMSE(spec, 2, covariance=genie_covariance(spec, cfg)).estimate(Y, 0.1)
        assert np.allclose(a, b, atol=1e-3)
        per_frame = estimation.make("genie", spec, 2).estimate(Y, 0.1, configs=[cfg] * 20)
        assert np.allclose(a, per_frame)
