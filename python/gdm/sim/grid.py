"""Channels on the resource grid: what the receiver sees after ideal sync, per frame.

H[b, rx, tx, s, k] = tx_amplitude * sum_l g_l(t_s) exp(-j 2 pi f_k tau_l), with g_l from
TapFading evaluated at the middle of each symbol's FFT window. This is the *effective* channel
of the FrameSpec convention (see frame.py), the target of every estimator.
"""
from __future__ import annotations

import dataclasses

import numpy as np

from ..frame import FrameSpec
from .fading import TapFading
from .profiles import make_profile, profile_names


@dataclasses.dataclass(frozen=True)
class ChannelConfig:
    profile: str = "TDL-C"
    delay_spread: float = 300e-9
    doppler: float = 0.0
    rx_corr: float = 0.0
    tx_corr: float = 0.0

    def __post_init__(self):
        make_profile(self.profile, self.delay_spread)  # validates name and range
        if self.doppler < 0:
            raise ValueError(f"doppler must be >= 0 Hz, got {self.doppler}")

    def label(self) -> str:
        return f"{self.profile} {self.delay_spread * 1e9:g}ns {self.doppler:g}Hz"


@dataclasses.dataclass(frozen=True)
class ChannelMix:
    """The training / in-distribution mix: profile uniform over ``profiles``, delay spread
    log-uniform, Doppler uniform, plus an optional timing jitter of the FFT window (samples)."""
    profiles: tuple[str, ...] = ("TDL-A", "TDL-B", "TDL-C")
    delay_spread: tuple[float, float] = (10e-9, 1000e-9)
    doppler: tuple[float, float] = (0.0, 400.0)
    timing_jitter: float = 0.0
    rx_corr: float = 0.0

    def sample(self, rng: np.random.Generator, n: int) -> list[ChannelConfig]:
        lo, hi = np.log(self.delay_spread[0]), np.log(self.delay_spread[1])
        names = rng.choice(self.profiles, n)
        ds = np.exp(rng.uniform(lo, hi, n))
        fd = rng.uniform(*self.doppler, n)
        return [ChannelConfig(str(p), float(d), float(f), self.rx_corr) for p, d, f in zip(names, ds, fd)]

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def symbol_times(spec: FrameSpec) -> np.ndarray:
    """Seconds from the frame start (preamble) to the middle of each data symbol's FFT window."""
    s = np.arange(spec.n_sym) + 1
    return (s * spec.symbol_len + spec.cp_len + spec.fft_len / 2) / spec.sample_rate


def carrier_freqs(spec: FrameSpec) -> np.ndarray:
    return np.asarray(spec.occupied) * spec.subcarrier_spacing


def grid_channels(spec: FrameSpec, configs: list[ChannelConfig] | ChannelConfig, n: int | None = None,
                  n_rx: int = 1, n_tx: int | None = None, rng: np.random.Generator | None = None,
                  timing_jitter: float = 0.0, chunk: int = 256) -> np.ndarray:
    """complex64 [B, n_rx, n_tx, n_sym, n_occ]: one independent realisation per config.

    ``configs`` is a list (one per frame) or a single config repeated ``n`` times.
    ``timing_jitter`` adds a uniform random FFT-window offset of up to +-that many samples.
    """
    rng = rng if rng is not None else np.random.default_rng()
    n_tx = spec.n_tx if n_tx is None else n_tx
    if isinstance(configs, ChannelConfig):
        configs = [configs] * (1 if n is None else n)
    B = len(configs)
    out = np.empty((B, n_rx, n_tx, spec.n_sym, spec.n_occ), np.complex64)
    t = symbol_times(spec)
    f = carrier_freqs(spec)
    names = np.array([c.profile.upper() for c in configs])
    for name in np.unique(names):
        idx_all = np.flatnonzero(names == name)
        for s in range(0, idx_all.size, chunk):
            idx = idx_all[s:s + chunk]
            base = make_profile(name, 1e-6)  # delays for 1 us spread, scaled per realisation
            ds = np.array([configs[i].delay_spread for i in idx]) / 1e-6
            fd = np.array([configs[i].doppler for i in idx])
            corr = configs[idx[0]].rx_corr
            fad = TapFading(base, fd, n_rx, n_tx, rng, batch=idx.size, rx_corr=corr)
            g = fad.gains(t)  # [b, T, rx, tx, L]
            tau = ds[:, None] * base.delays[None, :]  # [b, L]
            if timing_jitter:
                tau = tau + rng.uniform(-timing_jitter, timing_jitter, (idx.size, 1)) / spec.sample_rate
            steer = np.exp(-2j * np.pi * f[None, :, None] * tau[:, None, :])  # [b, K, L]
            h = np.einsum("btrxl,bkl->brxtk", g, steer)
            out[idx] = h * spec.tx_amplitude
    return out


def genie_factors(spec: FrameSpec, config: ChannelConfig) -> list[tuple[np.ndarray, np.ndarray]]:
    """Exact covariance of one link's grid as a sum of Kronecker terms R_t (x) R_f: one term
    (Jakes time correlation x the PDP's frequency correlation) for NLOS profiles, plus one for a
    specular LOS tap, whose time correlation is its Doppler tone. Includes tx_amplitude^2."""
    from scipy.special import j0

    prof = make_profile(config.profile, config.delay_spread)
    t = symbol_times(spec)
    f = carrier_freqs(spec)
    dt = t[:, None] - t[None, :]
    df = f[:, None] - f[None, :]
    amp2 = spec.tx_amplitude ** 2
    diffuse = slice(1, None) if prof.los else slice(None)
    rf = np.einsum("l,lij->ij", prof.powers[diffuse],
                   np.exp(-2j * np.pi * df[None] * prof.delays[diffuse, None, None]))
    terms = [(j0(2 * np.pi * config.doppler * dt).astype(complex), rf * amp2)]
    if prof.los:
        rt = np.exp(1j * 2 * np.pi * config.doppler * np.cos(prof.los_aoa) * dt)
        terms.append((rt, prof.powers[0] * np.exp(-2j * np.pi * df * prof.delays[0]) * amp2))
    return terms


def genie_covariance(spec: FrameSpec, config: ChannelConfig) -> np.ndarray:
    """Exact covariance complex128 [n_sym*n_occ]^2 (row-major over symbol, carrier)."""
    return sum(np.kron(rt, rf) for rt, rf in genie_factors(spec, config))


__all__ = ["ChannelConfig", "ChannelMix", "grid_channels", "genie_covariance", "genie_factors", "symbol_times",
           "carrier_freqs", "profile_names"]
