"""Training batches generated on the fly: channels of the mix, a random SNR per link, pilot LS of
one pilot pattern per batch, the conditioning, and the diffusion variable.

Seeds: training and evaluation draw from ``np.random.default_rng([seed, PURPOSE])`` with different
purpose keys, so a held-out evaluation never reuses a training channel even with equal seeds.
"""
from __future__ import annotations

import dataclasses

import numpy as np

from ..frame import FrameSpec
from ..sim.awgn import complex_noise, noise_var_for_snr
from ..sim.grid import ChannelMix, grid_channels
from .features import Conditioner, to_planes
from .layout import START_FLAG

TRAIN_PURPOSE = 0x7A1
EVAL_PURPOSE = 0xE7A


def purpose_rng(seed: int, purpose: int) -> np.random.Generator:
    return np.random.default_rng([int(seed), int(purpose)])


@dataclasses.dataclass(frozen=True)
class NoiseLevels:
    """How the diffusion noise level is drawn in training, relative to the frame's bank
    posterior std s: log-uniform sigma / s in [lo, hi]; with probability ``p_start`` the sample is
    instead the sampler's exact start state (x = LS/interp, sigma = the start sigma), so the first
    reverse step is trained on what it will see."""
    lo: float = 0.1
    hi: float = 50.0
    p_start: float = 0.5


def link_channels(spec: FrameSpec, mix: ChannelMix, n: int, rng: np.random.Generator) -> np.ndarray:
    """complex64 [n, S, K]: unit-power single-link grids of the mix."""
    one = spec.replace(n_tx=1)
    return grid_channels(one, mix.sample(rng, n), rng=rng, timing_jitter=mix.timing_jitter)[:, 0, 0]


def make_batch(cond: Conditioner, mix: ChannelMix, n: int, rng: np.random.Generator,
               snr_db: tuple[float, float] = (-10.0, 35.0), pattern_p=(0.6, 0.2, 0.2),
               levels: NoiseLevels = NoiseLevels()) -> dict:
    """A training batch: dict of float32 arrays x, sigma, cond, glob, target (planes)."""
    masks = cond.training_patterns()
    pat = cond.pattern(masks[rng.choice(len(masks), p=pattern_p)])
    H = link_channels(cond.spec, mix, n, rng)
    snr = rng.uniform(*snr_db, n)
    nv = noise_var_for_snr(snr)
    r, c = pat.bank.rows, pat.bank.cols
    ls = H[:, r[:, None], c[None, :]] + complex_noise(rng, (n, r.size, c.size), nv[:, None, None])
    f = cond(ls, nv, pat)
    s_mean = np.sqrt(np.mean(f["std"].astype(np.float64) ** 2, (1, 2)))
    sigma = s_mean * np.exp(rng.uniform(np.log(levels.lo), np.log(levels.hi), n))
    x = H + complex_noise(rng, H.shape, (sigma ** 2)[:, None, None])
    start = rng.random(n) < levels.p_start
    sigma[start] = f["sigma_start"][start]
    x[start] = f["interp"][start]
    f["glob"][start, START_FLAG] = 1.0
    return dict(x=to_planes(x), sigma=sigma.astype(np.float32), cond=f["cond"], glob=f["glob"],
                target=to_planes(H))
