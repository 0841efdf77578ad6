"""NMSE of the shipped, the adapted, the LMMSE and the genie estimator vs the number of
adaptation frames, per scenario and SNR (the site-adaptation figures).

    python -m gnuradio.gdm.adaptation.evaluate --scenario TDL-C:2000:0 --snrs 0,10,20 \\
        --adapt-frames 10,50,200,1000 --eval-frames 300 --out out/adapt_eval

For every scenario and SNR: ``N`` adaptation frames are simulated from a random stream of their
own (``observations.ADAPT_PURPOSE``, seed ``--adapt-seed``), the model is adapted on them (the
last quarter held out for the guard; a rejected adaptation keeps the shipped model, and the row
says so) and evaluated on ``--eval-frames`` frames from the evaluation stream
(``models.data.EVAL_PURPOSE``), the same frames for every estimator and N (a rejected model is
also evaluated, as ``nmse_if_forced_db``, to check the guard's call). LMMSE uses the
covariance of the training mix (what a receiver knows without the site's channels); genie is
each frame's LMMSE with its exact covariance. Writes ``<out>.csv``, ``<out>.png`` and prints
markdown tables.
"""
from __future__ import annotations

import argparse
import csv
import time
from pathlib import Path

import numpy as np

from .. import estimation
from ..frame import FrameSpec
from ..metrics.evaluate import parse_scenario
from ..models.data import EVAL_PURPOSE, purpose_rng
from ..models.evaluate import PerFrameGenie, draw_scenario, received
from ..sim.awgn import noise_var_for_snr
from ..sim.grid import ChannelMix
from . import adapt as ad
from .observations import from_profile

FIELDS = ("scenario", "estimator", "snr_db", "adapt_frames", "nmse_db", "nmse_if_forced_db", "n_frames", "accepted",
          "guard_gain_db", "adapt_s", "site_rms_ns", "site_doppler_hz", "site_shift_hz")


def _nmse(H_hat, H) -> float:
    return float(10 * np.log10(np.sum(np.abs(H_hat.astype(np.complex128) - H) ** 2) / np.sum(np.abs(H) ** 2)))


def evaluate(scenario: str, snrs, adapt_frames, eval_frames: int = 300, seed: int = 2024, adapt_seed: int = 1,
             model_dir: Path | None = None, log=print) -> list[dict]:
    label, cfg = parse_scenario(scenario)
    spec = FrameSpec.preset("nr72")
    rng = purpose_rng(seed, EVAL_PURPOSE)
    H, configs = draw_scenario(spec, cfg, eval_frames, 1, rng)
    rows = []
    base = {"scenario": label, "n_frames": eval_frames}
    shipped = estimation.make("diffusion", spec, 1, device="cpu")
    lmmse = estimation.make("lmmse", spec, 1, source=ChannelMix())
    interp = estimation.make("ls_interp", spec, 1)
    genie = PerFrameGenie(spec, 1)
    for snr in snrs:
        nv = float(noise_var_for_snr(snr))
        Y = received(spec, H, nv, rng)
        nvs = np.full(eval_frames, nv)
        for name, est in (("ls_interp", interp), ("lmmse", lmmse), ("shipped", shipped)):
            rows.append({**base, "estimator": name, "snr_db": snr, "nmse_db": round(_nmse(est.estimate(Y, nvs), H), 3)})
        rows.append({**base, "estimator": "genie", "snr_db": snr,
                     "nmse_db": round(_nmse(genie.estimate(Y, nvs, configs), H), 3)})
        log(f"{label} {snr:g} dB: " + ", ".join(f"{r['estimator']} {r['nmse_db']:.2f}" for r in rows[-4:]))
        for n in adapt_frames:
            obs = from_profile(cfg, snr, n, spec, 1, adapt_seed)
            t0 = time.perf_counter()
            res = ad.adapt(obs)
            secs = time.perf_counter() - t0
            site = res.site.summary()
            row = {**base, "estimator": "adapted", "snr_db": snr, "adapt_frames": n, "accepted": res.accepted,
                   "guard_gain_db": round(res.guard.gain_db, 3), "adapt_s": round(secs, 2),
                   "site_rms_ns": site["rms_delay_spread_ns"], "site_doppler_hz": site["doppler_hz"],
                   "site_shift_hz": site["doppler_shift_hz"]}
            path = Path(model_dir or "out/adapt_models") / \
                f"{label.replace(' ', '_')}_{snr:g}dB_{n}{'' if res.accepted else '_rejected'}.onnx"
            est = estimation.make("diffusion", spec, 1, device="cpu", model=ad.export(res, path, force=True))
            forced = round(_nmse(est.estimate(Y, nvs), H), 3)
            if res.accepted:
                row["nmse_db"] = forced
            else:  # the guard keeps the shipped model; what the rejected one would have done is kept too
                row["nmse_db"] = next(r["nmse_db"] for r in rows if r["estimator"] == "shipped" and r["snr_db"] == snr)
                row["nmse_if_forced_db"] = forced
            rows.append(row)
            log(f"  N={n:5d}: adapted {row['nmse_db']:.2f} dB ({'accepted' if res.accepted else 'REJECTED'}"
                f"{'' if res.accepted else f', would have given {forced:.2f} dB'}, guard "
                f"{row['guard_gain_db']:+.2f} dB, {secs:.1f} s; site {site['rms_delay_spread_ns']:g} ns, "
                f"{site['doppler_hz']:g} Hz, shift {site['doppler_shift_hz']:g} Hz)")
    return rows


def table(rows: list[dict], scenario: str) -> str:
    rs = [r for r in rows if r["scenario"] == scenario]
    ns = sorted({r["adapt_frames"] for r in rs if r["estimator"] == "adapted"})
    cols = ["shipped", *[f"adapted N={n}" for n in ns], "LMMSE (mix)", "genie", "LS+interp"]
    out = [f"**{scenario}** (NMSE dB, {rs[0]['n_frames']} held-out frames)", "",
           "| SNR dB | " + " | ".join(cols) + " |", "|---" * (len(cols) + 1) + "|"]
    for snr in sorted({r["snr_db"] for r in rs}):
        get = (lambda est, n=None: next(r for r in rs if r["estimator"] == est and r["snr_db"] == snr
                                        and (n is None or r.get("adapt_frames") == n)))
        cells = [f"{get('shipped')['nmse_db']:.2f}"]
        for n in ns:
            r = get("adapted", n)
            cells.append(f"{r['nmse_db']:.2f}" + ("" if r["accepted"] else f" (rejected; forced {r['nmse_if_forced_db']:.2f})"))
        cells += [f"{get(e)['nmse_db']:.2f}" for e in ("lmmse", "genie", "ls_interp")]
        out.append(f"| {snr:g} | " + " | ".join(cells) + " |")
    return "\n".join(out)


def plot(rows: list[dict], png) -> Path:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    scen = list(dict.fromkeys(r["scenario"] for r in rows))
    ncol = min(2, len(scen))
    nrow = int(np.ceil(len(scen) / ncol))
    fig, axes = plt.subplots(nrow, ncol, figsize=(6.2 * ncol, 4.4 * nrow), squeeze=False)
    for ax, sc in zip(axes.ravel(), scen):
        rs = [r for r in rows if r["scenario"] == sc]
        for i, snr in enumerate(sorted({r["snr_db"] for r in rs})):
            c = f"C{i}"
            ad_rows = sorted((r for r in rs if r["estimator"] == "adapted" and r["snr_db"] == snr),
                             key=lambda r: r["adapt_frames"])
            x = [r["adapt_frames"] for r in ad_rows]
            ax.plot(x, [r["nmse_db"] for r in ad_rows], "o-", color=c, label=f"adapted, {snr:g} dB")
            for r in ad_rows:
                if not r["accepted"]:
                    ax.plot(r["adapt_frames"], r["nmse_db"], "x", color="k", ms=9)
            for est, ls in (("shipped", "--"), ("genie", ":"), ("lmmse", "-.")):
                v = next(r["nmse_db"] for r in rs if r["estimator"] == est and r["snr_db"] == snr)
                ax.axhline(v, color=c, ls=ls, lw=1.2, label=f"{est}, {snr:g} dB" if i == 0 else None)
        ax.set_xscale("log")
        ns = sorted({r["adapt_frames"] for r in rs if r["estimator"] == "adapted"})
        ax.set_xticks(ns, [str(n) for n in ns])
        ax.minorticks_off()
        ax.set_xlabel("adaptation frames (3/4 fit, 1/4 held out for the guard)")
        ax.set_ylabel("NMSE (dB)")
        ax.set_title(sc)
        ax.grid(True, which="both", alpha=0.3)
    axes.ravel()[0].legend(fontsize=7, ncol=2)
    for ax in axes.ravel()[len(scen):]:
        ax.axis("off")
    fig.suptitle("site adaptation from received pilots: shipped (--), adapted (o-), LMMSE of the training mix (-.), "
                 "genie (:)   x = rejected by the guard", fontsize=9)
    fig.tight_layout()
    fig.savefig(png, dpi=110)
    plt.close(fig)
    return Path(png)


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--scenario", action="append", required=True, help="PROFILE:DS_NS:DOPPLER_HZ (repeatable)")
    p.add_argument("--snrs", default="0,10,20")
    p.add_argument("--adapt-frames", default="10,50,200,1000")
    p.add_argument("--eval-frames", type=int, default=300)
    p.add_argument("--seed", type=int, default=2024, help="evaluation frames")
    p.add_argument("--adapt-seed", type=int, default=1, help="adaptation frames")
    p.add_argument("--out", default="out/adapt_eval", help="writes OUT.csv and OUT.png")
    a = p.parse_args(argv)
    out = Path(a.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    rows = []
    for sc in a.scenario:
        rows += evaluate(sc, [float(s) for s in a.snrs.split(",")], [int(n) for n in a.adapt_frames.split(",")],
                         a.eval_frames, a.seed, a.adapt_seed, out.parent / (out.name + "_models"))
        with open(out.with_suffix(".csv"), "w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=FIELDS)
            w.writeheader()
            w.writerows(rows)
        print(table(rows, rows[-1]["scenario"]), flush=True)
    plot(rows, out.with_suffix(".png"))
    print(f"wrote {out.with_suffix('.csv')} and {out.with_suffix('.png')}")


if __name__ == "__main__":
    main()
