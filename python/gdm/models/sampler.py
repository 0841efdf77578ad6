"""Reverse-process samplers around any denoiser ``denoise(x, sigma, cond, glob) -> D`` (numpy
float32 in and out; the ONNX session in the estimator, the torch network in training checks).

Deterministic path (the estimate): start at x = LS/interp with the per-frame start sigma (the noise
level matching that start point, see features.start_sigma), take Euler (DDIM) steps on a geometric
sigma grid down to the bank's posterior std, return the last denoised estimate. No gradients, no
randomness. Optional pilot consistency re-anchors the iterate at the pilots to the LS
observations at the iterate's own noise level.

Posterior sampling: start from m + sqrt(s^2 + sigma_0^2) z, take ancestral (DDPM-like) steps, and
average ``n_samples`` draws: their mean is an estimate, their spread a per-RE posterior variance.
"""
from __future__ import annotations

from typing import Callable

import numpy as np

from .features import to_planes
from .layout import START_FLAG

Denoise = Callable[[np.ndarray, np.ndarray, np.ndarray, np.ndarray], np.ndarray]


def s_mean(f: dict) -> np.ndarray:
    return np.sqrt(np.mean(f["std"].astype(np.float64) ** 2, (1, 2)))


def adaptive_steps(f: dict, ratio: float = 3.0, max_steps: int = 4) -> np.ndarray:
    """Steps per frame: one per factor ``ratio`` between the start sigma and the posterior std
    (low SNR starts far above it and gets more steps), at least 1, at most ``max_steps``."""
    r = np.log(np.maximum(f["sigma_start"] / s_mean(f), 1.0)) / np.log(ratio)
    return np.clip(np.ceil(r), 1, max_steps).astype(int)


def sigma_grid(sigma_start: np.ndarray, s_end: np.ndarray, steps: int) -> np.ndarray:
    """[N, steps] geometric from sigma_start to s_end (s_end kept below sigma_start)."""
    lo = np.minimum(s_end, sigma_start)
    t = np.linspace(0, 1, steps)[None] if steps > 1 else np.zeros((1, 1))
    return (sigma_start[:, None] * (lo / sigma_start)[:, None] ** t).astype(np.float32)


def _consistency(x, D, sigma, f, pat, noise_var):
    """Pilot REs of the iterate := LS + (renoise to sigma) using the iterate's own noise estimate
    (x - D)/sigma: the measurement enters at the right noise level, deterministically."""
    r, c = pat.bank.rows[:, None], pat.bank.cols[None, :]
    ls = to_planes(f["ls"])  # [N, 2, nr, nc]
    sg = sigma[:, None, None, None]
    extra = np.sqrt(np.clip(sg ** 2 - noise_var[:, None, None, None], 0, None))
    eps = (x[:, :, r, c] - D[:, :, r, c]) / sg
    x = x.copy()
    x[:, :, r, c] = np.where(sg ** 2 > noise_var[:, None, None, None], ls + extra * eps, x[:, :, r, c])
    return x


def deterministic(denoise: Denoise, f: dict, steps: np.ndarray | int, end_ratio: float = 1.0,
                  consistency: bool = False, pat=None, noise_var=None) -> np.ndarray:
    """Estimate planes [N, 2, S, K]; ``steps`` per frame (array) or one count for all; 0 steps
    returns the bank posterior mean (no network)."""
    N = f["cond"].shape[0]
    steps = np.broadcast_to(np.asarray(steps, int), (N,))
    out = np.empty((N, 2, *f["cond"].shape[2:]), np.float32)
    for n in np.unique(steps):
        idx = np.flatnonzero(steps == n)
        if n == 0:
            out[idx] = to_planes(f["mean"][idx])
            continue
        sig = sigma_grid(f["sigma_start"][idx], s_mean(f)[idx] * end_ratio, int(n))
        every = idx.size == N  # one step count for all links (the default): no copies
        cond = f["cond"] if every else f["cond"][idx]
        glob = f["glob"].copy() if every else f["glob"][idx]
        x = to_planes(f["interp"] if every else f["interp"][idx])
        for i in range(int(n)):
            glob[:, START_FLAG] = 1.0 if i == 0 else 0.0  # only the first state is LS/interp
            D = denoise(x, sig[:, i], cond, glob)
            if i == n - 1:
                out[idx] = D
                break
            if consistency:
                fs = {"ls": f["ls"][idx]}
                x = _consistency(x, D, sig[:, i], fs, pat, noise_var[idx])
            x = D + (sig[:, i + 1] / sig[:, i])[:, None, None, None] * (x - D)
    return out


def posterior(denoise: Denoise, f: dict, n_samples: int, steps: int, rng: np.random.Generator,
              end_ratio: float = 0.25) -> tuple[np.ndarray, np.ndarray]:
    """(mean planes [N, 2, S, K], per-RE variance [N, S, K]) from ``n_samples`` ancestral runs."""
    N = f["cond"].shape[0]
    rep = np.repeat(np.arange(N), n_samples)
    cond, glob = f["cond"][rep], f["glob"][rep]
    m = to_planes(f["mean"])[rep]
    s = f["std"][rep][:, None]
    sig = sigma_grid(f["sigma_start"][rep], s_mean(f)[rep] * end_ratio, max(steps, 2))
    z = rng.standard_normal(m.shape).astype(np.float32) * np.sqrt(0.5)
    x = m + np.sqrt(s ** 2 + sig[:, :1, None, None] ** 2) * z
    for i in range(sig.shape[1]):
        D = denoise(x, sig[:, i], cond, glob)
        if i == sig.shape[1] - 1:
            break
        a, b = sig[:, i, None, None, None], sig[:, i + 1, None, None, None]
        # ancestral step: x_{i+1} | x_i averaged over x_0 | x_i. The plain DDPM step plugs in
        # x_0 = D and drops Var(x_0 | x_i), which under-disperses badly with few steps (-4 dB
        # of spread at 4 steps even for an exact Gaussian denoiser); its Gaussian estimate
        # s^2 a^2 / (s^2 + a^2) is added back (the 'analytic variance' idea).
        r = b ** 2 / a ** 2
        v0 = s ** 2 * a ** 2 / (s ** 2 + a ** 2)
        x = D + r * (x - D)
        x = x + np.sqrt(np.clip(b ** 2 * (1 - r) + (1 - r) ** 2 * v0, 0, None) / 2) * \
            rng.standard_normal(x.shape).astype(np.float32)
    a = sig[:, -1, None, None, None]
    v_end = (s ** 2 * a ** 2 / (s ** 2 + a ** 2))[:, 0]  # what D at the last level still leaves open
    D = D.reshape(N, n_samples, *D.shape[1:])
    mean = D.mean(1)
    var = (D - mean[:, None]).__pow__(2).sum(2).mean(1) * n_samples / max(n_samples - 1, 1)
    var = var + v_end.reshape(N, n_samples, *v_end.shape[1:]).mean(1)
    return mean.astype(np.float32), var.astype(np.float32)
