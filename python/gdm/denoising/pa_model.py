"""Transmitter PA models the distortion canceller regenerates the transmitted signal through.

A memoryless PA is a complex gain that depends on the input amplitude: f(t) = t g(|t|)
(AM/AM in |g|, AM/PM in arg g). ``fit_gain_table`` estimates g blind, as a piecewise-linear
function of |t| on amplitude knots relative to the signal RMS, by weighted least squares in
the frequency domain: with t regenerated from symbol decisions, the received (equalized)
symbols are linear in the knot values, so the fit is one small linear solve per call and
needs no knowledge of the transmitter. ``known_pa`` wraps the simulator's Saleh / Rapp models
at a given back-off, for a receiver that does know its transmitter (and as a reference).
"""
from __future__ import annotations

import numpy as np

KNOTS = (0.0, 0.4, 0.8, 1.2, 1.6, 2.0, 2.5, 3.2)  # x signal RMS; OFDM peaks rarely pass 3.5 RMS
RIDGE = 1e-3  # second-difference penalty: knots few samples reach follow their neighbours
MODELS = ("blind", "saleh", "rapp")


def hat_weights(r: np.ndarray, knots=KNOTS) -> np.ndarray:
    """Linear-interpolation weights [..., J] of amplitudes r on the knots (constant beyond the
    last knot, so the rare peaks above it share its gain rather than an extrapolated one)."""
    k = np.asarray(knots, np.float64)
    r = np.clip(r, k[0], k[-1])
    j = np.clip(np.searchsorted(k, r, side="right") - 1, 0, k.size - 2)
    u = (r - k[j]) / (k[j + 1] - k[j])
    w = np.zeros((*r.shape, k.size))
    np.put_along_axis(w, j[..., None], (1 - u)[..., None], -1)
    np.put_along_axis(w, (j + 1)[..., None], u[..., None], -1)
    return w


def fit_gain_table(basis: np.ndarray, target: np.ndarray, weight: np.ndarray, ridge: float = RIDGE) -> np.ndarray:
    """Complex knot gains c [J] minimising sum weight |target - sum_j c_j basis_j|^2 + ridge *
    |second differences of c|^2 (scaled by the data's weight). basis [J, ...], target/weight
    [...] (weight 0 excludes an element)."""
    J = basis.shape[0]
    A = basis.reshape(J, -1)
    w = weight.reshape(-1)
    G = (A.conj() * w) @ A.T  # [J, J] normal matrix
    b = (A.conj() * w) @ target.reshape(-1)
    D2 = np.diff(np.eye(J), 2, axis=0)
    scale = max(float(np.real(np.trace(G))) / J, 1e-12)
    return np.linalg.solve(G + ridge * scale * (D2.T @ D2), b)


def known_pa(kind: str, backoff_db: float, rms: float):
    """The simulator's PA (sim.impairments) as a function of time samples of RMS ``rms``."""
    from ..sim.impairments import RappPA, SalehPA

    if kind == "saleh":
        return SalehPA(backoff_db, rms=rms).process
    if kind == "rapp":
        return RappPA(backoff_db, rms=rms).process
    raise ValueError(f"unknown PA model {kind!r}; valid: {', '.join(MODELS)}")
