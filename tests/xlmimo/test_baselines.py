"""Classical XL-MIMO estimators recover sparse channels at high SNR; whitening is right."""
import numpy as np
import pytest

from gnuradio.gdm.sim import nearfield as nf
from gnuradio.gdm.xlmimo import baselines as bl
from gnuradio.gdm.xlmimo import ops

CFG = nf.NearFieldConfig(n_subcarriers=4)


def _nmse_db(Hh, H):
    return 10 * np.log10(np.sum(np.abs(Hh - H) ** 2) / np.sum(np.abs(H) ** 2))


def _channel(theta, rho, rng, K=4):
    """Sum of paths with the given sin-directions and inverse distances (rho = 0: far field)."""
    b = ops.steering_rho(np.asarray(theta), np.asarray(rho), CFG)          # [L, N]
    g = (rng.standard_normal((len(theta), K)) + 1j * rng.standard_normal((len(theta), K))) / np.sqrt(2)
    return (np.sqrt(CFG.n_ant / len(theta)) * b.T @ g).astype(np.complex64)[None]


def _observe(H, P, snr_db, rng):
    W = nf.random_combiners(rng, P, CFG.n_rf, CFG.n_ant)
    nv = 10 ** (-snr_db / 10)
    return nf.observe(rng, H, W, nv), W, nv


def test_whitening_gives_unit_noise():
    rng = np.random.default_rng(0)
    W = nf.random_combiners(rng, 3, CFG.n_rf, CFG.n_ant)
    Y = nf.observe(rng, np.zeros((3000, CFG.n_ant, 1), np.complex64), W, 0.3)
    y, A = ops.whiten(Y, W)
    C = np.einsum("bq,br->qr", y[..., 0], y[..., 0].conj()) / 3000
    assert np.allclose(C, 0.3 * np.eye(48), atol=0.05)
    # and the model is preserved: y = A h for a noiseless channel
    H = nf.generate_channels(rng, CFG, 1)
    y0, A0 = ops.whiten(nf.observe(rng, H, W, 0.0), W)
    assert np.allclose(y0[0], A0[0] @ H[0], atol=1e-3)


def test_ls_is_exact_without_noise_and_refuses_underdetermined():
    rng = np.random.default_rng(1)
    H = nf.generate_channels(rng, CFG, 2)
    Y, W, _ = _observe(H, 20, 300, rng)
    assert _nmse_db(bl.ls(Y, W), H) < -40
    Y, W, _ = _observe(H, 8, 30, rng)
    with pytest.raises(ValueError, match="P\\*N_RF >= N"):
        bl.ls(Y, W)


def test_swomp_recovers_on_grid_far_field_channel():
    rng = np.random.default_rng(2)
    grid = ops.angle_grid(CFG.n_ant)
    H = _channel(grid[[40, 100, 181]], [0, 0, 0], rng)
    Y, W, nv = _observe(H, 4, 30, rng)                    # Q = 64 << N = 256
    assert _nmse_db(bl.swomp(Y, W, nv, CFG), H) < -25


def test_somp_recovers_on_grid_near_field_channel_where_swomp_cannot():
    rng = np.random.default_rng(3)
    th, rho = ops.polar_grid(CFG)
    idx = [np.flatnonzero((rho > 0.1) & (th > 0.2))[0], np.flatnonzero((rho > 0.05) & (th < -0.3))[0]]
    H = _channel(th[idx], rho[idx], rng)
    Y, W, nv = _observe(H, 4, 30, rng)
    e_somp = _nmse_db(bl.somp(Y, W, nv, CFG, max_atoms=2), H)
    e_swomp = _nmse_db(bl.swomp(Y, W, nv, CFG, max_atoms=2), H)
    assert e_somp < -25
    assert e_swomp > e_somp + 10                          # far-field dictionary misses the curvature


def test_sigw_refines_off_grid_near_field_paths():
    rng = np.random.default_rng(4)
    theta, rho = np.array([0.1234, -0.4567]), np.array([1 / 7.3, 1 / 16.1])
    H = _channel(theta, rho, rng)
    Y, W, nv = _observe(H, 4, 30, rng)
    e_sigw = _nmse_db(bl.sigw(Y, W, nv, CFG, max_paths=2), H)
    e_somp = _nmse_db(bl.somp(Y, W, nv, CFG, max_atoms=2), H)
    assert e_sigw < -25 and e_sigw < e_somp - 5
    y, A = ops.whiten(Y, W)
    _, th_hat, rho_hat, _ = bl.sigw_single(y[0], A[0], CFG, nv, *bl._polar(CFG, 1.2, None), max_paths=2)
    order = np.argsort(th_hat)[::-1]
    assert np.allclose(th_hat[order], theta, atol=2e-3)
    assert np.allclose(1 / rho_hat[order], 1 / rho, rtol=0.1)


def test_vp_gradient_matches_finite_differences():
    rng = np.random.default_rng(5)
    H = _channel([0.3, -0.2], [0.08, 0.02], rng)
    Y, W, nv = _observe(H, 4, 10, rng)
    y, A = ops.whiten(Y, W)
    scale = np.array([128.0, 12.0])
    p = np.array([0.3 * 128 + 0.3, -0.2 * 128 - 0.2, 0.07 * 12, 0.03 * 12])
    f, g, _ = bl._vp_objective(p, y[0], A[0], CFG, scale)
    for i in range(4):
        e = np.zeros(4)
        e[i] = 1e-5
        num = (bl._vp_objective(p + e, y[0], A[0], CFG, scale)[0]
               - bl._vp_objective(p - e, y[0], A[0], CFG, scale)[0]) / 2e-5
        assert num == pytest.approx(g[i], rel=1e-3, abs=1e-6 * abs(f))
