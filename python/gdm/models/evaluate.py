"""Held-out evaluation and benchmarks for `gr-gdm eval` / `gr-gdm bench`.

``evaluate_nmse(["ls_interp", "lmmse", "genie", "diffusion"], scenario, ...)`` -> rows
{scenario, estimator, snr_db, metric, value, n_frames} (the long CSV format of DESIGN "CLI").
Channels come from ``default_rng([seed, EVAL_PURPOSE])``: a stream training never draws from.
The same channels serve every SNR and estimator (paired comparison); noise differs per SNR.

'genie' on a mix is the per-frame genie: each frame's LMMSE with the exact covariance of its own
configuration (profile, delay spread, Doppler) - the reference the issue asks for.
"""
from __future__ import annotations

import time
from typing import Iterable

import numpy as np
from scipy.special import j0
from tqdm.auto import tqdm

from .. import estimation
from ..frame import FrameSpec
from ..ofdm.modem import build_grid
from ..ofdm.qam import constellation
from ..sim.awgn import complex_noise, noise_var_for_snr
from ..sim.grid import ChannelConfig, ChannelMix, carrier_freqs, grid_channels, symbol_times
from ..sim.profiles import make_profile
from .data import EVAL_PURPOSE, purpose_rng

DEFAULT_SNRS = tuple(range(-5, 31, 5))


def scenario_label(scenario) -> str:
    if isinstance(scenario, ChannelMix):
        ds = f"{scenario.delay_spread[0] * 1e9:g}-{scenario.delay_spread[1] * 1e9:g}ns"
        fd = f"{scenario.doppler[0]:g}-{scenario.doppler[1]:g}Hz"
        jit = f" jitter {scenario.timing_jitter:g}" if scenario.timing_jitter else ""
        return f"mix {'/'.join(p.removeprefix('TDL-') for p in scenario.profiles)} {ds} {fd}{jit}"
    return scenario.label()


def draw_scenario(spec: FrameSpec, scenario, n: int, n_rx: int, rng) -> tuple[np.ndarray, list]:
    if isinstance(scenario, ChannelMix):
        configs = scenario.sample(rng, n)
        return grid_channels(spec, configs, rng=rng, timing_jitter=scenario.timing_jitter, n_rx=n_rx), configs
    return grid_channels(spec, scenario, n, n_rx=n_rx, rng=rng), [scenario] * n


def received(spec: FrameSpec, H: np.ndarray, nv: float, rng) -> np.ndarray:
    """Y [B, rx, S, K] = sum_tx H * X + noise, X with random data of the spec's modulation."""
    B = H.shape[0]
    pts = constellation(spec.modulation)
    data = pts[rng.integers(0, pts.size, (B, spec.n_tx, spec.n_data))]
    X = build_grid(data, spec)
    Y = np.einsum("brtsk,btsk->brsk", H, X)
    return (Y + complex_noise(rng, Y.shape, nv)).astype(np.complex64)


class PerFrameGenie:
    """LMMSE of each frame with the exact covariance of its own configuration."""

    def __init__(self, spec: FrameSpec, n_rx: int):
        self.spec, self.n_rx = spec, n_rx
        t, f = symbol_times(spec), carrier_freqs(spec)
        self.dt, self.df = t[:, None] - t[None, :], f[:, None] - f[None, :]
        self.masks = [spec.pilot_mask(tx) for tx in range(spec.n_tx)]

    def _filter(self, config: ChannelConfig, tx: int):
        key = (config, tx)
        if getattr(self, "_last", (None,))[0] != key:  # one-entry cache: a fixed config repeats
            self._last = (key, self._build(config, tx))
        return self._last[1]

    def _build(self, config: ChannelConfig, tx: int):
        mask = self.masks[tx]
        rows, cols = np.flatnonzero(mask.any(1)), np.flatnonzero(mask.any(0))
        prof = make_profile(config.profile, config.delay_spread)
        S, K = self.spec.n_sym, self.spec.n_occ
        Rhp = np.zeros((S, K, rows.size, cols.size), complex)
        for l, (tau, p) in enumerate(zip(prof.delays, prof.powers)):
            rf = p * np.exp(-2j * np.pi * self.df[:, cols] * tau)
            if prof.los and l == 0:
                rt = np.exp(1j * 2 * np.pi * config.doppler * np.cos(prof.los_aoa) * self.dt[:, rows])
            else:
                rt = j0(2 * np.pi * config.doppler * self.dt[:, rows])
            Rhp += rt[:, None, :, None] * rf[None, :, None, :]
        Rhp = Rhp.reshape(S * K, -1) * self.spec.tx_amplitude ** 2
        P = np.flatnonzero(mask.reshape(-1))
        lam, U = np.linalg.eigh(Rhp[P])
        return np.clip(lam, 0, None), U, Rhp @ U, P

    def estimate(self, Y, noise_var, configs) -> np.ndarray:
        return self.estimate_many([Y], [noise_var], configs)[0]

    def estimate_many(self, Ys: list, noise_vars: list, configs) -> list[np.ndarray]:
        """The same frames observed at several SNRs: each frame's filter is built once."""
        B = Ys[0].shape[0]
        S, K = self.spec.n_sym, self.spec.n_occ
        Hs = [np.empty((B, self.n_rx, self.spec.n_tx, S, K), np.complex64) for _ in Ys]
        nvs = [np.broadcast_to(np.asarray(v, float), (B,)) for v in noise_vars]
        for b in range(B):
            for tx in range(self.spec.n_tx):
                lam, U, A, P = self._filter(configs[b], tx)
                for Y, nv, H in zip(Ys, nvs, Hs):
                    ls = Y[b].reshape(self.n_rx, -1)[:, P] / self.spec.pilot_values(tx).reshape(-1)[P]
                    H[b, :, tx] = (((ls @ U.conj()) / (lam + nv[b])) @ A.T).reshape(self.n_rx, S, K)
        return Hs


def make_estimators(names: Iterable[str], spec: FrameSpec, n_rx: int, scenario, options: dict | None):
    options = options or {}
    out = {}
    for name in names:
        opts = dict(options.get(name, {}))
        if name == "genie":
            out[name] = PerFrameGenie(spec, n_rx)
            continue
        if name == "lmmse":
            opts.setdefault("source", scenario)
        out[name] = estimation.make(name, spec, n_rx, spec.n_tx, **opts)
    return out


def evaluate_nmse(estimators: Iterable[str], scenario=None, snrs=DEFAULT_SNRS, n_frames: int = 2000,
                  seed: int = 2024, preset: str | FrameSpec = "nr72", n_rx: int = 1, n_tx: int = 1,
                  options: dict | None = None, known_noise_var: bool = True, chunk: int = 250,
                  progress: bool = True, scenario_name: str | None = None) -> list[dict]:
    """Held-out NMSE (dB) per estimator and SNR. ``scenario``: a ChannelConfig or ChannelMix
    (default: the training mix). ``options``: {estimator name: make() keyword options}; 'lmmse'
    defaults to the scenario's own sample covariance."""
    scenario = ChannelMix() if scenario is None else scenario
    spec = preset if isinstance(preset, FrameSpec) else FrameSpec.preset(preset)
    spec = spec.replace(n_tx=n_tx)
    names = list(estimators)
    ests = make_estimators(names, spec, n_rx, scenario, options)
    rng = purpose_rng(seed, EVAL_PURPOSE)
    H, configs = draw_scenario(spec, scenario, n_frames, n_rx, rng)
    label = scenario_name or scenario_label(scenario)
    err = {(n, s): 0.0 for n in names for s in snrs}
    power = float(np.sum(np.abs(H.astype(np.complex128)) ** 2))
    nvs = {snr: float(noise_var_for_snr(snr)) for snr in snrs}
    Ys = {snr: received(spec, H, nvs[snr], rng) for snr in snrs}
    bar = tqdm(total=len(snrs) * len(names) * n_frames, desc=f"eval {label}", disable=not progress,
               unit="frame")
    for name, est in ests.items():
        for i in range(0, n_frames, chunk):
            sl = slice(i, i + chunk)
            n = H[sl].shape[0]
            nv_arg = {s: (np.full(n, nvs[s]) if known_noise_var else None) for s in snrs}
            if name == "genie":  # one filter per frame, applied at every SNR
                nv_g = [nv_arg[s] if known_noise_var else estimation.estimate_noise_var(Ys[s][sl], spec)
                        for s in snrs]
                outs = dict(zip(snrs, est.estimate_many([Ys[s][sl] for s in snrs], nv_g, configs[sl])))
            else:
                outs = {s: est.estimate(Ys[s][sl], nv_arg[s]) for s in snrs}
            for s in snrs:
                err[name, s] += float(np.sum(np.abs(outs[s].astype(np.complex128) - H[sl]) ** 2))
            bar.update(n * len(snrs))
    bar.close()
    return [dict(scenario=label, estimator=n, snr_db=float(s), metric="nmse_db",
                 value=round(10 * np.log10(max(err[n, s], 1e-30) / power), 3), n_frames=n_frames)
            for s in snrs for n in names]


def nmse_table(rows: list[dict]) -> str:
    """Rows -> a small markdown table (estimators as columns)."""
    names = list(dict.fromkeys(r["estimator"] for r in rows))
    snrs = list(dict.fromkeys(r["snr_db"] for r in rows))
    val = {(r["estimator"], r["snr_db"]): r["value"] for r in rows}
    out = ["| SNR dB | " + " | ".join(names) + " |", "|---" * (len(names) + 1) + "|"]
    for s in snrs:
        out.append(f"| {s:g} | " + " | ".join(f"{val.get((n, s), float('nan')):.2f}" for n in names) + " |")
    return "\n".join(out)


def benchmark(estimator: str = "diffusion", steps_list=(1, 2, 3), n_frames: int = 64, batch: int = 16,
              preset: str = "nr72", n_rx: int = 1, n_tx: int = 1, snr_db: float = 10.0, seed: int = 7,
              options: dict | None = None, progress: bool = True) -> list[dict]:
    """Throughput (``batch`` frames per call) and single-frame latency per step count.
    Rows: estimator, steps, batch, frames_per_s, samples_per_s (time-domain samples per antenna
    the estimator keeps up with), ms_per_frame, latency_ms_p50, latency_ms_p99, peak_rss_mb."""
    import resource
    spec = FrameSpec.preset(preset).replace(n_tx=n_tx)
    rng = purpose_rng(seed, EVAL_PURPOSE + 1)
    H, _ = draw_scenario(spec, ChannelMix(), n_frames, n_rx, rng)
    nv = float(noise_var_for_snr(snr_db))
    Y = received(spec, H, nv, rng)
    rows = []
    for steps in (steps_list if estimator == "diffusion" else [None]):
        opts = dict(options or {})
        if estimator == "diffusion":
            opts["steps"] = steps
        est = estimation.make(estimator, spec, n_rx, n_tx, **opts)
        est.estimate(Y[:batch], nv)  # warm-up: sessions, arenas, caches
        t0 = time.perf_counter()
        for i in range(0, n_frames, batch):
            est.estimate(Y[i:i + batch], nv)
        thr = time.perf_counter() - t0
        lat = []
        for i in tqdm(range(min(n_frames, 32)), desc=f"bench {estimator} steps={steps}", disable=not progress):
            t = time.perf_counter()
            est.estimate(Y[i:i + 1], nv)
            lat.append(1e3 * (time.perf_counter() - t))
        rows.append(dict(estimator=estimator, steps=steps, batch=batch, n_rx=n_rx, n_tx=n_tx,
                         frames_per_s=round(n_frames / thr, 2),
                         samples_per_s=round(n_frames / thr * spec.frame_len, 1),
                         ms_per_frame=round(1e3 * thr / n_frames, 3),
                         latency_ms_p50=round(float(np.percentile(lat, 50)), 3),
                         latency_ms_p99=round(float(np.percentile(lat, 99)), 3),
                         peak_rss_mb=round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)))
    return rows


def parse_scenario(text: str):
    """'mix' (the training mix), 'mix:jitter=1' or 'TDL-C,300e-9,0' (profile, delay spread s,
    Doppler Hz) -> ChannelMix / ChannelConfig."""
    if text.startswith("mix"):
        kw = dict(kv.split("=") for kv in text.split(":")[1:])
        return ChannelMix(timing_jitter=float(kw.get("jitter", 0)))
    parts = text.split(",")
    return ChannelConfig(parts[0], float(parts[1]) if len(parts) > 1 else 300e-9,
                         float(parts[2]) if len(parts) > 2 else 0.0)


def write_csv(rows: list[dict], path) -> None:
    import csv

    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=["scenario", "estimator", "snr_db", "metric", "value", "n_frames"])
        w.writeheader()
        w.writerows(rows)


def main(argv=None) -> None:
    import argparse
    import json

    p = argparse.ArgumentParser(description="held-out NMSE of channel estimators (gr-gdm eval core)")
    p.add_argument("--estimators", default="ls_interp,lmmse,genie,diffusion")
    p.add_argument("--scenario", action="append", default=None, help="mix | mix:jitter=1 | TDL-C,300e-9,0")
    p.add_argument("--snrs", default=",".join(map(str, DEFAULT_SNRS)))
    p.add_argument("--frames", type=int, default=2000)
    p.add_argument("--seed", type=int, default=2024)
    p.add_argument("--model", default=None, help="diffusion model (default: shipped)")
    p.add_argument("--lmmse-source", default="scenario", choices=["scenario", "mix"])
    p.add_argument("--csv", default=None)
    p.add_argument("--json", default=None)
    a = p.parse_args(argv)
    rows = []
    for sc in a.scenario or ["mix"]:
        opts = {"diffusion": {"model": a.model}} if a.model else {}
        if a.lmmse_source == "mix":
            opts["lmmse"] = {"source": ChannelMix()}
        r = evaluate_nmse(a.estimators.split(","), parse_scenario(sc), [float(s) for s in a.snrs.split(",")],
                          a.frames, a.seed, options=opts)
        print(nmse_table(r), flush=True)
        rows += r
    if a.csv:
        write_csv(rows, a.csv)
    if a.json:
        with open(a.json, "w") as f:
            json.dump(rows, f, indent=1)


if __name__ == "__main__":
    main()
