"""Shared linear algebra for XL-MIMO estimators: noise whitening of the hybrid combiner,
angle-domain (DFT) and polar-domain dictionaries, array responses parametrised by inverse
distance, and the regularised data-consistency solve used by the diffusion sampler."""
from __future__ import annotations

import numpy as np

from ..sim.nearfield import NearFieldConfig, element_positions


def as_batch(Y, W):
    """Y [B, P, N_RF, K] (or [P, N_RF, K]), W [B, P, N_RF, N] or [P, N_RF, N] (shared) ->
    (Y [B, P, N_RF, K], W [B or 1, P, N_RF, N], squeezed)."""
    Y, W = np.asarray(Y), np.asarray(W)
    squeeze = Y.ndim == 3
    if squeeze:
        Y = Y[None]
    if W.ndim == 3:
        W = W[None]
    if Y.ndim != 4 or W.ndim != 4 or Y.shape[1:3] != W.shape[1:3] or W.shape[0] not in (1, Y.shape[0]):
        raise ValueError(f"shapes do not match: Y {Y.shape} (B, P, N_RF, K), W {W.shape} (B, P, N_RF, N)")
    return Y, W, squeeze


def whiten(Y, W):
    """Whiten the combined noise. W_p W_p^H = L_p L_p^H (Cholesky); returns
    y [B, Q, K] = stack_p L_p^-1 y_p and A [B or 1, Q, N] = stack_p L_p^-1 W_p with Q = P N_RF, so
    y = A h + n with n ~ CN(0, noise_var I)."""
    Y, W, _ = as_batch(Y, W)
    if W.shape[0] > 1 and np.array_equal(W, np.broadcast_to(W[:1], W.shape)):
        W = W[:1]                       # one combiner sequence for the whole batch (one frame)
    W = W.astype(np.complex128)
    C = np.einsum("bprn,bpsn->bprs", W, W.conj())
    Lc = np.linalg.cholesky(C)
    Linv = np.linalg.inv(Lc)
    A = np.einsum("bprs,bpsn->bprn", Linv, W)
    y = np.einsum("bprs,bpsk->bprk", Linv if Linv.shape[0] == Y.shape[0] else
                  np.broadcast_to(Linv, (Y.shape[0], *Linv.shape[1:])), Y.astype(np.complex128))
    B, P, R, N = A.shape
    return y.reshape(Y.shape[0], P * R, Y.shape[-1]), A.reshape(A.shape[0], P * R, N)


def angle_grid(n_ant: int) -> np.ndarray:
    """sin-direction grid of the N-point DFT: (2n - N + 1) / N, n = 0..N-1."""
    return (2 * np.arange(n_ant) - n_ant + 1) / n_ant


def steering_rho(theta, rho, cfg: NearFieldConfig, derivs: bool = False):
    """Unit-norm array response with inverse distance rho = 1/r (rho = 0: far field), at the
    carrier. theta, rho broadcast -> [..., N]; with derivs also d/dtheta and d/drho."""
    theta = np.asarray(theta, float)[..., None]
    rho = np.asarray(rho, float)[..., None]
    x = element_positions(cfg.n_ant, cfg.spacing_m)
    k = 2 * np.pi / cfg.wavelength_m
    u = rho * x ** 2 - 2 * x * theta
    s = np.sqrt(1 + rho * u)
    D = s + 1
    dr = u / D                       # r_n - r, exact, smooth at rho = 0
    b = np.exp(-1j * k * dr) / np.sqrt(cfg.n_ant)
    if not derivs:
        return b
    du_dt = -2 * x
    dD_dt = rho * du_dt / (2 * s)
    ddr_dt = (du_dt * D - u * dD_dt) / D ** 2
    du_dr = x ** 2
    dD_dr = (u + rho * du_dr) / (2 * s)
    ddr_dr = (du_dr * D - u * dD_dr) / D ** 2
    return b, -1j * k * ddr_dt * b, -1j * k * ddr_dr * b


def polar_grid(cfg: NearFieldConfig, beta: float = 1.2, r_min: float | None = None):
    """Polar-domain grid after Cui & Dai: the N DFT directions, and for each the distance rings
    r = Z (1 - theta^2) / s, s = 0, 1, 2, ... (s = 0: far field) down to r_min, where
    Z = N^2 d^2 / (2 beta^2 lambda). Returns (theta [G], rho [G]) with rho = 1/r."""
    N, d, lam = cfg.n_ant, cfg.spacing_m, cfg.wavelength_m
    Z = N ** 2 * d ** 2 / (2 * beta ** 2 * lam)
    r_min = cfg.fresnel_min_m if r_min is None else r_min
    th_all, rho_all = [], []
    for th in angle_grid(N):
        s_max = int(np.floor(Z * (1 - th ** 2) / r_min))
        s = np.arange(s_max + 1)
        th_all.append(np.full(s.size, th))
        rho_all.append(s / (Z * (1 - th ** 2)))
    return np.concatenate(th_all), np.concatenate(rho_all)


def polar_dictionary(cfg: NearFieldConfig, beta: float = 1.2, r_min: float | None = None):
    """Columns are near-field array responses on the polar grid: (Phi [N, G], theta, rho)."""
    th, rho = polar_grid(cfg, beta, r_min)
    return steering_rho(th, rho, cfg).T.copy(), th, rho


def angle_dictionary(cfg: NearFieldConfig):
    """Unitary DFT dictionary of planar steering vectors: (Phi [N, N], theta)."""
    th = angle_grid(cfg.n_ant)
    return steering_rho(th, np.zeros_like(th), cfg).T.copy(), th


class ConsistencyOperator:
    """Per-frame SVD of the whitened operator A = U S V^H (Q x N) for the regularised solve

        argmin_h |y - A h|^2 / noise_var + |h - h0|^2 / prior_var
          = h0 + V diag(s / (s^2 + noise_var / prior_var)) U^H (y - A h0)

    applied to all subcarriers at once (A is frequency flat). Also gives the LMMSE estimate under
    an i.i.d. CN(0, prior_var) prior and the least-squares (pseudo-inverse) estimate."""

    def __init__(self, A: np.ndarray):
        A = np.asarray(A, np.complex128)
        if A.ndim == 2:
            A = A[None]
        self.A = A
        U, s, Vh = np.linalg.svd(A, full_matrices=False)
        self.U, self.s, self.Vh = U, s, Vh      # [B, Q, r], [B, r], [B, r, N]

    def apply(self, h):
        return np.einsum("bqn,bnk->bqk", self.A, h)

    def solve(self, h0, y, noise_var, prior_var):
        """h0 [B, N, K], y [B, Q, K]; noise_var, prior_var scalars or [B]."""
        nv = np.asarray(noise_var, float).reshape(-1, 1)
        pv = np.asarray(prior_var, float).reshape(-1, 1)
        gain = self.s / (self.s ** 2 + nv / pv)                              # [B, r]
        r = y - self.apply(h0)
        z = np.einsum("bqr,bqk->brk", self.U.conj(), r) * gain[..., None]
        return h0 + np.einsum("brn,brk->bnk", self.Vh.conj(), z)

    def pinv(self, y, rcond: float = 1e-6):
        s = self.s
        inv = np.where(s > rcond * s[:, :1], 1 / np.maximum(s, 1e-30), 0)
        z = np.einsum("bqr,bqk->brk", self.U.conj(), y) * inv[..., None]
        return np.einsum("brn,brk->bnk", self.Vh.conj(), z)
