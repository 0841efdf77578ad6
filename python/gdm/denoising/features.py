"""Network inputs of the diffusion symbol denoiser, in numpy (shared by training and inference).

For one stream of a frame: y complex [N, S, K] (equalized symbols, after the classical CPE
step), v float [N, S, K] (post-equalization noise variance, the diffusion noise level of each
RE) and the constellation. The Gaussian posterior of the constellation point given y with
noise v is the denoiser a clean channel needs (Tweedie's formula for a discrete prior); the
network starts from it and learns what impairments change.

Planes (``cond``, [N, N_COND, S, K]):
  0-1  Gaussian posterior mean m (at pilots: the known pilot)
  2    log posterior variance
  3-4  (y - m) conj(m): radial / tangential decision error (rotation, compression)
  5-6  conj(m) at the mirrored carrier -k (IQ imbalance puts conj(x_-k) onto carrier k)
  7-8  conj(y) at the mirrored carrier
  9    data mask (0 at pilots)
 10    |m|^2 (outer constellation points suffer more from PA compression)
 11-12 sin, cos - 1 of the phase the classical CPE step removed from the RE's OFDM symbol (so
       the network can refine or undo it)
Globals (``glob``, [N, N_GLOBAL]): one-hot modulation (qpsk, 16qam, 64qam), log10 mean v over
the frame's data REs, log10 of (mean |y - m|^2 / mean v) (excess error, how impaired it looks).
"""
from __future__ import annotations

import numpy as np

from ..frame import FrameSpec
from ..ofdm import qam
from ..ofdm.compensation import cpe_correct

MODULATIONS = ("qpsk", "16qam", "64qam")
N_COND = 13
N_GLOBAL = len(MODULATIONS) + 2
V_FLOOR = 1e-6


def gaussian_posterior(y: np.ndarray, v: np.ndarray, modulation: str) -> tuple[np.ndarray, np.ndarray]:
    """Posterior mean (complex64) and variance (float32) of a unit-power square-QAM point given
    y = x + CN(0, v), per element. Square QAM separates into two PAM axes, each with noise v/2."""
    pam, _ = qam._axis(modulation)
    pam = pam.astype(np.float64)
    vv = np.maximum(np.asarray(v, np.float64), V_FLOOR)[..., None]

    def axis(u):
        lg = -(u[..., None] - pam) ** 2 / vv
        lg -= lg.max(-1, keepdims=True)
        p = np.exp(lg)
        p /= p.sum(-1, keepdims=True)
        mu = p @ pam
        return mu, np.maximum(p @ pam ** 2 - mu ** 2, 0.0)

    y = np.asarray(y)
    mr, vr = axis(y.real.astype(np.float64))
    mi, vi = axis(y.imag.astype(np.float64))
    return (mr + 1j * mi).astype(np.complex64), (vr + vi).astype(np.float32)


def mirror_index(spec: FrameSpec) -> np.ndarray:
    """Index of carrier -k for every occupied carrier k (itself where -k is not occupied)."""
    occ = list(spec.occupied)
    pos = {k: i for i, k in enumerate(occ)}
    return np.array([pos.get(-k, i) for i, k in enumerate(occ)])


def features(y: np.ndarray, v: np.ndarray, spec: FrameSpec, modulation: str | None = None,
             tx: int = 0, cpe_phase: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """y complex [N, S, K], v [N, S, K] of stream ``tx`` -> float32 arrays y [N, 2, S, K],
    logv [N, 1, S, K], cond [N, N_COND, S, K], glob [N, N_GLOBAL] (the ONNX inputs)."""
    mod = modulation or spec.modulation
    if mod not in MODULATIONS:
        raise ValueError(f"the symbol denoiser handles {', '.join(MODULATIONS)}, not {mod!r}")
    y = np.asarray(y, np.complex64)
    v = np.maximum(np.asarray(v, np.float32), V_FLOOR)
    data = spec.data_mask
    pil = spec.pilot_mask(tx)
    m, pv = gaussian_posterior(y, v, mod)
    m = np.where(pil, spec.pilot_values(tx), m)
    m = np.where(data | pil, m, 0).astype(np.complex64)
    pv = np.where(data, pv, 0.0)
    e = (y - m) * np.conj(m)
    mir = mirror_index(spec)
    mm, ym = np.conj(m[..., mir]), np.conj(y[..., mir])
    N, S, K = y.shape
    cond = np.empty((N, N_COND, S, K), np.float32)
    cond[:, 0], cond[:, 1] = m.real, m.imag
    cond[:, 2] = np.log(pv + 1e-4) / 4
    cond[:, 3], cond[:, 4] = e.real, e.imag
    cond[:, 5], cond[:, 6] = mm.real, mm.imag
    cond[:, 7], cond[:, 8] = ym.real, ym.imag
    cond[:, 9] = data
    cond[:, 10] = np.abs(m) ** 2
    ph = np.zeros((N, S)) if cpe_phase is None else np.asarray(cpe_phase)
    cond[:, 11] = np.sin(ph)[:, :, None]
    cond[:, 12] = (np.cos(ph) - 1)[:, :, None]
    nd = data.sum()
    mean_v = np.sum(v * data, (1, 2)) / nd
    err = np.sum(np.abs(y - m) ** 2 * data, (1, 2)) / nd
    glob = np.zeros((N, N_GLOBAL), np.float32)
    glob[:, MODULATIONS.index(mod)] = 1.0
    glob[:, 3] = np.log10(mean_v)
    glob[:, 4] = np.log10(np.maximum(err, 1e-12) / mean_v)
    planes = np.stack([y.real, y.imag], 1).astype(np.float32)
    return dict(y=planes, logv=np.log(v)[:, None].astype(np.float32), cond=cond, glob=glob)


def prepare(y: np.ndarray, v: np.ndarray, spec: FrameSpec, cpe: bool, tx: int = 0) -> dict[str, np.ndarray]:
    """Equalized symbols of one stream [N, S, K] and their variance -> network inputs, after
    the classical tracking CPE correction when ``cpe`` (as the model was trained)."""
    phase = None
    if cpe:
        y, phase = cpe_correct(np.asarray(y)[:, None], np.asarray(v)[:, None], spec.replace(n_tx=1),
                               iterations=3, track=True, return_phase=True)
        y, phase = y[:, 0], phase[:, 0]
    return features(y, v, spec, tx=tx, cpe_phase=phase)
