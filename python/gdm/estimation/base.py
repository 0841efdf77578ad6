"""Estimator interface and registry.

``est.estimate(Y, noise_var)``: Y complex [B, n_rx, n_sym, n_occ] (the whole received grid),
noise_var per frame [B] or scalar (None: estimated from the pilots) -> H_hat complex64
[B, n_rx, n_tx, n_sym, n_occ]. ``est.last_info`` holds per-call details (method, noise_var used,
fallbacks) of the calling thread's last call, so two threads may estimate on one estimator at
once (the one-block receiver's workers do). Estimators are batched over frames and receive antennas.
"""
from __future__ import annotations

import threading

import numpy as np

from ..frame import FrameSpec
from ..registry import Registry

_REGISTRY = Registry("estimator", "valid estimators")
register, names = _REGISTRY.register, _REGISTRY.names


def make(name: str, spec: FrameSpec, n_rx: int = 1, n_tx: int | None = None, **options) -> "Estimator":
    factory = _REGISTRY.get(name)
    if n_tx is not None and n_tx != spec.n_tx:
        spec = spec.replace(n_tx=n_tx)
    return factory(spec, n_rx=n_rx, **options)


def pilot_ls(Y: np.ndarray, spec: FrameSpec, tx: int) -> np.ndarray:
    """Least-squares channel at the pilots of stream ``tx``: [B, n_rx, n_pilots]."""
    mask = spec.pilot_mask(tx)
    return Y[..., mask] / spec.pilot_values(tx)[mask]


def estimate_noise_var(Y: np.ndarray, spec: FrameSpec) -> np.ndarray:
    """Per-frame noise variance [B] from pilot LS: second differences along frequency cancel a
    smooth channel and leave 6x the noise variance (small bias for long delay spreads)."""
    vals = []
    for tx in range(spec.n_tx):
        mask = spec.pilot_mask(tx)
        rows = np.flatnonzero(mask.any(1))
        cols = np.flatnonzero(mask[rows[0]])
        ls = Y[..., rows[:, None], cols[None, :]] / spec.pilot_values(tx)[rows[:, None], cols[None, :]]
        if ls.shape[-1] >= 3:
            d2 = ls[..., 2:] - 2 * ls[..., 1:-1] + ls[..., :-2]
            vals.append(np.mean(np.abs(d2) ** 2, axis=tuple(range(1, d2.ndim))) / 6)
    if not vals:
        raise ValueError("cannot estimate noise variance: fewer than 3 pilot carriers; pass noise_var")
    return np.maximum(np.mean(vals, axis=0), 1e-10)


class Estimator:
    """Base: subclasses implement ``_estimate_tx(Y, noise_var, tx) -> [B, n_rx, n_sym, n_occ]``."""
    name = "base"
    needs_noise_var = False

    def __init__(self, spec: FrameSpec, n_rx: int = 1):
        if n_rx < 1:
            raise ValueError(f"n_rx must be >= 1, got {n_rx}")
        self.spec, self.n_rx, self.n_tx = spec, n_rx, spec.n_tx
        self._info = threading.local()

    @property
    def last_info(self) -> dict:
        """Details of this thread's last ``estimate`` call ({} before the first)."""
        return getattr(self._info, "d", {})

    @last_info.setter
    def last_info(self, info: dict) -> None:
        self._info.d = info

    def check_input(self, Y) -> np.ndarray:
        Y = np.asarray(Y)
        if Y.ndim == 3:
            Y = Y[None]
        want = (self.n_rx, self.spec.n_sym, self.spec.n_occ)
        if Y.ndim != 4 or Y.shape[1:] != want:
            raise ValueError(f"{self.name}: Y must be [B, n_rx, n_sym, n_occ] = [B, {want[0]}, "
                             f"{want[1]}, {want[2]}], got {Y.shape}")
        return Y.astype(np.complex64, copy=False)

    def estimate(self, Y, noise_var=None) -> np.ndarray:
        Y = self.check_input(Y)
        nv = None
        if self.needs_noise_var:
            nv = estimate_noise_var(Y, self.spec) if noise_var is None else \
                np.broadcast_to(np.asarray(noise_var, float), (Y.shape[0],)).copy()
        self.last_info = {"method": self.name, "noise_var": nv}
        H = np.empty((Y.shape[0], self.n_rx, self.n_tx, self.spec.n_sym, self.spec.n_occ), np.complex64)
        for tx in range(self.n_tx):
            H[:, :, tx] = self._estimate_tx(Y, nv, tx)
        return H

    def _estimate_tx(self, Y, noise_var, tx):  # pragma: no cover - abstract
        raise NotImplementedError
