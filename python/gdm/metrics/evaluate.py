"""Evaluation sweeps shared by `gr-gdm eval`, the demo and the issue figures: NMSE vs SNR on the
grid (held-out channels from a seed of their own) and BER / PER / NMSE vs SNR on the numpy link.
Rows are long format: (scenario, estimator, snr_db, metric, value, n_frames)."""
from __future__ import annotations

import csv
import dataclasses
from pathlib import Path

import numpy as np

from .. import estimation
from ..frame import FrameSpec
from ..ofdm.modem import build_grid
from ..sim.awgn import complex_noise
from ..sim.grid import ChannelConfig, ChannelMix, grid_channels
from .core import nmse_db

FIELDS = ("scenario", "estimator", "snr_db", "metric", "value", "n_frames")
EVAL_SEED = 7_000_003  # held-out channels: training and covariance estimation use other seeds


def parse_scenario(text: str) -> tuple[str, ChannelConfig | ChannelMix]:
    """'mix' (the training mix) or 'PROFILE[:DELAY_SPREAD_NS[:DOPPLER_HZ]]', e.g. TDL-C:300:0."""
    if text.lower() == "mix":
        return "mix", ChannelMix()
    parts = text.split(":")
    try:
        ds = float(parts[1]) * 1e-9 if len(parts) > 1 else 300e-9
        fd = float(parts[2]) if len(parts) > 2 else 0.0
    except ValueError:
        raise ValueError(f"scenario {text!r}: expected 'mix' or PROFILE[:DELAY_SPREAD_NS[:DOPPLER_HZ]], "
                         f"e.g. TDL-C:300:0") from None
    cfg = ChannelConfig(parts[0].upper(), ds, fd)
    return f"{cfg.profile} {ds * 1e9:g}ns {fd:g}Hz", cfg


def make_estimators(names, spec, n_rx, source, lmmse_source="scenario", options=None):
    options = options or {}
    out = {}
    for name in names:
        opts = dict(options.get(name, {}))
        if name == "lmmse":
            opts.setdefault("source", ChannelMix() if lmmse_source == "mix" or isinstance(source, ChannelMix)
                            else source)
        out[name] = estimation.make(name, spec, n_rx, **opts)
    return out


def received_grid(H: np.ndarray, spec: FrameSpec, snr_db: float, rng) -> np.ndarray:
    """Y = H * X + noise on the grid (pilots known, data symbols random QPSK)."""
    B = H.shape[0]
    data = np.exp(1j * np.pi / 4 + 1j * np.pi / 2 * rng.integers(0, 4, (B, spec.n_tx, spec.n_data)))
    Y = np.einsum("brtsk,btsk->brsk", H, build_grid(data, spec))
    return Y + complex_noise(rng, Y.shape, 10 ** (-snr_db / 10))


def grid_nmse(scenario: str, names: list[str], snrs, n_frames: int = 500, spec: FrameSpec | None = None,
              n_rx: int = 1, seed: int = EVAL_SEED, lmmse_source: str = "scenario", options=None,
              progress: bool = False, estimators: dict | None = None) -> list[dict]:
    """NMSE [dB] per estimator and SNR on held-out channels of a scenario."""
    spec = spec or FrameSpec.preset("nr72")
    label, source = parse_scenario(scenario)
    rng = np.random.default_rng(seed)
    configs = source.sample(rng, n_frames) if isinstance(source, ChannelMix) else [source] * n_frames
    H = grid_channels(spec, configs, n_rx=n_rx, rng=rng,
                      timing_jitter=source.timing_jitter if isinstance(source, ChannelMix) else 0.0)
    ests = estimators or make_estimators(names, spec, n_rx, source, lmmse_source, options)
    rows = []
    it = list(snrs)
    if progress:
        from tqdm import tqdm
        it = tqdm(it, desc=f"NMSE {label}", unit="snr")
    for snr in it:
        Y = received_grid(H, spec, snr, rng)
        nv = np.full(n_frames, 10 ** (-snr / 10))
        for name, est in ests.items():
            kw = {"configs": configs} if name == "genie" else {}
            Hh = est.estimate(Y, nv, **kw)
            rows.append(dict(scenario=label, estimator=name, snr_db=float(snr), metric="nmse_db",
                             value=nmse_db(Hh, H), n_frames=n_frames))
    return rows


def link_sweep(names: list[str], snrs, link_cfg=None, progress: bool = False,
               denoisers: list[str] | None = None) -> list[dict]:
    """BER, PER, NMSE per receiver and SNR on the numpy link (same cores as the blocks). One
    receiver per estimator x denoiser (default: the config's denoiser), all on the same samples;
    a receiver with a denoiser is labelled 'estimator+denoiser' (and '+iq' with IQ compensation)."""
    from ..link import LinkConfig, Receiver, make_estimator, simulate

    base = link_cfg or LinkConfig()
    spec = base.spec()
    ests = {n: make_estimator(n, spec, base) for n in names}
    receivers = {}
    for n in names:
        for dn in denoisers or [base.denoiser]:
            r = Receiver(n, dn, base.iq_compensation)
            receivers[r.label] = r
    imp = "".join(f" {k}={v}" for k, v in (base.impairments or {}).items())
    label = (f"link {base.n_tx}x{base.n_rx} {base.modulation} {base.profile} {base.delay_spread * 1e9:g}ns "
             f"{base.doppler:g}Hz{imp}")
    rows = []
    it = list(snrs)
    if progress:
        from tqdm import tqdm
        it = tqdm(it, desc=label, unit="snr")
    for snr in it:
        res = simulate(dataclasses.replace(base, snr_db=float(snr)), ests, receivers=receivers)
        for name, r in res.items():
            for metric in ("ber", "per", "nmse_db", "raw_ber"):
                if r.get(metric) is not None:
                    rows.append(dict(scenario=label, estimator=name, snr_db=float(snr), metric=metric,
                                     value=float(r[metric]), n_frames=r["frames_sent"]))
    return rows


def write_csv(rows: list[dict], path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=FIELDS)
        w.writeheader()
        for r in rows:
            w.writerow({k: r[k] for k in FIELDS})
    return path


def plot(rows: list[dict], png) -> Path:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    metrics = [m for m in ("nmse_db", "ber", "per") if any(r["metric"] == m for r in rows)]
    scen = sorted({r["scenario"] for r in rows})
    fig, axes = plt.subplots(len(scen), len(metrics), figsize=(5 * len(metrics), 3.6 * len(scen)), squeeze=False)
    for i, sc in enumerate(scen):
        for j, m in enumerate(metrics):
            ax = axes[i, j]
            drawn = False
            for est in dict.fromkeys(r["estimator"] for r in rows if r["scenario"] == sc):
                pts = sorted((r["snr_db"], r["value"]) for r in rows
                             if r["scenario"] == sc and r["estimator"] == est and r["metric"] == m)
                if pts:
                    x, y = zip(*pts)
                    if m != "nmse_db":
                        y = np.maximum(y, 1e-6)
                    ax.plot(x, y, marker="o", label=est)
                    drawn = True
            if not drawn:
                ax.set_axis_off()
                continue
            if m != "nmse_db":
                ax.set_yscale("log")
            ax.set(xlabel="SNR [dB]", ylabel=m, title=f"{sc}: {m}")
            ax.grid(True, which="both", alpha=0.3)
            ax.legend(fontsize=8)
    fig.tight_layout()
    png = Path(png)
    fig.savefig(png, dpi=110)
    plt.close(fig)
    return png


def snr_at(rows: list[dict], metric: str = "per", target: float = 0.1) -> dict[tuple[str, str], float | None]:
    """{(scenario, estimator): SNR where ``metric`` first falls to ``target``}, interpolated
    linearly in log(metric) between the two SNR points around it; None if never reached."""
    out = {}
    for sc, est in dict.fromkeys((r["scenario"], r["estimator"]) for r in rows if r["metric"] == metric):
        pts = sorted((r["snr_db"], r["value"]) for r in rows
                     if r["metric"] == metric and r["scenario"] == sc and r["estimator"] == est)
        out[sc, est] = None
        for (s0, v0), (s1, v1) in zip(pts, pts[1:]):
            if v0 > target >= v1:
                l0, l1 = np.log(max(v0, 1e-12)), np.log(max(v1, 1e-12))
                out[sc, est] = float(s0 + (s1 - s0) * (l0 - np.log(target)) / (l0 - l1))
                break
        if pts and pts[0][1] <= target:
            out[sc, est] = float(pts[0][0])  # already below at the lowest SNR tried (an upper bound)
    return out


def table(rows: list[dict], metric: str) -> str:
    """Plain-text table: one line per (scenario, estimator), one column per SNR."""
    sel = [r for r in rows if r["metric"] == metric]
    snrs = sorted({r["snr_db"] for r in sel})
    keys = list(dict.fromkeys((r["scenario"], r["estimator"]) for r in sel))
    fmt = (lambda v: f"{v:8.2f}") if metric == "nmse_db" else (lambda v: f"{v:8.1e}")
    lines = [f"{metric:<44}" + "".join(f"{s:>8g}" for s in snrs)]
    for sc, est in keys:
        vals = {r["snr_db"]: r["value"] for r in sel if r["scenario"] == sc and r["estimator"] == est}
        lines.append(f"{(est + ' | ' + sc)[:43]:<44}" + "".join(fmt(vals[s]) if s in vals else f"{'-':>8}" for s in snrs))
    return "\n".join(lines)
