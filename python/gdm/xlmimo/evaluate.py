"""NMSE vs pilot overhead for the XL-MIMO case study, and run time per estimate.

Rows follow the project's long CSV format ``scenario,estimator,snr_db,metric,value,n_frames`` plus
``n_pilots`` (pilot symbols P per user) and ``pilot_overhead`` (P * N_RF, the number of combined
observations per subcarrier; compare with N). ``n_frames`` counts frames of M users each; the NMSE
is the mean over all user channels of |H_hat - H|_F^2 / |H|_F^2 (antennas x subcarriers), in dB.
Every estimator sees the same channels, combiners and noise (paired comparison).

    gr-gdm eval --scenario xlmimo --scenario xlmimo-far --csv out/xlmimo.csv   # PNG beside it
    gr-gdm bench --xlmimo                                                     # time per estimate
"""
from __future__ import annotations

import csv
import time
from pathlib import Path

import numpy as np

from ..sim.nearfield import NearFieldConfig, uplink_pilots
from . import baselines

ESTIMATORS = ("diffusion", "sigw", "somp", "swomp", "ls")
PRIOR_NAME = "gdm_xlmimo_prior.onnx"
REFERENCES = ("genie",)     # LS on the true path parameters: a bound, not an estimator
PILOTS = (4, 8, 12, 16, 24, 32)          # P * N_RF = 64 .. 512 = 0.25 N .. 2 N
SNRS = (0.0, 10.0, 20.0)
EVAL_SEED = 20240   # evaluation seeds: EVAL_SEED + 1000 i + j; training uses seeds < 10^4 (+ 10^4 held out)
TRAIN_R_RANGE = (5.0, 40.0)
SCENARIOS = {
    "xlmimo": {"r_range_m": TRAIN_R_RANGE},            # training distribution, held-out seeds
    "xlmimo-far": {"r_range_m": (40.0, 150.0)},         # beyond the training range, to the far field
    "xlmimo-near": {"r_range_m": (3.0, 5.0)},           # closer than the training range
}
CSV_COLUMNS = ("scenario", "estimator", "snr_db", "metric", "value", "n_frames", "n_pilots",
               "pilot_overhead")


def scenario_config(name: str, base: NearFieldConfig | None = None) -> NearFieldConfig:
    """'xlmimo' (the training distances), 'xlmimo-far', 'xlmimo-near', or 'xlmimo:R_MIN:R_MAX'
    (user and scatterer distances uniform in [R_MIN, R_MAX] metres)."""
    base = base or NearFieldConfig()
    if name in SCENARIOS:
        return base.replace(**SCENARIOS[name])
    parts = name.split(":")
    if parts[0] == "xlmimo" and len(parts) == 3:
        try:
            lo, hi = float(parts[1]), float(parts[2])
        except ValueError:
            lo = hi = -1.0
        if 0 < lo < hi:
            return base.replace(r_range_m=(lo, hi))
    raise ValueError(f"unknown XL-MIMO scenario {name!r}; valid: {', '.join(SCENARIOS)} or "
                     "xlmimo:R_MIN:R_MAX (metres, 0 < R_MIN < R_MAX)")


def is_scenario(name: str) -> bool:
    return name.split(":")[0] in SCENARIOS


def make_estimator(name: str, cfg: NearFieldConfig, prior=None, **options):
    """Callable (Y, W, noise_var) -> H_hat [B, N, K] for every estimator name. ``prior``: path of
    the ONNX prior or a denoiser callable (needed for 'diffusion')."""
    if name == "diffusion":
        from .sampling import DiffusionEstimator
        if prior is None:
            raise ValueError("the diffusion estimator needs a prior: pass an ONNX file (e.g. "
                             "onnx_models/gdm_xlmimo_prior.onnx) or a denoiser callable")
        est = DiffusionEstimator(prior, cfg=cfg, **options)
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
    out, sigw_init = {}, None
    # SIGW first: the refine sampler starts from the SIGW estimate, and recomputing it on the same
    # observations would give the same numbers; its time is added to diffusion's below.
    refine = "diffusion" in estimators and getattr(estimators["diffusion"], "__self__", None) is not None \
        and estimators["diffusion"].__self__.method == "refine"
    order = sorted(estimators, key=lambda n: (n != "sigw", n))
    for name in order:
        f = estimators[name]
        if name == "ls" and n_pilots * cfg.n_rf < cfg.n_ant:
            continue
        t = time.perf_counter()
        if name == "genie":
            Hh = f(Y, W, up.noise_var, paths)
        elif name == "sigw" and refine:
            Hh, var = baselines.sigw(Y, W, up.noise_var, cfg, return_var=True)
            sigw_init = (Hh, var)
        elif name == "diffusion" and sigw_init is not None:
            Hh = f(Y, W, up.noise_var, init=sigw_init)
        else:
            Hh = f(Y, W, up.noise_var)
        out[name] = {"nmse": nmse_per_channel(Hh, H), "seconds": time.perf_counter() - t}
    if "diffusion" in out and sigw_init is not None:
        out["diffusion"]["seconds"] += out["sigw"]["seconds"]
    return {n: out[n] for n in estimators if n in out}


def evaluate(cfg: NearFieldConfig | None = None, scenario: str = "xlmimo", prior=None,
             estimators=ESTIMATORS + REFERENCES, pilots=PILOTS, snrs=SNRS, n_frames: int = 4, seed: int = None,
             diffusion_options: dict | None = None, progress: bool = True) -> list[dict]:
    """NMSE vs pilot overhead rows (see module docstring). ``cfg`` defaults to the scenario's
    configuration; seeds are offset per point and never overlap the training seeds (< 10^4)."""
    cfg = cfg or scenario_config(scenario)
    seed = EVAL_SEED if seed is None else seed
    prior = default_prior() if prior is None and "diffusion" in estimators else prior
    ests = {n: make_estimator(n, cfg, prior, **(diffusion_options or {}) if n == "diffusion" else {})
            for n in estimators if n != "diffusion" or prior is not None}
    rows = []
    for i, snr in enumerate(snrs):
        for j, P in enumerate(pilots):
            res = run_point(cfg, P, snr, n_frames, seed + 1000 * i + j, ests)
            for name, r in res.items():
                base = {"scenario": scenario, "estimator": name, "snr_db": float(snr), "n_frames": n_frames,
                        "n_pilots": P, "pilot_overhead": P * cfg.n_rf}
                rows.append({**base, "metric": "nmse_db",
                             "value": round(float(10 * np.log10(np.mean(r["nmse"]))), 3)})
                rows.append({**base, "metric": "ms_per_estimate",
                             "value": round(1e3 * r["seconds"] / r["nmse"].size, 2)})
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


def default_prior():
    """The shipped prior (onnx_models/gdm_xlmimo_prior.onnx) or None when it is not there."""
    from ..paths import model_dir
    d = model_dir()
    p = d / PRIOR_NAME if d else None
    return str(p) if p is not None and p.is_file() else None


def benchmark(cfg: NearFieldConfig | None = None, prior=None, estimators=ESTIMATORS,
              n_pilots: int = 8, snr_db: float = 10.0, n_users: int = 16, seed: int = 777,
              diffusion_options: dict | None = None, n_single: int = 5) -> list[dict]:
    """Run time per channel estimate (one user, N x K) on this machine: one frame of
    ``n_users`` users estimated as a batch (ms_per_estimate, estimates_per_s), and ``n_single``
    users one at a time (latency_ms_p50 / p99). LS runs at the smallest P with P N_RF >= N."""
    cfg = cfg or NearFieldConfig()
    prior = default_prior() if prior is None else prior
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
        t = time.perf_counter()
        f(Y, W, up.noise_var)
        batch_s = time.perf_counter() - t
        lat = []
        for b in range(min(n_single, H.shape[0])):
            t = time.perf_counter()
            f(Y[b:b + 1], W[b:b + 1], up.noise_var)
            lat.append(1e3 * (time.perf_counter() - t))
        rows.append({"estimator": name, "n_pilots": P, "pilot_overhead": P * cfg.n_rf, "snr_db": snr_db,
                     "ms_per_estimate": round(1e3 * batch_s / H.shape[0], 2),
                     "estimates_per_s": round(H.shape[0] / batch_s, 2),
                     "latency_ms_p50": round(float(np.median(lat)), 2),
                     "latency_ms_p99": round(float(np.percentile(lat, 99)), 2),
                     "n_estimates": H.shape[0] + len(lat)})
    return rows


def write_csv(rows: list[dict], path) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=CSV_COLUMNS, extrasaction="ignore")
        w.writeheader()
        w.writerows(rows)


def read_csv(path) -> list[dict]:
    """Rows written by ``write_csv`` (numbers back as numbers)."""
    with open(path, newline="") as fh:
        rows = list(csv.DictReader(fh))
    for r in rows:
        r["snr_db"], r["value"] = float(r["snr_db"]), float(r["value"])
        for k in ("n_frames", "n_pilots", "pilot_overhead"):
            r[k] = int(r[k])
    return rows


def merge(old: list[dict], new: list[dict]) -> list[dict]:
    """``old`` rows whose (scenario, estimator, SNR) ``new`` does not recompute, then ``new`` (so an
    SNR can be rerun with more frames without touching the others)."""
    redo = {(r["scenario"], r["estimator"], float(r["snr_db"])) for r in new}
    return [r for r in old if (r["scenario"], r["estimator"], float(r["snr_db"])) not in redo] + new


def plot(rows: list[dict], path, n_ant: int = 256) -> None:
    """One panel per (scenario, SNR): NMSE (dB) vs pilot overhead P N_RF / N."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    rows = [r for r in rows if r["metric"] == "nmse_db"]
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


def table(rows: list[dict], snr_db: float, scenario: str | None = None, metric: str = "nmse_db") -> str:
    """Markdown table: estimators x pilot overhead at one SNR (one scenario)."""
    rs = [r for r in rows if r["snr_db"] == snr_db and r["metric"] == metric
          and (scenario is None or r["scenario"] == scenario)]
    ovs = sorted({r["pilot_overhead"] for r in rs})
    names = [n for n in ESTIMATORS + REFERENCES if any(r["estimator"] == n for r in rs)]
    lines = ["| estimator | " + " | ".join(f"P N_RF={o}" for o in ovs) + " |",
             "|---" * (len(ovs) + 1) + "|"]
    for n in names:
        vals = {r["pilot_overhead"]: r["value"] for r in rs if r["estimator"] == n}
        lines.append(f"| {n} | " + " | ".join(f"{vals[o]:.2f}" if o in vals else "-" for o in ovs) + " |")
    return "\n".join(lines)
