"""Linear MMSE over the whole grid of one link from its pilot LS values.

H_hat = R_hp (R_pp + noise_var I)^-1 h_ls with R the grid covariance. With R_pp = U diag(l) U^H
precomputed, any per-frame noise variance costs two small matrix products, no inversion.

'lmmse': R is the sample covariance of channels generated for a configuration or a mix (what a
receiver can know); 'genie': R is the exact covariance of the true configuration (simulation
only, an upper reference).
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from pathlib import Path

import numpy as np

from ..frame import FrameSpec
from ..sim.grid import ChannelConfig, ChannelMix, genie_factors, grid_channels
from .base import Estimator, estimate_noise_var, pilot_ls, register


def sample_covariance(spec: FrameSpec, source: ChannelConfig | ChannelMix, n: int = 8000,
                      seed: int = 1234, timing_jitter: float | None = None) -> np.ndarray:
    """Sample covariance [n_sym*n_occ]^2 of one link's effective channel, from ``n`` generated
    realisations of a config or a mix. Cached on disk (it takes seconds to generate)."""
    key = json.dumps([spec.replace(n_tx=1, modulation="qpsk", fec="none").to_dict(), type(source).__name__,
                      dataclasses.asdict(source), n, seed, timing_jitter], sort_keys=True, default=str)
    path = cache_dir() / f"cov-{hashlib.sha256(key.encode()).hexdigest()[:20]}.npy"
    if path.exists():
        try:
            return np.load(path, allow_pickle=False).astype(np.complex128) * spec.tx_amplitude ** 2
        except (OSError, ValueError):
            pass  # unreadable cache entry: regenerate
    R = _sample_covariance(spec.replace(n_tx=1), source, n, seed, timing_jitter)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.tmp.npy")
        np.save(tmp, R.astype(np.complex64))
        os.replace(tmp, path)
    except OSError:
        pass  # read-only home: just no cache
    return R * spec.tx_amplitude ** 2


def cache_dir() -> Path:
    return Path(os.environ.get("GDM_CACHE_DIR", Path.home() / ".cache" / "gr-gdm"))


def _sample_covariance(single: FrameSpec, source, n, seed, timing_jitter) -> np.ndarray:
    rng = np.random.default_rng(seed)
    if isinstance(source, ChannelMix):
        jitter = source.timing_jitter if timing_jitter is None else timing_jitter
        configs = source.sample(rng, n)
    else:
        jitter = timing_jitter or 0.0
        configs = [source] * n
    H = grid_channels(single, configs, rng=rng, timing_jitter=jitter)[:, 0, 0]
    X = H.reshape(n, -1).astype(np.complex128)
    return (X.T @ X.conj()) / n


class _Linear(Estimator):
    needs_noise_var = True

    def _set_covariance(self, R: np.ndarray):
        self.R = R
        self._ops = []
        for tx in range(self.n_tx):
            p = np.flatnonzero(self.spec.pilot_mask(tx).reshape(-1))
            lam, U = np.linalg.eigh(R[np.ix_(p, p)])
            lam = np.clip(lam, 0, None)
            A = R[:, p] @ U  # [N, P]
            self._ops.append((U.conj().T.astype(np.complex64), A.astype(np.complex64), lam))

    def _estimate_tx(self, Y, noise_var, tx):
        UH, A, lam = self._ops[tx]
        B, R = Y.shape[:2]
        ls = pilot_ls(Y, self.spec, tx)  # [B, rx, P]
        # 2-D products over the whole batch: one matrix product each, not one per link
        z = (ls.reshape(B * R, -1) @ UH.T).reshape(B, R, -1)  # U^H ls
        z = z / (lam[None, None, :] + noise_var[:, None, None]).astype(np.float32)
        H = z.reshape(B * R, -1) @ A.T
        return H.reshape(B, R, self.spec.n_sym, self.spec.n_occ)


@register("lmmse")
class LMMSE(_Linear):
    name = "lmmse"

    def __init__(self, spec: FrameSpec, n_rx: int = 1, source: ChannelConfig | ChannelMix | None = None,
                 n_train: int = 8000, seed: int = 1234, covariance: np.ndarray | None = None):
        super().__init__(spec, n_rx)
        self.source = source if source is not None else ChannelMix()
        R = covariance if covariance is not None else sample_covariance(spec, self.source, n_train, seed)
        self._set_covariance(R)


@register("genie")
class GenieLMMSE(_Linear):
    """LMMSE with the exact covariance of the true channel configuration (simulation only).
    ``config`` fixes one configuration; ``estimate(Y, nv, configs=[...])`` takes one per frame
    (e.g. for a mix). NLOS covariances are Kronecker products, so each configuration costs two
    small eigendecompositions instead of a 1008x1008 covariance."""
    name = "genie"

    def __init__(self, spec: FrameSpec, n_rx: int = 1, config: ChannelConfig | None = None):
        super().__init__(spec, n_rx)
        self.config = config
        self._pilots = []
        for tx in range(self.n_tx):
            mask = spec.pilot_mask(tx)
            rows, cols = np.flatnonzero(mask.any(1)), np.flatnonzero(mask.any(0))
            if mask[np.ix_(rows, cols)].sum() != rows.size * cols.size:
                raise ValueError("genie: pilot pattern is not a grid of rows x columns")
            self._pilots.append((rows, cols))

    def estimate(self, Y, noise_var=None, configs: list[ChannelConfig] | None = None):
        Y = self.check_input(Y)
        if configs is None:
            if self.config is None:
                raise ValueError("genie needs the true channel config (config=ChannelConfig(...) or "
                                 "configs=[...] per frame); it is a simulation-only reference")
            configs = [self.config] * Y.shape[0]
        if len(configs) != Y.shape[0]:
            raise ValueError(f"genie: {len(configs)} configs for {Y.shape[0]} frames")
        nv = estimate_noise_var(Y, self.spec) if noise_var is None else \
            np.broadcast_to(np.asarray(noise_var, float), (Y.shape[0],))
        self.last_info = {"method": self.name, "noise_var": nv}
        H = np.empty((Y.shape[0], self.n_rx, self.n_tx, self.spec.n_sym, self.spec.n_occ), np.complex64)
        cache = {}
        for b, cfg in enumerate(configs):
            if cfg not in cache:
                cache[cfg] = self._operators(cfg)
            for tx in range(self.n_tx):
                H[b, :, tx] = cache[cfg][tx](pilot_ls(Y[b:b + 1], self.spec, tx)[0], float(nv[b]))
        return H

    def _operators(self, cfg):
        terms = genie_factors(self.spec, cfg)
        ops = []
        for rows, cols in self._pilots:
            if len(terms) == 1:
                ops.append(_kron_lmmse(*terms[0], rows, cols))
            else:
                R = sum(np.kron(rt, rf) for rt, rf in terms)
                ops.append(_full_lmmse(R, rows, cols, self.spec))
        return ops


def _kron_lmmse(rt, rf, rows, cols):
    """H = R[:, p] (R_pp + s2 I)^-1 z for R = rt (x) rf and pilots rows x cols."""
    la, A = np.linalg.eigh(rt[np.ix_(rows, rows)])
    lb, Bm = np.linalg.eigh(rf[np.ix_(cols, cols)])
    lam = np.clip(la, 0, None)[:, None] * np.clip(lb, 0, None)[None, :]
    Lt, Lf = rt[:, rows] @ A, rf[:, cols] @ Bm

    def apply(z, s2):  # z [n_rx, P]
        Z = z.reshape(z.shape[0], rows.size, cols.size)
        C = (A.conj().T @ Z @ Bm.conj()) / (lam + s2)
        return Lt @ C @ Lf.T

    return apply


def _full_lmmse(R, rows, cols, spec):
    p = (rows[:, None] * spec.n_occ + cols[None, :]).reshape(-1)
    lam, U = np.linalg.eigh(R[np.ix_(p, p)])
    A = R[:, p] @ U

    def apply(z, s2):
        return ((z @ U.conj()) / (np.clip(lam, 0, None) + s2) @ A.T).reshape(z.shape[0], spec.n_sym, spec.n_occ)

    return apply
