"""Conditioning of the denoiser, computed in numpy from the pilot observations of one link.

One code path for training and inference: both hand ``Conditioner`` the pilot LS values of
unit-power links (the estimator divides by the FrameSpec's tx amplitude first) and the per-RE
noise variance. Planes (see network.N_COND): bank posterior mean (2), log bank posterior std (1),
zero-filled pilot LS (2), pilot mask (1), LS + linear interpolation (2). Globals: log10 noise
variance, the bank's goodness-of-fit statistic, its posterior mean log delay spread and Doppler,
and the start flag (network.START_FLAG; 0 here).
"""
from __future__ import annotations

import numpy as np

from ..estimation.bank import BankGrid, MixturePosterior, _Pattern
from ..estimation.interp import _interp_matrix, separable_apply
from ..frame import FrameSpec


class LinkPattern:
    """One pilot pattern (e.g. all carriers, or the even / odd comb of a 2-stream frame)."""

    def __init__(self, spec: FrameSpec, mask: np.ndarray, post: MixturePosterior):
        self.mask = mask
        self.bank: _Pattern = post.pattern(mask)
        r, c = self.bank.rows, self.bank.cols
        occ = np.asarray(spec.occupied, float)
        self.At = _interp_matrix(r.astype(float), np.arange(spec.n_sym, dtype=float), "linear").astype(np.float32)
        self.AfT = _interp_matrix(occ[c], occ, "linear").T.astype(np.float32)
        self._At_c, self._AfT_c = self.At.astype(np.complex64), self.AfT.astype(np.complex64)

    def interp(self, ls: np.ndarray) -> np.ndarray:
        """LS + linear interpolation [N, S, K] of pilot LS [N, rows, carriers]."""
        return np.ascontiguousarray(separable_apply(self._At_c, self._AfT_c, ls.astype(np.complex64)))


class Conditioner:
    def __init__(self, spec: FrameSpec, grid: BankGrid | None = None, top: int = 64,
                 start_scale: float = 3.0):
        self.spec, self.start_scale = spec, float(start_scale)
        self.post = MixturePosterior(spec, grid, top)
        self._patterns: dict[bytes, LinkPattern] = {}

    def pattern(self, mask: np.ndarray) -> LinkPattern:
        key = np.packbits(mask).tobytes()
        if key not in self._patterns:
            self._patterns[key] = LinkPattern(self.spec, mask, self.post)
        return self._patterns[key]

    def training_patterns(self) -> list[np.ndarray]:
        """The pilot patterns a link of this preset can have: one stream, or any stream's comb
        when the frame carries two."""
        pats = [self.spec.replace(n_tx=1).pilot_mask(0)]
        two = self.spec.replace(n_tx=2)
        pats += [two.pilot_mask(0), two.pilot_mask(1)]
        return pats

    def __call__(self, ls: np.ndarray, noise_var: np.ndarray, pat: LinkPattern) -> dict:
        """ls complex [N, n_pilot_rows, n_pilot_carriers] (unit-power links), noise_var [N] ->
        dict(cond float32 [N, 8, S, K], glob float32 [N, 4], mean/interp complex64 [N, S, K],
        std float32 [N, S, K], fit float32 [N], sigma_start float32 [N])."""
        N = ls.shape[0]
        S, K = self.spec.n_sym, self.spec.n_occ
        nv = np.broadcast_to(np.asarray(noise_var, float), (N,))
        post = self.post.posterior(ls, nv, pat.bank)
        mean, std = post["mean"], np.sqrt(post["var"]).astype(np.float32)
        interp = pat.interp(ls)
        zf = np.zeros((N, S, K), np.complex64)
        zf[:, pat.bank.rows[:, None], pat.bank.cols[None, :]] = ls
        cond = np.empty((N, 8, S, K), np.float32)
        cond[:, 0], cond[:, 1] = mean.real, mean.imag
        cond[:, 2] = np.log(std)
        cond[:, 3], cond[:, 4] = zf.real, zf.imag
        cond[:, 5] = pat.mask
        cond[:, 6], cond[:, 7] = interp.real, interp.imag
        glob = np.stack([np.log10(nv), np.clip(post["fit"], -5, 50) / 10,
                         np.log(post["ds_mean"] / 100e-9), post["fd_mean"] / 400, np.zeros(N)],
                        1).astype(np.float32)  # last: start flag, set by the sampler / training
        return dict(cond=cond, glob=glob, mean=mean, std=std, interp=interp, fit=post["fit"], ls=ls,
                    doppler_lr=post["doppler_lr"],
                    sigma_start=self.start_scale * start_sigma(interp, mean, std))


def start_sigma(interp: np.ndarray, mean: np.ndarray, std: np.ndarray) -> np.ndarray:
    """Noise level of the LS/interp start point, per frame: E|interp - H|^2 = |interp - m|^2 + s^2
    under the bank posterior: the 'SNR-matched step', measured per frame rather than read off a
    table. The Conditioner starts the reverse process at ``start_scale`` times this level: the
    LS/interp error is not white noise and it is correlated with the conditioning, so it is
    treated as noise of a somewhat larger level, which keeps the Gaussian skip path from
    copying interpolation error into the estimate (measured: scale 1 costs 0.1-0.3 dB)."""
    e = np.abs(interp - mean) ** 2 + std.astype(np.float64) ** 2
    return np.sqrt(e.mean((-1, -2))).astype(np.float32)


def to_planes(h: np.ndarray) -> np.ndarray:
    """complex [..., S, K] -> float32 [..., 2, S, K]."""
    return np.stack([h.real, h.imag], -3).astype(np.float32)


def from_planes(x: np.ndarray) -> np.ndarray:
    return (x[..., 0, :, :] + 1j * x[..., 1, :, :]).astype(np.complex64)
