"""MIMO equalizers per resource element: MRC (n_tx = 1), ZF and unbiased LMMSE (any n_rx >= n_tx).

equalize(Y [B, n_rx, S, K], H [B, n_rx, n_tx, S, K], noise_var [B]) ->
    X_hat [B, n_tx, S, K] and the post-equalization noise variance [B, n_tx, S, K], which the
    soft demapper uses as the per-symbol noise level.
"""
from __future__ import annotations

import numpy as np

METHODS = ("mrc", "zf", "lmmse")


def equalize(Y, H, noise_var, method: str = "lmmse"):
    if method not in METHODS:
        raise ValueError(f"unknown equalizer {method!r}; valid: {', '.join(METHODS)}")
    Y, H = np.asarray(Y), np.asarray(H)
    B, n_rx, n_tx = H.shape[:3]
    if Y.shape[:2] != (B, n_rx) or Y.shape[2:] != H.shape[3:]:
        raise ValueError(f"Y {Y.shape} does not match H {H.shape} ([B, n_rx, n_tx, S, K])")
    if n_rx < n_tx:
        raise ValueError(f"need n_rx >= n_tx to separate streams, got {n_rx} x {n_tx}")
    nv = np.broadcast_to(np.asarray(noise_var, np.float32).reshape(-1), (B,))[:, None, None, None]
    if method == "mrc" or n_tx == 1:
        if method == "mrc" and n_tx != 1:
            raise ValueError("MRC needs a single tx stream; use zf or lmmse for MIMO")
        h = H[:, :, 0]
        g = np.sum(np.abs(h) ** 2, axis=1)  # [B, S, K]
        g = np.maximum(g, 1e-12)
        x = np.sum(np.conj(h) * Y, axis=1) / g
        return x[:, None].astype(np.complex64), (nv[:, 0] / g)[:, None].astype(np.float32)
    # Per-RE matrices: [B, S, K, rx, tx]
    Hm = np.moveaxis(H, (1, 2), (-2, -1))
    ym = np.moveaxis(Y, 1, -1)[..., None]
    HH = np.conj(np.swapaxes(Hm, -1, -2))
    G = HH @ Hm  # [.., tx, tx]
    eye = np.eye(n_tx, dtype=G.dtype)
    nvm = nv[..., None]
    if method == "zf":
        Ginv = np.linalg.inv(G + 1e-9 * eye)
        x = (Ginv @ (HH @ ym))[..., 0]
        var = nv * np.real(np.diagonal(Ginv, axis1=-2, axis2=-1))
    else:
        A = np.linalg.inv(G + nvm * eye)  # (H^H H + s^2 I)^-1
        x = (A @ (HH @ ym))[..., 0]
        d = np.real(np.diagonal(A @ G, axis1=-2, axis2=-1))  # bias per stream
        d = np.clip(d, 1e-9, 1 - 1e-9)
        x = x / d
        var = (1 - d) / d  # 1 / SINR for unit-power symbols
    return (np.moveaxis(x, -1, 1).astype(np.complex64),
            np.maximum(np.moveaxis(var, -1, 1), 1e-12).astype(np.float32))
