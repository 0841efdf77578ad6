"""NMSE vs pilot overhead for the XL-MIMO case study, and run time per estimate.

Rows follow the project's long CSV format ``scenario,estimator,snr_db,metric,value,n_frames`` plus
``n_pilots`` (pilot symbols P per user) and ``pilot_overhead`` (P * N_RF, the number of combined
observations per subcarrier; compare with N). ``n_frames`` counts frames of M users each; the NMSE
is the mean over all user channels of |H_hat - H|_F^2 / |H|_F^2 (antennas x subcarriers), in dB.
Every estimator sees the same channels, combiners and noise (paired comparison).

    python -m gnuradio.gdm.xlmimo.evaluate --prior onnx_models/gdm_xlmimo_prior.onnx \
        --scenario xlmimo --csv out/xlmimo.csv          # PNG beside the CSV
"""
from __future__ import annotations

import argparse
import csv
import json
import time
from pathlib import Path

import numpy as np

from ..sim.nearfield import NearFieldConfig, uplink_pilots
from . import baselines

ESTIMATORS = ("diffusion", "sigw", "somp", "swomp", "ls")
REFERENCES = ("genie",)     # LS on the true path parameters: a bound, not an estimator
PILOTS = (4, 8, 12, 16, 24, 32)          # P * N_RF = 64 .. 512 = 0.25 N .. 2 N
SNRS = (0.0, 10.0, 20.0)
TRAIN_R_RANGE = (5.0, 40.0)
SCENARIOS = {
    "xlmimo": {"r_range_m": TRAIN_R_RANGE},            # training distribution, held-out seeds
    "xlmimo-far": {"r_range_m": (40.0, 150.0)},         # beyond the training range, to the far field
    "xlmimo-near": {"r_range_m": (3.0, 5.0)},           # closer than the training range
}
CSV_COLUMNS = ("scenario", "estimator", "snr_db", "metric", "value", "n_frames", "n_pilots",
               "pilot_overhead")


def scenario_config(name: str, base: NearFieldConfig | None = None) -> NearFieldConfig:
    if name not in SCENARIOS:
        raise ValueError(f"unknown scenario {name!r}; valid: {', '.join(SCENARIOS)}")
    return (base or NearFieldConfig()).replace(**SCENARIOS[name])


def make_estimator(name: str, cfg: NearFieldConfig, prior=None, **options):
    """Callable (Y, W, noise_var) -> H_hat [B, N, K] for every estimator name. ``prior``: path of
    the ONNX prior or a denoiser callable (needed for 'diffusion')."""
    if name == "diffusion":
        from .sampling import DiffusionEstimator
        if prior is None:
            raise ValueError("the diffusion estimator needs a prior (ONNX path or denoiser)")
        est = DiffusionEstimator(prior, **options)
        return est.estimate
    if name == "ls":
        return lambda Y, W, nv: baselines.ls(Y, W, nv)
    if name == "genie":
        return lambda Y, W, nv, paths: baselines.genie_ls(Y, W, nv, cfg, paths["theta"], paths["r"])
    if name in ("swomp", "somp", "sigw"):
        f = getattr(baselines, name)
        return lambda Y, W, nv: f(Y, W, nv, cfg, **options)
    raise ValueError(f"unknown estimator {name!r}; valid: {', '.join(ESTIMATORS + REFERENCES)}")


def nmse_per_channel(H_hat, H) -> np.ndarray:
    ax = tuple(range(1, H.ndim))
    return np.sum(np.abs(H_hat - H) ** 2, axis=ax) / np.sum(np.abs(H) ** 2, axis=ax)


def run_point(cfg: NearFieldConfig, n_pilots: int, snr_db: float, n_frames: int, seed: int,
              estimators: dict) -> dict:
    """One (P, SNR) point: {name: {"nmse": per-channel [F*M], "seconds": total}}."""
    rng = np.random.default_rng(seed)
    up = uplink_pilots(rng, cfg, n_pilots, snr_db, n_frames)
    H, W, Y = up.per_user()
    paths = {k: v.reshape(H.shape[0], -1) for k, v in up.paths.items()}
    out = {}
    for name, f in estimators.items():
        if name == "ls" and n_pilots * cfg.n_rf < cfg.n_ant:
            continue
        t = time.perf_counter()
        Hh = f(Y, W, up.noise_var, paths) if name == "genie" else f(Y, W, up.noise_var)
        out[name] = {"nmse": nmse_per_channel(Hh, H), "seconds": time.perf_counter() - t}
    return out


def evaluate(cfg: NearFieldConfig | None = None, scenario: str = "xlmimo", prior=None,
             estimators=ESTIMATORS + REFERENCES, pilots=PILOTS, snrs=SNRS, n_frames: int = 3, seed: int = 20240,
             diffusion_options: dict | None = None, progress: bool = True) -> list[dict]:
    """NMSE vs pilot overhead rows (see module docstring). ``cfg`` defaults to the scenario's
    configuration; seeds are offset per point and never overlap the training seeds (< 10^4)."""
    cfg = cfg or scenario_config(scenario)
    ests = {n: make_estimator(n, cfg, prior, **(diffusion_options or {}) if n == "diffusion" else {})
            for n in estimators if n != "diffusion" or prior is not None}
    rows = []
    for i, snr in enumerate(snrs):
        for j, P in enumerate(pilots):
            res = run_point(cfg, P, snr, n_frames, seed + 1000 * i + j, ests)
            for name, r in res.items():
                rows.append({"scenario": scenario, "estimator": name, "snr_db": float(snr),
                             "metric": "nmse_db", "value": round(float(10 * np.log10(np.mean(r["nmse"]))), 3),
                             "n_frames": n_frames, "n_pilots": P, "pilot_overhead": P * cfg.n_rf})
            if progress:
                print(f"{scenario} snr={snr:g} P={P}: " + ", ".join(
                    f"{n}={10 * np.log10(np.mean(r['nmse'])):.2f}" for n, r in res.items()), flush=True)
    return rows


def evaluate_scenarios(scenarios=tuple(SCENARIOS), **kw) -> list[dict]:
    """``evaluate`` for several scenarios (default: in-range and both out-of-range distance
    sets); keyword arguments as for ``evaluate``. Rows of all scenarios, one list."""
    rows = []
    for sc in scenarios:
        rows += evaluate(scenario=sc, **kw)
    return rows


def benchmark(cfg: NearFieldConfig | None = None, prior=None, estimators=ESTIMATORS,
              n_pilots: int = 8, snr_db: float = 10.0, n_users: int = 16, seed: int = 777,
              diffusion_options: dict | None = None, repeats: int = 1) -> list[dict]:
    """Wall time per channel estimate (one user, N x K) on this machine, single thread:
    rows {estimator, n_pilots, snr_db, ms_per_estimate, n_estimates}. LS runs at P N_RF >= N."""
    cfg = cfg or NearFieldConfig()
    rows = []
    for name in estimators:
        if name == "diffusion" and prior is None:
            continue
        P = n_pilots
        if name == "ls" and P * cfg.n_rf < cfg.n_ant:
            P = int(np.ceil(cfg.n_ant / cfg.n_rf))
        f = make_estimator(name, cfg, prior, **(diffusion_options or {}) if name == "diffusion" else {})
        up = uplink_pilots(np.random.default_rng(seed), cfg.replace(n_users=n_users), P, snr_db, 1)
        H, W, Y = up.per_user()
        f(Y[:1], W[:1], up.noise_var)                         # warm-up (dictionaries, session)
        best = np.inf
        for _ in range(repeats):
            t = time.perf_counter()
            f(Y, W, up.noise_var)
            best = min(best, time.perf_counter() - t)
        rows.append({"estimator": name, "n_pilots": P, "snr_db": snr_db,
                     "ms_per_estimate": round(1e3 * best / H.shape[0], 2), "n_estimates": H.shape[0]})
    return rows


def write_csv(rows: list[dict], path) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=CSV_COLUMNS, extrasaction="ignore")
        w.writeheader()
        w.writerows(rows)


def plot(rows: list[dict], path, n_ant: int = 256) -> None:
    """One panel per (scenario, SNR): NMSE (dB) vs pilot overhead P N_RF / N."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    keys = sorted({(r["scenario"], r["snr_db"]) for r in rows}, key=lambda k: (k[0], k[1]))
    fig, axes = plt.subplots(1, len(keys), figsize=(4.2 * len(keys), 3.6), squeeze=False)
    style = {"diffusion": ("C3", "o"), "sigw": ("C0", "s"), "somp": ("C2", "^"),
             "swomp": ("C1", "v"), "ls": ("C7", "x"), "genie": ("k", ":")}
    for ax, (sc, snr) in zip(axes[0], keys):
        for est in ESTIMATORS + REFERENCES:
            pts = sorted((r["pilot_overhead"] / n_ant, r["value"]) for r in rows
                         if r["scenario"] == sc and r["snr_db"] == snr and r["estimator"] == est)
            if pts:
                c, m = style.get(est, ("k", "."))
                if est == "genie":
                    ax.plot(*zip(*pts), ls=":", color=c, label="genie LS (true paths)")
                else:
                    ax.plot(*zip(*pts), marker=m, color=c, label=est)
        ax.set_title(f"{sc}, SNR {snr:g} dB")
        ax.set_xlabel("pilot overhead P N_RF / N")
        ax.set_ylabel("NMSE (dB)")
        ax.grid(True, alpha=0.3)
    axes[0][0].legend()
    fig.tight_layout()
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def table(rows: list[dict], snr_db: float, scenario: str | None = None) -> str:
    """Markdown table: estimators x pilot overhead at one SNR."""
    rs = [r for r in rows if r["snr_db"] == snr_db and (scenario is None or r["scenario"] == scenario)]
    ovs = sorted({r["pilot_overhead"] for r in rs})
    names = [n for n in ESTIMATORS + REFERENCES if any(r["estimator"] == n for r in rs)]
    lines = ["| estimator | " + " | ".join(f"P N_RF={o}" for o in ovs) + " |",
             "|---" * (len(ovs) + 1) + "|"]
    for n in names:
        vals = {r["pilot_overhead"]: r["value"] for r in rs if r["estimator"] == n}
        lines.append(f"| {n} | " + " | ".join(f"{vals[o]:.2f}" if o in vals else "-" for o in ovs) + " |")
    return "\n".join(lines)


def main(argv=None):
    ap = argparse.ArgumentParser(description="XL-MIMO NMSE vs pilot overhead")
    ap.add_argument("--scenario", default="xlmimo", choices=sorted(SCENARIOS))
    ap.add_argument("--prior", default=None, help="ONNX prior (omit to run the baselines only)")
    ap.add_argument("--estimators", default=",".join(ESTIMATORS + REFERENCES))
    ap.add_argument("--pilots", default=",".join(map(str, PILOTS)))
    ap.add_argument("--snrs", default=",".join(f"{s:g}" for s in SNRS))
    ap.add_argument("--frames", type=int, default=3)
    ap.add_argument("--seed", type=int, default=20240)
    ap.add_argument("--csv", required=True)
    ap.add_argument("--bench", action="store_true", help="also print run time per estimate (JSON)")
    a = ap.parse_args(argv)
    try:
        import torch
        torch.set_num_threads(1)
    except ImportError:
        pass
    rows = evaluate(scenario=a.scenario, prior=a.prior, estimators=a.estimators.split(","),
                    pilots=[int(p) for p in a.pilots.split(",")],
                    snrs=[float(s) for s in a.snrs.split(",")], n_frames=a.frames, seed=a.seed)
    write_csv(rows, a.csv)
    plot(rows, Path(a.csv).with_suffix(".png"))
    for snr in sorted({r["snr_db"] for r in rows}):
        print(f"\n{a.scenario}, SNR {snr:g} dB, NMSE (dB)\n" + table(rows, snr))
    if a.bench:
        ests = [e for e in a.estimators.split(",") if e not in REFERENCES]
        for r in benchmark(scenario_config(a.scenario), a.prior, ests):
            print(json.dumps(r))


if __name__ == "__main__":
    main()
