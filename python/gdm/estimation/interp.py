"""LS at the pilots, filled over the grid by nearest-neighbour ('ls') or linear interpolation
('ls_interp': linear in frequency on each pilot symbol, then linear in time; constant beyond the
outermost pilots). Both are separable matrices applied to the pilot LS values."""
from __future__ import annotations

import numpy as np

from ..frame import FrameSpec
from .base import Estimator, pilot_ls, register


def _interp_matrix(x_known: np.ndarray, x_all: np.ndarray, kind: str) -> np.ndarray:
    """A [len(x_all), len(x_known)] so that A @ v interpolates v given at x_known."""
    A = np.zeros((x_all.size, x_known.size))
    if x_known.size == 1:
        A[:, 0] = 1
        return A
    for i, x in enumerate(x_all):
        if kind == "nearest" or x <= x_known[0] or x >= x_known[-1]:
            A[i, int(np.argmin(np.abs(x_known - x)))] = 1
        else:
            j = int(np.searchsorted(x_known, x)) - 1
            w = (x - x_known[j]) / (x_known[j + 1] - x_known[j])
            A[i, j], A[i, j + 1] = 1 - w, w
    return A


def separable_apply(At: np.ndarray, AfT: np.ndarray, X: np.ndarray) -> np.ndarray:
    """At @ x @ AfT for every matrix x [rows, cols] of X [..., rows, cols] -> [..., S, K], as two
    plain matrix products over all of them (frequency, then time): numpy's stacked products
    work one small matrix at a time, ~10x slower on a receiver's batch."""
    lead, (nr, nc) = X.shape[:-2], X.shape[-2:]
    M = int(np.prod(lead))
    T = X.reshape(M * nr, nc) @ AfT  # [M*nr, K]
    K = T.shape[1]
    T = T.reshape(M, nr, K).transpose(1, 0, 2).reshape(nr, M * K)
    return (At @ T).reshape(-1, M, K).transpose(1, 0, 2).reshape(*lead, -1, K)


class _Separable(Estimator):
    kind = "linear"

    def __init__(self, spec: FrameSpec, n_rx: int = 1):
        super().__init__(spec, n_rx)
        self._mats = []
        for tx in range(self.n_tx):
            mask = spec.pilot_mask(tx)
            rows = np.flatnonzero(mask.any(1))
            cols = np.flatnonzero(mask.any(0))
            if mask[np.ix_(rows, cols)].sum() != rows.size * cols.size:
                raise ValueError(f"{self.name}: pilot pattern of stream {tx} is not separable")
            occ = np.asarray(spec.occupied, float)
            Af = _interp_matrix(occ[cols], occ, self.kind)  # [n_occ, n_pc]
            At = _interp_matrix(rows.astype(float), np.arange(spec.n_sym, dtype=float), self.kind)
            self._mats.append((At.astype(np.complex64), Af.T.astype(np.complex64), rows.size, cols.size))

    def _estimate_tx(self, Y, noise_var, tx):
        At, AfT, nr, nc = self._mats[tx]
        return separable_apply(At, AfT, pilot_ls(Y, self.spec, tx).reshape(*Y.shape[:2], nr, nc))


@register("ls")
class LSNearest(_Separable):
    """LS at pilots, nearest pilot elsewhere (no smoothing)."""
    name = "ls"
    kind = "nearest"


@register("ls_interp")
class LSInterp(_Separable):
    """LS at pilots, linear interpolation in frequency then time."""
    name = "ls_interp"
    kind = "linear"
