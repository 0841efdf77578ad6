"""Time-varying tap gains: sum-of-sinusoids Rayleigh fading with a Jakes (Clarke) spectrum,
optional specular LOS tap, and Kronecker antenna correlation.

Each tap of each rx/tx pair is g(t) = sum_m c_m exp(j 2 pi fd cos(a_m) t) with a_m uniform and
either
- c_m ~ CN(0, 1/M) (default): the gain is exactly complex Gaussian across realisations, right
  for batches of independent frames (training data, fd = 0 block fading); or
- |c_m| = 1/sqrt(M) with uniform phases (``ergodic=True``): every single realisation has unit
  time-average power and a near-Rayleigh envelope over time, right for one long stream, where a
  random-amplitude sum would fix a random power offset for the whole run.
The autocorrelation approaches J0(2 pi fd tau) as M grows.
"""
from __future__ import annotations

import numpy as np

from .profiles import TapProfile


def exp_correlation(n: int, rho: float) -> np.ndarray:
    """Exponential antenna correlation matrix R[i, j] = rho^|i-j|."""
    if not 0 <= rho < 1:
        raise ValueError(f"antenna correlation must be in [0, 1), got {rho}")
    i = np.arange(n)
    return rho ** np.abs(i[:, None] - i[None, :])


def _sqrtm_psd(r: np.ndarray) -> np.ndarray:
    w, v = np.linalg.eigh(r)
    return (v * np.sqrt(np.clip(w, 0, None))) @ v.conj().T


class TapFading:
    """Gains of a batch of independent channel realisations.

    gains(t) -> complex64 [B, len(t), n_rx, n_tx, n_taps] at times t (seconds).
    """

    def __init__(self, profile: TapProfile, doppler_hz, n_rx: int, n_tx: int,
                 rng: np.random.Generator, batch: int = 1, n_sin: int = 16,
                 rx_corr: float = 0.0, tx_corr: float = 0.0, ergodic: bool = False):
        self.profile, self.n_rx, self.n_tx, self.B = profile, n_rx, n_tx, batch
        self.fd = np.broadcast_to(np.asarray(doppler_hz, float), (batch,)).copy()
        if np.any(self.fd < 0):
            raise ValueError("doppler must be >= 0 Hz")
        L = profile.delays.size
        shape = (batch, n_rx, n_tx, L, n_sin)
        if ergodic:
            self.c = np.exp(2j * np.pi * rng.uniform(0, 1, shape)) / np.sqrt(n_sin)
        else:
            self.c = ((rng.standard_normal(shape) + 1j * rng.standard_normal(shape))
                      / np.sqrt(2 * n_sin)).astype(np.complex128)
        self.w = 2 * np.pi * self.fd[:, None, None, None, None] * np.cos(
            rng.uniform(0, 2 * np.pi, shape))
        amp = np.sqrt(profile.powers)
        if profile.los:
            # Specular tap 0: fixed amplitude, random phase, Doppler fd*cos(aoa).
            self.los_phase = rng.uniform(0, 2 * np.pi, (batch, n_rx, n_tx))
            self.los_w = 2 * np.pi * self.fd * np.cos(profile.los_aoa)
        self.amp = amp
        self.r_rx = _sqrtm_psd(exp_correlation(n_rx, rx_corr)) if rx_corr else None
        self.r_tx = _sqrtm_psd(exp_correlation(n_tx, tx_corr)) if tx_corr else None

    def gains(self, t: np.ndarray) -> np.ndarray:
        t = np.asarray(t, float)
        if t.ndim == 1:
            t = np.broadcast_to(t, (self.B, t.size))
        ph = self.w[:, None] * t[:, :, None, None, None, None]  # [B, T, rx, tx, L, M]
        g = np.einsum("btrxlm,brxlm->btrxl", np.exp(1j * ph), self.c)
        if self.profile.los:
            # The specular tap replaces tap 0's diffuse part (its listed power is the LOS power).
            los = np.exp(1j * (self.los_phase[:, None] + self.los_w[:, None, None, None] * t[..., None, None]))
            g[..., 0] = los
        g = g * self.amp
        if self.r_rx is not None:
            g = np.einsum("ij,btjxl->btixl", self.r_rx, g)
        if self.r_tx is not None:
            g = np.einsum("btrjl,jk->btrkl", g, self.r_tx.T)
        return g.astype(np.complex64)
