"""Classical impairment compensation, the baselines a learned denoiser has to beat:
- common-phase-error (CPE) correction: per OFDM symbol, the phase that best aligns the equalized
  data symbols with their hard decisions (decision-directed, weighted by 1/noise variance,
  iterated), which removes the common rotation phase noise and residual CFO cause;
- blind IQ-imbalance compensation on time-domain samples: y - w conj(y) with w from the
  second-order statistics (a proper complex signal has E[y^2] = 0), averaged over the stream.
"""
from __future__ import annotations

import numpy as np

from ..frame import FrameSpec
from . import qam


def cpe_correct(x_hat: np.ndarray, noise_var: np.ndarray, spec: FrameSpec, iterations: int = 2) -> np.ndarray:
    """x_hat, noise_var [B, n_tx, n_sym, n_occ] -> x_hat with each symbol's common phase removed."""
    x = np.array(x_hat, np.complex64, copy=True)
    w = spec.data_mask[None, None] / np.maximum(noise_var, 1e-9)
    rows = spec.data_mask.any(axis=1)
    for _ in range(iterations):
        ref = qam.nearest_points(x, spec.modulation)
        phi = np.angle(np.sum(w * x * np.conj(ref), axis=-1))  # [B, tx, S]
        phi = np.where(rows[None, None], phi, 0.0)
        x *= np.exp(-1j * phi)[..., None].astype(np.complex64)
    return x


class BlindIQCompensator:
    """Streaming blind IQ-imbalance compensation per channel; ``memory`` samples of averaging."""

    def __init__(self, n_ch: int, memory: float = 1e5):
        self.r2 = np.zeros(n_ch, complex)  # E[y^2]
        self.p = np.zeros(n_ch)  # E[|y|^2]
        self.a = 1.0 / memory

    def process(self, y: np.ndarray) -> np.ndarray:
        a = min(1.0, self.a * y.shape[-1])
        self.r2 = (1 - a) * self.r2 + a * np.mean(y * y, axis=-1)
        self.p = (1 - a) * self.p + a * np.mean(np.abs(y) ** 2, axis=-1)
        # y = k1 x + k2 x*  =>  E[y^2] ~ 2 k1 k2 E|x|^2 and E|y|^2 ~ |k1|^2 E|x|^2, so for small
        # imbalance the image coefficient k2/conj(k1) ~ E[y^2] / (2 E|y|^2).
        w = self.r2 / np.maximum(2 * self.p, 1e-30)
        return (y - w[:, None] * np.conj(y)).astype(np.complex64)
