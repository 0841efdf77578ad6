"""The self-supervised risks are unbiased on a toy Gaussian case, against closed forms."""
import numpy as np

from gnuradio.gdm.adaptation.objective import holdout_risk, linear_sure, mc_divergence, sure

P, NV, N = 6, 0.3, 40000


def _toy(seed=0):
    rng = np.random.default_rng(seed)
    A = rng.standard_normal((P, P)) + 1j * rng.standard_normal((P, P))
    C = A @ A.conj().T / P  # channel covariance
    L = np.linalg.cholesky(C)
    cn = (lambda *s: (rng.standard_normal(s) + 1j * rng.standard_normal(s)) / np.sqrt(2))
    h = cn(N, P) @ L.T
    y = h + np.sqrt(NV) * cn(N, P)
    W = 0.6 * np.eye(P) + 0.1 * (rng.standard_normal((P, P)) + 1j * rng.standard_normal((P, P)))  # any filter
    return rng, C, h, y, W


def test_pilot_sure_is_unbiased_for_any_linear_filter():
    _, C, h, y, W = _toy()
    I = np.eye(P)
    closed = np.real(np.trace((I - W) @ C @ (I - W).conj().T) + NV * np.trace(W @ W.conj().T))
    s = linear_sure(y, W, NV)
    se = s.std() / np.sqrt(N)
    assert abs(s.mean() - closed) < 4 * se
    # the oracle error of the same frames agrees, and dropping the divergence term is far off
    assert abs(np.mean(np.sum(np.abs(h - y @ W.T) ** 2, 1)) - closed) < 4 * se
    naive = np.sum(np.abs(y - y @ W.T) ** 2, 1) - P * NV
    assert abs(naive.mean() - closed) > 20 * se


def test_sure_minimiser_is_the_lmmse_of_the_noise_corrected_moments():
    _, C, h, y, W = _toy(1)
    S = y.T @ y.conj() / N  # E[y y^H] = C + nv I
    C_hat = S - NV * np.eye(P)
    assert np.linalg.norm(C_hat - C) / np.linalg.norm(C) < 0.03
    W_opt = np.eye(P) - NV * np.linalg.inv(S)
    base = linear_sure(y, W_opt, NV).mean()
    rng = np.random.default_rng(2)
    for _ in range(5):  # any perturbation raises the (sample-averaged) SURE
        D = 0.05 * (rng.standard_normal((P, P)) + 1j * rng.standard_normal((P, P)))
        assert linear_sure(y, W_opt + D, NV).mean() > base
    np.testing.assert_allclose(W_opt, C_hat @ np.linalg.inv(C_hat + NV * np.eye(P)), atol=1e-10)


def test_holdout_risk_is_unbiased_for_interpolation():
    _, C, h, y, _ = _toy(3)
    K, J = np.arange(0, P, 2), np.arange(1, P, 2)  # keep even, predict odd
    G = C[np.ix_(J, K)] @ np.linalg.inv(C[np.ix_(K, K)] + NV * np.eye(K.size)) * 0.8  # a deliberately off predictor
    pred = y[:, K] @ G.T
    closed = np.real(np.trace(C[np.ix_(J, J)] - G @ C[np.ix_(K, J)] - C[np.ix_(J, K)] @ G.conj().T
                              + G @ (C[np.ix_(K, K)] + NV * np.eye(K.size)) @ G.conj().T)) / J.size
    r = holdout_risk(y[:, J], pred, NV)
    se = r.std() / np.sqrt(N)
    assert abs(r.mean() - closed) < 4 * se
    assert abs((r + NV).mean() - closed) > 20 * se  # without the noise correction: biased


def test_mc_divergence_of_a_linear_filter_and_sure_of_a_black_box():
    rng, C, h, y, W = _toy(4)
    f = (lambda v: v @ W.T)
    div = mc_divergence(f, y[:4000], 1e-3, rng)
    assert abs(div.mean() - 2 * np.real(np.trace(W))) < 4 * div.std() / np.sqrt(div.size)
    s = sure(y[:4000], f(y[:4000]), NV, div)
    np.testing.assert_allclose(s.mean(), linear_sure(y[:4000], W, NV).mean(), rtol=0.05)
