"""PA-distortion canceller: on a noiseless Saleh-distorted frame it removes most of the
distortion (blind fit and known model), without a PA it leaves the symbols as they are, bad
parameters are refused with the reason."""
import numpy as np
import pytest

from gnuradio.gdm import FrameSpec, denoising
from gnuradio.gdm.denoising.pa_model import fit_gain_table, hat_weights
from gnuradio.gdm.ofdm.modem import demodulate, modulate, occupied
from gnuradio.gdm.ofdm.transceiver import random_payload, transmit
from gnuradio.gdm.ofdm import framing
from gnuradio.gdm.sim.impairments import SalehPA

SPEC = FrameSpec.preset("nr72")


def _frames(n=4, pa=None, noise=0.0, seed=0):
    """Equalized frames as an ideal receiver sees them: the PA output through the FFT, divided
    by the gain a channel estimate would absorb (least squares on the pilots)."""
    nb = framing.max_payload_bytes(SPEC.info_bits_per_frame)
    x, grids, _ = transmit([random_payload(i, nb, seed) for i in range(n)], range(n), SPEC)
    if pa is not None:
        x = pa.process(x)
    y = x.reshape(1, n, -1)
    Y = np.stack([occupied(demodulate(y[:, b], SPEC), SPEC)[0] for b in range(n)])[:, None]
    p = SPEC.any_pilot_mask
    g = np.sum(Y[..., p] * np.conj(grids[..., p]), -1) / np.sum(np.abs(grids[..., p]) ** 2, -1)
    X = Y / g[..., None, None]
    rng = np.random.default_rng(seed)
    X = X + np.sqrt(noise / 2) * (rng.standard_normal(X.shape) + 1j * rng.standard_normal(X.shape))
    return grids, X.astype(np.complex64), np.full(X.shape, max(noise, 1e-4), np.float32)


def _mse(X, x):
    d = SPEC.data_mask
    return float(np.mean(np.abs(X[..., d] - x[..., d]) ** 2))


@pytest.mark.parametrize("pa", ["blind", "saleh"])
def test_removes_most_of_the_pa_distortion(pa):
    x, X, V = _frames(pa=SalehPA(6.0))
    before = _mse(X, x)
    assert before > 0.02  # ~SDR 13 dB: the distortion is there to remove
    dn = denoising.make("pa_cancel", SPEC, pa=pa, backoff_db=6.0)
    Xc, Vc = dn.denoise(X, V)
    after = _mse(Xc, x)
    assert 10 * np.log10(before / after) > 10, (before, after)
    d = SPEC.data_mask
    assert np.array_equal(Xc[..., ~d], X[..., ~d])  # pilots pass through
    assert Vc.shape == V.shape and np.all(Vc > 0)


def test_without_a_pa_it_is_the_identity():
    x, X, V = _frames(noise=0.01)
    Xc, Vc = denoising.make("pa_cancel", SPEC).denoise(X, V)
    # within a small fraction of the noise: the fitted gain table is linear, nothing to cancel
    assert _mse(Xc, X) < 0.02 * 0.01
    assert np.allclose(Vc, V, rtol=0.05)
    assert abs(_mse(Xc, x) - _mse(X, x)) < 0.02 * _mse(X, x)


def test_gain_table_fit_recovers_a_known_gain():
    rng = np.random.default_rng(1)
    r = rng.rayleigh(0.7, 4000)
    t = r * np.exp(2j * np.pi * rng.random(r.size))
    true = np.array([1.0, 0.98, 0.95 + 0.02j, 0.9 + 0.05j, 0.82 + 0.08j, 0.73 + 0.1j, 0.63 + 0.12j, 0.55 + 0.13j])
    basis = (t[:, None] * hat_weights(r)).T
    c = fit_gain_table(basis, basis.T @ true, np.ones(r.size), ridge=0.0)
    assert np.allclose(c, true, atol=1e-6)


@pytest.mark.parametrize("opts, msg", [
    (dict(pa="tube"), "unknown PA model 'tube'; valid: blind, saleh, rapp"),
    (dict(backoff_db=float("nan")), "backoff_db must be a finite number"),
    (dict(iterations=0), "iterations must be an integer in"),
    (dict(knots=(0.5, 1.0, 2.0)), "knots must be at least 3 ascending amplitudes starting at 0"),
])
def test_bad_parameters_are_refused(opts, msg):
    with pytest.raises(ValueError, match=msg.replace("(", r"\(")):
        denoising.make("pa_cancel", SPEC, **opts)
