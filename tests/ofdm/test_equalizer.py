import numpy as np
import pytest

from gnuradio.gdm.ofdm.equalizer import equalize


def _setup(n_rx, n_tx, snr=30, seed=0):
    rng = np.random.default_rng(seed)
    shp = (4, n_rx, n_tx, 16, 32)
    H = ((rng.standard_normal(shp) + 1j * rng.standard_normal(shp)) / np.sqrt(2)).astype(np.complex64)
    X = np.exp(1j * np.pi / 2 * rng.integers(0, 4, (4, n_tx, 16, 32))).astype(np.complex64)
    nv = 10 ** (-snr / 10)
    N = np.sqrt(nv / 2) * (rng.standard_normal((4, n_rx, 16, 32)) + 1j * rng.standard_normal((4, n_rx, 16, 32)))
    Y = np.einsum("brtsk,btsk->brsk", H, X) + N
    return Y, H, X, nv


@pytest.mark.parametrize("method,n_rx,n_tx", [("mrc", 2, 1), ("zf", 2, 2), ("lmmse", 2, 2), ("lmmse", 4, 2), ("lmmse", 4, 1)])
def test_recovers_symbols_and_reports_noise(method, n_rx, n_tx):
    Y, H, X, nv = _setup(n_rx, n_tx)
    Xh, V = equalize(Y, H, np.full(4, nv), method)
    assert Xh.shape == X.shape and V.shape == X.shape
    err = np.abs(Xh - X) ** 2
    assert np.median(err) < 0.01
    # the reported post-equalization noise variance is the error variance of each RE
    assert 0.8 < np.mean(err / V) < 1.25


def test_zero_forcing_exact_without_noise():
    Y, H, X, _ = _setup(2, 2, snr=300)
    Xh, _ = equalize(Y, H, np.full(4, 1e-30), "zf")
    assert np.allclose(Xh, X, atol=1e-3)


def test_bad_requests_are_explained():
    Y, H, _, nv = _setup(2, 2)
    with pytest.raises(ValueError, match="MRC needs a single tx"):
        equalize(Y, H, nv, "mrc")
    with pytest.raises(ValueError, match="valid: mrc, zf, lmmse"):
        equalize(Y, H, nv, "ml")
    with pytest.raises(ValueError, match="n_rx >= n_tx"):
        equalize(Y[:, :1], H[:, :1], nv, "zf")


@pytest.mark.parametrize("method", ["zf", "lmmse"])
@pytest.mark.parametrize("n_rx", [2, 4])
def test_two_stream_closed_form_equals_the_matrix_form(method, n_rx):
    from gnuradio.gdm.ofdm.equalizer import _matrices

    rng = np.random.default_rng(n_rx)
    shape = (3, n_rx, 2, 14, 72)
    H = ((rng.standard_normal(shape) + 1j * rng.standard_normal(shape)) / np.sqrt(2)).astype(np.complex64)
    H[0, :, 1] = H[0, :, 0] * 0.99  # nearly collinear streams: badly conditioned
    Y = (rng.standard_normal((3, n_rx, 14, 72)) + 1j * rng.standard_normal((3, n_rx, 14, 72))).astype(np.complex64)
    nv = np.array([0.01, 0.1, 1.0], np.float32)
    x, v = equalize(Y, H, nv, method)
    nvb = nv[:, None, None, None]
    xr, vr = _matrices(Y, H, nvb, method)
    good = (slice(1, 3),)  # the well-conditioned frames: float32 agreement
    np.testing.assert_allclose(x[good], xr[good], rtol=2e-3, atol=2e-4)
    np.testing.assert_allclose(v[good], vr[good], rtol=2e-3, atol=1e-6)
    assert np.isfinite(x).all() and np.isfinite(v).all() and (v > 0).all()
