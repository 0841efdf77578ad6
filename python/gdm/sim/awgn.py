"""Additive white Gaussian noise at a per-resource-element SNR (see frame.py for the convention)."""
from __future__ import annotations

import numpy as np


def noise_var_for_snr(snr_db) -> np.ndarray | float:
    return 10 ** (-np.asarray(snr_db, float) / 10)


def complex_noise(rng: np.random.Generator, shape, var, sample_major: bool = False) -> np.ndarray:
    """CN(0, var) samples. ``sample_major`` draws [..., N] streams sample by sample, so a stream
    processed in chunks of any size gets the same noise."""
    var = np.asarray(var, float)
    if sample_major:
        n = rng.standard_normal((shape[-1], *shape[:-1], 2)).astype(np.float32)
        n = np.moveaxis(n.view(np.complex64)[..., 0], 0, -1)
    else:
        n = rng.standard_normal((*shape, 2)).astype(np.float32).view(np.complex64)[..., 0]
    return (n * np.sqrt(var / 2)).astype(np.complex64)
