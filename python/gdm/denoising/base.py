"""Symbol denoiser interface and registry, and the classical members.

``dn = denoising.make(name, spec, n_tx=None, **options)``;
``X2, V2 = dn.denoise(X, V)``: equalized symbols X complex [B, n_tx, n_sym, n_occ] and their
post-equalization noise variance V float [B, n_tx, n_sym, n_occ] (the mimo_equalizer outputs)
-> symbols and per-symbol variance for the soft demapper, same shapes (pilot REs pass through).
``dn.last_info`` holds per-call details (method, fallback [B] where a learned method fell back).

- ``none``: plain demapping (identity);
- ``cpe``: decision-directed common-phase-error correction per OFDM symbol, tracked from the
  pilot symbols outwards (ofdm.compensation.cpe_correct, ``track=False``: every symbol on its
  own, as on main before), the classical phase-noise baseline;
- ``diffusion``: the learned denoiser (denoising/diffusion.py).
"""
from __future__ import annotations

import numpy as np

from ..frame import FrameSpec
from ..ofdm.compensation import cpe_correct
from ..registry import Registry

_REGISTRY = Registry("symbol denoiser")
register, names = _REGISTRY.register, _REGISTRY.names


def make(name: str, spec: FrameSpec, n_tx: int | None = None, **options) -> "SymbolDenoiser":
    factory = _REGISTRY.get(name)
    if n_tx is not None and n_tx != spec.n_tx:
        spec = spec.replace(n_tx=n_tx)
    return factory(spec, **options)


class SymbolDenoiser:
    name = "base"

    def __init__(self, spec: FrameSpec):
        self.spec, self.n_tx = spec, spec.n_tx
        self.last_info: dict = {}

    def check_input(self, X, V) -> tuple[np.ndarray, np.ndarray]:
        X, V = np.asarray(X), np.asarray(V)
        if X.ndim == 3:
            X, V = X[None], V[None]
        want = (self.n_tx, self.spec.n_sym, self.spec.n_occ)
        if X.ndim != 4 or X.shape[1:] != want or V.shape != X.shape:
            raise ValueError(f"{self.name}: X and V must both be [B, n_tx, n_sym, n_occ] = [B, {want[0]}, "
                             f"{want[1]}, {want[2]}], got X {X.shape}, V {V.shape}")
        return X.astype(np.complex64, copy=False), V.astype(np.float32, copy=False)

    def denoise(self, X, V):
        X, V = self.check_input(X, V)
        out = self._denoise(X, V)
        self.last_info.setdefault("method", self.name)
        self.last_info.setdefault("fallback", np.zeros(X.shape[0], bool))
        return out

    def _denoise(self, X, V):  # pragma: no cover - abstract
        raise NotImplementedError


@register("none")
class PlainDemapping(SymbolDenoiser):
    name = "none"

    def _denoise(self, X, V):
        self.last_info = {"method": self.name}
        return X, V


@register("cpe")
class CPECorrection(SymbolDenoiser):
    """Common-phase-error correction (decision-directed, per OFDM symbol); variance unchanged."""
    name = "cpe"

    def __init__(self, spec: FrameSpec, iterations: int = 3, track: bool = True):
        super().__init__(spec)
        self.iterations, self.track = int(iterations), bool(track)

    def _denoise(self, X, V):
        self.last_info = {"method": self.name, "track": self.track}
        return cpe_correct(X, V, self.spec, self.iterations, self.track), V


class Chain(SymbolDenoiser):
    """Denoisers one after the other (e.g. the PA canceller, then the learned denoiser on its
    output and variance); a frame falls back where any stage fell back."""

    def __init__(self, stages: list[SymbolDenoiser]):
        if not stages:
            raise ValueError("Chain needs at least one stage")
        super().__init__(stages[0].spec)
        self.stages = list(stages)
        self.name = "+".join(st.name for st in self.stages)

    def _denoise(self, X, V):
        fallback = np.zeros(X.shape[0], bool)
        for st in self.stages:
            X, V = st.denoise(X, V)
            fallback |= np.asarray(st.last_info.get("fallback", False), bool)
        self.last_info = {"method": self.name, "fallback": fallback,
                          "stages": [st.last_info for st in self.stages]}
        return X, V

    def describe(self) -> dict:
        return {st.name: st.describe() for st in self.stages if hasattr(st, "describe")}
