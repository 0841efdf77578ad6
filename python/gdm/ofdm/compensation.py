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


TRACK_OFFSETS = (0.0, -0.3, 0.3)  # rad, tried around the neighbour's phase
TRACK_MARGIN = 1.0  # x sqrt(REs per symbol): cost advantage needed to leave the anchored phase


def cpe_correct(x_hat: np.ndarray, noise_var: np.ndarray, spec: FrameSpec, iterations: int = 2,
                track: bool = False, return_phase: bool = False):
    """x_hat, noise_var [B, n_tx, n_sym, n_occ] -> x_hat with each symbol's common phase removed.

    ``track``: symbols are corrected one after the other moving away from the pilot symbols (where
    the channel estimate fixes the phase), each starting from its neighbour's phase (and from a
    few offsets around it, so one large step does not derail the rest), so the decisions see
    only the phase change between adjacent symbols; the hypothesis whose decisions fit best wins,
    the untracked one (start 0) unless another fits clearly better. Without tracking every
    symbol starts from zero and decisions fail once the phase wanders past the constellation's
    angular spacing (~0.3 rad for 16-QAM), which Wiener phase noise of a few 100 Hz reaches
    within a frame. ``return_phase``: also return the phase removed per symbol [B, n_tx, n_sym]."""
    x = np.array(x_hat, np.complex64, copy=True)
    w = spec.data_mask[None, None] / np.maximum(noise_var, 1e-9)
    rows = spec.data_mask.any(axis=1)
    if not track:
        total = np.zeros(x.shape[:3])
        for _ in range(iterations):
            ref = qam.nearest_points(x, spec.modulation)
            phi = np.angle(np.sum(w * x * np.conj(ref), axis=-1))  # [B, tx, S]
            phi = np.where(rows[None, None], phi, 0.0)
            x *= np.exp(-1j * phi)[..., None].astype(np.complex64)
            total += phi
        return (x, total) if return_phase else x
    phase = np.zeros(x.shape[:3])  # [B, tx, S] phase removed so far
    n_re = max(int(spec.data_mask.sum(1).max()), 1)
    margin = TRACK_MARGIN * np.sqrt(n_re)
    for s, prev in _track_order(rows):
        start = phase[..., prev] if prev is not None else np.zeros(x.shape[:2])
        best_cost = np.full(x.shape[:2], np.inf)
        best_phi = np.zeros(x.shape[:2])
        # Hypotheses: the pilot-anchored phase 0 (no phase noise), the neighbour's phase, and a
        # step past the decision angle either side of it. Leaving 0 takes a clear margin: at low
        # SNR the costs are close and a tracked estimate would random-walk on noise alone.
        for i, off in enumerate((None, *TRACK_OFFSETS)):
            phi = np.zeros(x.shape[:2]) if off is None else start + off
            for _ in range(iterations):
                xs = x[:, :, s] * np.exp(-1j * phi)[..., None]
                phi = phi + np.angle(np.sum(w[:, :, s] * xs * np.conj(qam.nearest_points(xs, spec.modulation)), -1))
            xs = x[:, :, s] * np.exp(-1j * phi)[..., None]
            cost = np.sum(w[:, :, s] * np.abs(xs - qam.nearest_points(xs, spec.modulation)) ** 2, -1)
            # a tracked hypothesis must beat the anchored one (and earlier ones) by the margin
            better = cost < (best_cost if i == 0 else np.minimum(best_cost, anchored - margin))
            if i == 0:
                anchored = cost
            best_cost, best_phi = np.where(better, cost, best_cost), np.where(better, phi, best_phi)
        phase[..., s] = best_phi
        x[:, :, s] *= np.exp(-1j * best_phi)[..., None].astype(np.complex64)
    return (x, phase) if return_phase else x


def _track_order(data_rows: np.ndarray) -> list[tuple[int, int | None]]:
    """(row, the row whose phase it starts from, None = zero) for every data row: backwards
    from the first pilot symbol to the frame start, forwards from each pilot symbol to the
    next one (or the frame end)."""
    pilots = np.flatnonzero(~data_rows)
    if pilots.size == 0:
        rows = np.flatnonzero(data_rows)
        return [(int(rows[0]), None)] + [(int(r), int(p)) for p, r in zip(rows[:-1], rows[1:])]
    order: list[tuple[int, int | None]] = []
    for s in range(pilots[0] - 1, -1, -1):
        order.append((s, None if s == pilots[0] - 1 else s + 1))
    for i, p in enumerate(pilots):
        end = pilots[i + 1] if i + 1 < pilots.size else data_rows.size
        for s in range(p + 1, end):
            order.append((s, None if s == p + 1 else s - 1))
    return order


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
