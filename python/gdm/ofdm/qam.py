"""Gray-mapped square QAM (BPSK/QPSK/16/64-QAM), unit average power, and max-log soft demapping.

Bit order: MSB first within a symbol; the first half of the bits select the in-phase level.
LLR convention: log P(b=0)/P(b=1), so a positive LLR decides 0.
"""
from __future__ import annotations

from functools import lru_cache

import numpy as np

from ..frame import MODULATIONS


def _gray_pam(m: int) -> np.ndarray:
    """Amplitude levels indexed by the natural value of m Gray-coded bits."""
    n = 1 << m
    levels = np.empty(n)
    for i in range(n):
        levels[i ^ (i >> 1)] = 2 * i - (n - 1)
    return levels


@lru_cache(maxsize=None)
def constellation(modulation: str) -> np.ndarray:
    """complex64 [2**k]: point for the symbol whose bits (MSB first) read as the index."""
    if modulation not in MODULATIONS:
        raise ValueError(f"unknown modulation {modulation!r}; valid: {', '.join(MODULATIONS)}")
    k = MODULATIONS[modulation]
    if k == 1:
        pts = np.array([1.0, -1.0], complex)
    else:
        half = k // 2
        pam = _gray_pam(half)
        idx = np.arange(1 << k)
        pts = pam[idx >> half] + 1j * pam[idx & ((1 << half) - 1)]
        pts = pts / np.sqrt(np.mean(np.abs(pts) ** 2))
    pts = pts.astype(np.complex64)
    pts.setflags(write=False)
    return pts


@lru_cache(maxsize=None)
def _bit_table(modulation: str) -> np.ndarray:
    k = MODULATIONS[modulation]
    idx = np.arange(1 << k)
    return ((idx[:, None] >> np.arange(k - 1, -1, -1)[None, :]) & 1).astype(bool)  # [M, k]


def bits_to_symbols(bits: np.ndarray, modulation: str) -> np.ndarray:
    k = MODULATIONS[modulation]
    bits = np.asarray(bits, np.uint8).reshape(-1)
    if bits.size % k:
        raise ValueError(f"{bits.size} bits is not a multiple of {k} bits per {modulation} symbol")
    idx = bits.reshape(-1, k) @ (1 << np.arange(k - 1, -1, -1))
    return constellation(modulation)[idx]


def soft_demap(y: np.ndarray, noise_var, modulation: str) -> np.ndarray:
    """Max-log LLRs float32 [..., k] for symbols y [...] with per-symbol noise variance."""
    pts = constellation(modulation)
    table = _bit_table(modulation)
    y = np.asarray(y)
    d2 = np.abs(y[..., None] - pts) ** 2  # [..., M]
    nv = np.maximum(np.asarray(noise_var, np.float32), 1e-12)
    llr = np.empty((*y.shape, table.shape[1]), np.float32)
    for j in range(table.shape[1]):
        llr[..., j] = (d2[..., table[:, j]].min(-1) - d2[..., ~table[:, j]].min(-1)) / nv
    return llr


def hard_decision(y: np.ndarray, modulation: str) -> np.ndarray:
    """Nearest constellation points and their bits (uint8 [..., k])."""
    pts = constellation(modulation)
    idx = np.abs(np.asarray(y)[..., None] - pts).argmin(-1)
    return pts[idx], _bit_table(modulation)[idx].astype(np.uint8)
