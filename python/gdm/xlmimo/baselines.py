"""Classical XL-MIMO channel estimators for the hybrid-combiner uplink (after Cui & Dai,
"Channel estimation for extremely large-scale MIMO: far-field or near-field?", IEEE TCOM 2022):

- ``ls``:    generalised least squares (noise-whitened pseudo-inverse); needs P N_RF >= N.
- ``swomp``: simultaneous weighted OMP on the angle-domain (DFT) dictionary (far-field model).
- ``somp``:  simultaneous OMP on the polar-domain dictionary (near-field on-grid model).
- ``sigw``:  simultaneous iterative gridless weighted: polar-domain detection of one path at a time,
             then a gridless refinement of every detected (direction, inverse distance) pair by
             minimising the whitened residual with the path gains projected out (variable
             projection, L-BFGS-B with analytic gradients).

All take observations Y [B, P, N_RF, K] and combiners W [B, P, N_RF, N] (or [P, N_RF, N] shared),
the per-antenna noise variance, and return H_hat complex64 [B, N, K]. "Weighted" = the noise is
whitened through the combiner Gram matrix; every method works on the whitened model y = A h + n.
The greedy methods add atoms, common to all subcarriers, until the residual power per
observation drops to the noise variance (or ``max_atoms``).
"""
from __future__ import annotations

import numpy as np
from scipy.optimize import minimize

from ..sim.nearfield import NearFieldConfig
from .ops import (ConsistencyOperator, angle_dictionary, as_batch, polar_dictionary,
                  steering_rho, whiten)


def _noise_vec(noise_var, B):
    return np.broadcast_to(np.asarray(noise_var, float), (B,)).astype(float)


def ls(Y, W, noise_var=None, cfg: NearFieldConfig | None = None) -> np.ndarray:
    """GLS estimate pinv(A) y per subcarrier. Raises if P N_RF < N (underdetermined)."""
    Y, W, squeeze = as_batch(Y, W)
    y, A = whiten(Y, W)
    if A.shape[1] < A.shape[2]:
        raise ValueError(f"LS needs P*N_RF >= N; got {A.shape[1]} < {A.shape[2]}")
    H = ConsistencyOperator(A).pinv(y).astype(np.complex64)
    return H[0] if squeeze else H


def atom_norms(A, Phi):
    """|A phi_g| for every dictionary column (the same for all users sharing A)."""
    return np.maximum(np.linalg.norm(A @ Phi, axis=0), 1e-15)


def simultaneous_omp(y, A, Phi, noise_var, max_atoms, stop_factor=1.0, return_support=False, norms=None):
    """Greedy support search common to all K columns of y [Q, K] for y = A Phi x + n.
    Atoms are scored by sum_k |<A phi, r_k>|^2 / |A phi|^2. Returns h = Phi_S x_S [N, K]."""
    Q, K = y.shape
    APhi = None
    # Correlations through A^H first (N x K), then the dictionary: cheap for large dictionaries.
    norms = atom_norms(A, Phi) if norms is None else norms
    support, x = [], np.zeros((0, K), complex)
    R = y.copy()
    thr = stop_factor * noise_var * Q * K
    for _ in range(min(max_atoms, Q - 1)):
        if np.sum(np.abs(R) ** 2) <= thr:
            break
        c = Phi.conj().T @ (A.conj().T @ R)                      # [G, K]
        score = np.sum(np.abs(c) ** 2, axis=1) / norms ** 2
        score[support] = -1
        support.append(int(np.argmax(score)))
        APhi = A @ Phi[:, support]
        x = np.linalg.lstsq(APhi, y, rcond=None)[0]
        R = y - APhi @ x
    h = Phi[:, support] @ x if support else np.zeros((A.shape[1], K), complex)
    return (h, support, x) if return_support else h


def _omp_batch(Y, W, noise_var, Phi, max_atoms, stop_factor):
    Y, W, squeeze = as_batch(Y, W)
    y, A = whiten(Y, W)
    nv = _noise_vec(noise_var, y.shape[0])
    out = np.empty((y.shape[0], A.shape[2], y.shape[2]), np.complex64)
    norms = [atom_norms(a, Phi) for a in A]                      # once per distinct operator
    for b in range(y.shape[0]):
        i = b if A.shape[0] > 1 else 0
        out[b] = simultaneous_omp(y[b], A[i], Phi, nv[b], max_atoms, stop_factor, norms=norms[i])
    return out[0] if squeeze else out


def swomp(Y, W, noise_var, cfg: NearFieldConfig, max_atoms: int = 64,
          stop_factor: float = 1.0) -> np.ndarray:
    """Angle-domain simultaneous weighted OMP (DFT dictionary)."""
    Phi, _ = angle_dictionary(cfg)
    return _omp_batch(Y, W, noise_var, Phi, max_atoms, stop_factor)


_POLAR_CACHE: dict = {}


def _polar(cfg, beta, r_min):
    key = (cfg.n_ant, cfg.spacing_m, cfg.wavelength_m, beta, r_min)
    if key not in _POLAR_CACHE:
        _POLAR_CACHE[key] = polar_dictionary(cfg, beta, r_min)
    return _POLAR_CACHE[key]


def somp(Y, W, noise_var, cfg: NearFieldConfig, beta: float = 1.2, r_min: float | None = None,
         max_atoms: int = 32, stop_factor: float = 1.0) -> np.ndarray:
    """Polar-domain simultaneous OMP (Cui & Dai's P-SOMP with the whitened model)."""
    Phi, _, _ = _polar(cfg, beta, r_min)
    return _omp_batch(Y, W, noise_var, Phi, max_atoms, stop_factor)


def _vp_objective(params, y, A, cfg, scale):
    """Residual |P_perp y|^2 of the whitened model with atoms at (theta, rho) = params / scale,
    and its gradient (variable projection: gains are the least-squares fit)."""
    L = params.size // 2
    th = params[:L] / scale[0]
    rho = params[L:] / scale[1]
    b, db_t, db_r = steering_rho(th, rho, cfg, derivs=True)   # [L, N] each
    M = A @ b.T                                                 # [Q, L]
    x = np.linalg.lstsq(M, y, rcond=None)[0]                    # [L, K]
    R = y - M @ x
    f = float(np.sum(np.abs(R) ** 2))
    Z = A.conj().T @ R                                          # [N, K]
    # df/dp_l = -2 Re sum_k conj(Z[:, k]) . (db_l/dp) x[l, k]
    zx = Z.conj() @ x.T                                         # [N, L]
    g_t = -2 * np.real(np.sum(db_t.T * zx, axis=0)) / scale[0]
    g_r = -2 * np.real(np.sum(db_r.T * zx, axis=0)) / scale[1]
    return f, np.concatenate([g_t, g_r]), x


def sigw_single(y, A, cfg: NearFieldConfig, noise_var, Phi, th_grid, rho_grid, max_paths=16,
                stop_factor=1.0, refine_iter=20, rho_max=None, norms=None):
    """SIGW for one user: y [Q, K], A [Q, N]. Returns (h [N, K], theta [L], rho [L], gains [L, K])."""
    Q, K = y.shape
    norms = atom_norms(A, Phi) if norms is None else norms
    thr = stop_factor * noise_var * Q * K
    # Scales make one unit of either parameter about one resolution cell.
    half = cfg.aperture_m / 2
    scale = np.array([cfg.n_ant / 2, half ** 2 / cfg.wavelength_m])
    rho_max = float(np.max(rho_grid)) * 1.5 if rho_max is None else rho_max
    th, rho = np.zeros(0), np.zeros(0)
    R, x = y.copy(), np.zeros((0, K), complex)
    for _ in range(min(max_paths, Q - 1)):
        if np.sum(np.abs(R) ** 2) <= thr:
            break
        c = Phi.conj().T @ (A.conj().T @ R)
        j = int(np.argmax(np.sum(np.abs(c) ** 2, axis=1) / norms ** 2))
        th = np.append(th, th_grid[j])
        rho = np.append(rho, rho_grid[j])
        p0 = np.concatenate([th * scale[0], rho * scale[1]])
        L = th.size
        bounds = [(-scale[0], scale[0])] * L + [(0.0, rho_max * scale[1])] * L
        res = minimize(lambda p: _vp_objective(p, y, A, cfg, scale)[:2], p0, jac=True,
                       method="L-BFGS-B", bounds=bounds, options={"maxiter": refine_iter})
        p = res.x if res.fun <= _vp_objective(p0, y, A, cfg, scale)[0] else p0
        th, rho = p[:L] / scale[0], p[L:] / scale[1]
        _, _, x = _vp_objective(p, y, A, cfg, scale)
        R = y - (A @ steering_rho(th, rho, cfg).T) @ x
    if th.size == 0:
        return np.zeros((A.shape[1], K), complex), th, rho, x
    h = steering_rho(th, rho, cfg).T @ x
    return h, th, rho, x


def gain_noise_var(A, cfg: NearFieldConfig, theta, rho, noise_var) -> float:
    """Per-entry error variance that the noise leaves in a least-squares fit of path gains on the
    responses b(theta, rho): noise_var tr((M^H M)^-1 B^H B) / N with M = A B. Computed from the
    estimate alone (it ignores missed paths and parameter errors, so it is a lower bound; the
    diffusion refinement scales it)."""
    if np.size(theta) == 0:
        return 1.0                                         # nothing found: prior variance
    Bm = steering_rho(theta, rho, cfg).T
    M = A @ Bm
    G = M.conj().T @ M
    return float(noise_var * np.real(np.trace(np.linalg.solve(G, Bm.conj().T @ Bm))) / cfg.n_ant)


def sigw(Y, W, noise_var, cfg: NearFieldConfig, beta: float = 1.2, r_min: float | None = None,
         max_paths: int = 16, stop_factor: float = 1.0, refine_iter: int = 20, return_var: bool = False):
    """Simultaneous iterative gridless weighted estimator (polar detection + gridless refinement).
    With ``return_var`` also the per-user error variance estimate of ``gain_noise_var`` [B]."""
    Y, W, squeeze = as_batch(Y, W)
    y, A = whiten(Y, W)
    nv = _noise_vec(noise_var, y.shape[0])
    Phi, thg, rhog = _polar(cfg, beta, r_min)
    out = np.empty((y.shape[0], A.shape[2], y.shape[2]), np.complex64)
    var = np.empty(y.shape[0])
    norms = [atom_norms(a, Phi) for a in A]
    for b in range(y.shape[0]):
        i = b if A.shape[0] > 1 else 0
        out[b], th, rho, _ = sigw_single(y[b], A[i], cfg, nv[b], Phi, thg, rhog, max_paths, stop_factor,
                                         refine_iter, norms=norms[i])
        var[b] = gain_noise_var(A[i], cfg, th, rho, nv[b]) if return_var else np.nan
    if squeeze:
        out, var = out[0], var[0]
    return (out, var) if return_var else out


def genie_ls(Y, W, noise_var, cfg: NearFieldConfig, theta, r) -> np.ndarray:
    """Reference only (needs the true path directions theta [B, L] and distances r [B, L]):
    least-squares path gains on the exact near-field responses. A lower reference that SIGW
    approaches when it finds every path; not an estimator a receiver can run."""
    Y, W, squeeze = as_batch(Y, W)
    y, A = whiten(Y, W)
    theta, r = np.atleast_2d(theta), np.atleast_2d(r)
    out = np.empty((y.shape[0], A.shape[2], y.shape[2]), np.complex64)
    for b in range(y.shape[0]):
        Bm = steering_rho(theta[b], 1 / r[b], cfg).T                    # [N, L]
        M = A[b if A.shape[0] > 1 else 0] @ Bm
        out[b] = Bm @ np.linalg.lstsq(M, y[b], rcond=None)[0]
    return out[0] if squeeze else out
