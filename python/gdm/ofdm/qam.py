"""Gray-mapped square QAM (BPSK/QPSK/16/64-QAM), unit average power, and max-log soft demapping.

Bit order: MSB first within a symbol; the first half of the bits select the in-phase level.
LLR convention: log P(b=0)/P(b=1), so a positive LLR decides 0.
"""
from __future__ import annotations

import os
from functools import lru_cache

import numpy as np

from ..frame import MODULATIONS
from . import qam_kernels


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


@lru_cache(maxsize=None)
def _axis(modulation: str):
    """(scaled PAM levels, Gray bit table [levels, bits]) of one axis of a square QAM."""
    k = MODULATIONS[modulation]
    half = max(k // 2, 1)
    pam = _gray_pam(half) if k > 1 else np.array([1.0, -1.0])
    if k > 1:
        pam = pam / np.sqrt(2 * np.mean(pam ** 2))  # two axes share the unit symbol power
    idx = np.arange(1 << half)
    table = ((idx[:, None] >> np.arange(half - 1, -1, -1)[None, :]) & 1).astype(bool)
    return pam.astype(np.float32), table


def _axis_llr(v: np.ndarray, modulation: str) -> np.ndarray:
    pam, table = _axis(modulation)
    # squared distances of float32 values past ~1e19 overflow to inf and inf - inf is NaN; far
    # outside the constellation only the sign of each LLR matters (the decoder saturates them)
    d2 = (np.clip(v, -1e4, 1e4)[..., None] - pam) ** 2
    return np.stack([d2[..., table[:, j]].min(-1) - d2[..., ~table[:, j]].min(-1)
                     for j in range(table.shape[1])], axis=-1)


def soft_demap(y: np.ndarray, noise_var, modulation: str) -> np.ndarray:
    """Max-log LLRs float32 [..., k] for symbols y [...] with per-symbol noise variance.
    Square QAM separates into two Gray PAMs, so each axis is demapped on its own levels."""
    y = np.asarray(y)
    if qam_kernels.soft_demap is not None and not os.environ.get("GDM_NO_NUMBA"):
        pam, table = _axis(modulation)
        axes = 1 if modulation == "bpsk" else 2
        flat = np.ascontiguousarray(y.reshape(-1), np.complex64)
        nvf = np.ascontiguousarray(np.broadcast_to(np.asarray(noise_var, np.float32), y.shape).reshape(-1))
        out = np.empty((flat.size, axes * table.shape[1]), np.float32)
        qam_kernels.soft_demap(flat, nvf, pam, table, axes, out)
        return out.reshape(*y.shape, -1)
    nv = np.maximum(np.asarray(noise_var, np.float32), 1e-12)[..., None]
    if modulation == "bpsk":
        return (_axis_llr(y.real.astype(np.float32), modulation) / nv).astype(np.float32)
    llr = np.concatenate([_axis_llr(y.real.astype(np.float32), modulation),
                          _axis_llr(y.imag.astype(np.float32), modulation)], axis=-1)
    return (llr / nv).astype(np.float32)


def _nearest_index(v: np.ndarray, modulation: str) -> np.ndarray:
    """Index of the nearest PAM level of one axis: the levels are evenly spaced, so it is a
    rounding, not a search."""
    pam, _ = _axis(modulation)
    order = np.argsort(pam)
    lo, step = pam[order[0]], pam[order[1]] - pam[order[0]]
    return order[np.clip(np.rint((v - lo) / step), 0, pam.size - 1).astype(np.intp)]


def nearest_points(y: np.ndarray, modulation: str) -> np.ndarray:
    """Nearest constellation points of y (for EVM)."""
    pam, _ = _axis(modulation)
    y = np.asarray(y)
    re = pam[_nearest_index(y.real, modulation)]
    if modulation == "bpsk":
        return re.astype(np.complex64)
    return (re + 1j * pam[_nearest_index(y.imag, modulation)]).astype(np.complex64)


def hard_decision(y: np.ndarray, modulation: str) -> tuple[np.ndarray, np.ndarray]:
    """Nearest constellation points and their bits (uint8 [..., k]), axis by axis."""
    pam, table = _axis(modulation)
    y = np.asarray(y)
    i = _nearest_index(y.real, modulation)
    if modulation == "bpsk":
        return pam[i].astype(np.complex64), table[i].astype(np.uint8)
    q = _nearest_index(y.imag, modulation)
    pts = (pam[i] + 1j * pam[q]).astype(np.complex64)
    return pts, np.concatenate([table[i], table[q]], axis=-1).astype(np.uint8)
