"""The adaptation guard: is the adapted prior better than the shipped one on frames it never saw?

Both priors predict held-out pilots of held-out frames from the remaining pilots (see
``objective.holdout_risk``: unbiased for the true prediction error, no channel needed):
- time: each pilot symbol from the other pilot symbol(s) - interpolation across symbols, the
  part of the grid that Doppler governs;
- frequency: the odd pilot carriers from the even ones and the even from the odd -
  interpolation across carriers, which the delay profile governs.
The prediction is the Gaussian-mixture posterior mean of the bank (the diffusion estimator's
prior) given the kept pilots. The risks of all splits are averaged per frame, and the paired
per-frame differences (shipped - adapted) give a mean and its standard error. The adapted prior
is accepted only if it is better by at least ``min_z`` standard errors (default 1: an adaptation
that is no better than the shipped prior within the noise of a few held-out frames - e.g. on the
training mix itself - is rejected rather than accepted by chance) and by ``margin_db``. With few
held-out links the standard error is itself uncertain: the threshold is the Student-t quantile
of the same one-sided confidence (1.84 standard errors from 2 links, 1.06 from 10, -> min_z).
"""
from __future__ import annotations

import dataclasses

import numpy as np

from ..estimation.bank import BankGrid, MixturePosterior
from ..frame import FrameSpec
from .objective import holdout_risk
from .observations import PilotObservations


def holdout_splits(mask: np.ndarray) -> list[tuple[str, np.ndarray, np.ndarray]]:
    """(name, kept mask, held-out mask) pairs of a separable pilot pattern."""
    rows, cols = np.flatnonzero(mask.any(1)), np.flatnonzero(mask.any(0))
    out = []
    if rows.size >= 2:
        for r in rows:
            keep = mask.copy()
            keep[r] = False
            out.append((f"time: symbol {r} from the others", keep, mask & ~keep))
    if cols.size >= 4:
        for parity in (0, 1):
            keep = mask.copy()
            keep[:, cols[parity::2]] = False
            out.append((f"frequency: {'even' if parity else 'odd'} pilot carriers from the others", keep, mask & ~keep))
    return out


@dataclasses.dataclass
class GuardReport:
    accepted: bool
    risk_base: float  # mean hold-out risk per RE, shipped prior (channel power units)
    risk_adapted: float
    se_diff: float  # standard error of the paired per-frame difference
    power: float  # mean channel power at the pilots (for dB)
    splits: dict  # split name -> (base, adapted) mean risk
    n_frames: int
    margin_db: float
    min_z: float = 1.0

    @property
    def z(self) -> float:
        """Improvement of the adapted prior in standard errors (positive: better)."""
        return float((self.risk_base - self.risk_adapted) / max(self.se_diff, 1e-30))

    def _db(self, v: float) -> float:
        """A risk as NMSE in dB, floored at -40 dB: with few held-out frames the unbiased estimate
        can come out at or below zero."""
        return float(10 * np.log10(max(v / self.power, 1e-4)))

    @property
    def gain_db(self) -> float:
        """Hold-out NMSE gain of the adapted prior (positive: better)."""
        return self._db(self.risk_base) - self._db(self.risk_adapted)

    def to_dict(self) -> dict:
        db = (lambda v: round(self._db(v), 3))
        return {"accepted": self.accepted, "criterion": "held-out pilot prediction risk (time and frequency "
                f"hold-out): adapted below shipped by >= {self.min_z:g} standard errors"
                + (f" and {self.margin_db:g} dB" if self.margin_db else ""),
                "heldout_frames": self.n_frames, "risk_shipped_db": db(self.risk_base),
                "risk_adapted_db": db(self.risk_adapted), "gain_db": round(self.gain_db, 3),
                "z": round(self.z, 2),
                "splits": {k: {"shipped_db": db(b), "adapted_db": db(a)} for k, (b, a) in self.splits.items()}}


def holdout_risks(grid: BankGrid, obs: PilotObservations, top: int = 64) -> tuple[dict, np.ndarray, np.ndarray]:
    """({split name: per-link risk [L]}, per-link noise variance, per-link pilot power) of the
    bank prior ``grid`` on the frames of ``obs``."""
    spec: FrameSpec = obs.spec
    post = MixturePosterior(spec, grid, top)
    risks: dict[str, list] = {}
    nvs, pw = [], []
    for tx in range(spec.n_tx):
        mask = spec.pilot_mask(tx)
        rows, cols = np.flatnonzero(mask.any(1)), np.flatnonzero(mask.any(0))
        ls_all, nv = obs.links(tx, rows, cols)
        nvs.append(nv)
        pw.append(np.mean(np.abs(ls_all) ** 2, (1, 2)) - nv)
        for name, keep, held in holdout_splits(mask):
            pat = post.pattern(keep)
            ls_keep, _ = obs.links(tx, pat.rows, pat.cols)
            mean = post.posterior(ls_keep, nv, pat)["mean"]  # [L, S, K]
            hr, hc = np.nonzero(held)
            a = spec.tx_amplitude
            y_held = obs.Y[..., hr, hc] / spec.pilot_values(tx)[hr, hc] / a  # [N, R, J]
            risks.setdefault(name, []).append(holdout_risk(y_held.reshape(-1, hr.size), mean[:, hr, hc], nv))
    return ({k: np.concatenate(v) for k, v in risks.items()}, np.concatenate(nvs), np.concatenate(pw))


def z_threshold(min_z: float, n: int) -> float:
    """Student-t quantile (n - 1 degrees of freedom) of the one-sided confidence Phi(min_z)."""
    from scipy.stats import norm, t

    if n < 2:
        return float("inf")
    return float(t.ppf(norm.cdf(min_z), n - 1)) if min_z > 0 else float(min_z)


def validate(base: BankGrid, adapted: BankGrid, heldout: PilotObservations, top: int = 64,
             margin_db: float = 0.0, min_z: float = 1.0) -> GuardReport:
    """Compare the priors on held-out frames; accept the adapted one only if it is better."""
    rb, _, pw = holdout_risks(base, heldout, top)
    ra, _, _ = holdout_risks(adapted, heldout, top)
    names = list(rb)
    if not names:
        raise ValueError("guard: the pilot pattern has no hold-out split (one pilot symbol and fewer "
                         "than 4 pilot carriers); the adaptation cannot be validated")
    per_b = np.mean([rb[k] for k in names], 0)
    per_a = np.mean([ra[k] for k in names], 0)
    mb, ma = float(per_b.mean()), float(per_a.mean())
    diff = per_a - per_b
    se = float(diff.std(ddof=1) / np.sqrt(diff.size)) if diff.size > 1 else float("inf")
    accepted = bool(mb - ma >= z_threshold(min_z, diff.size) * se and ma <= mb * 10 ** (-margin_db / 10))
    return GuardReport(accepted, mb, ma, se, float(max(pw.mean(), 1e-12)),
                       {k: (float(rb[k].mean()), float(ra[k].mean())) for k in names}, heldout.n_frames,
                       float(margin_db), float(min_z))
