"""BER / PER vs SNR of the symbol denoiser against the classical compensations, on the numpy
link (the blocks' cores), for the clean channel and each impairment alone and combined.
Classical receivers include the PA-distortion canceller (pa_cancel, cpe+pa_cancel); the
learned denoiser also runs on the canceller's output (pa_cancel+denoiser), and its gain is
reported against the canceller, never the canceller's own gain as the model's.

    python -m gnuradio.gdm.denoising.evaluate --out out/denoiser_eval [--runs 16 --frames 32]
        [--scenarios clean,pa,pn,...] [--model path.onnx]

Every receiver of a scenario sees the same received samples (paired comparison); each SNR
point pools independent links (fresh fading, noise and payloads). Seeds are held out:
(EVAL_SEED + scenario index) * 1000 + run, never a training draw (training scenarios come from
np.random.default_rng([seed, TRAIN_PURPOSE])). Writes <out>.csv (long format, as `gr-gdm
eval`), <out>.png, and <out>.json with the SNR at BER 1e-2 of every receiver and the gains.
"""
from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np

from ..link import LinkConfig, Receiver, simulate

EVAL_SEED = 9_100_001
TARGET = 1e-2

# The impairments, one at a time and combined (sim.impairments.Impairments fields).
PA = {"pa": "saleh", "pa_backoff_db": 6.0}
PN = {"phase_noise": "wiener", "pn_linewidth_hz": 100.0}
IQ = {"iq_gain_db": 1.5, "iq_phase_deg": 10.0}
ADC = {"adc_bits": 3}
SCENARIOS: dict[str, dict] = {
    "clean": {},
    "pa": PA,
    "rapp": {"pa": "rapp", "pa_backoff_db": 3.0},
    "pn": PN,
    "iq": IQ,
    "adc": ADC,
    "pa+pn": {**PA, **PN},
    "all": {**PA, **PN, **IQ, **ADC},
}
# Receivers: lmmse estimator + lmmse equalizer, then plain demapping, main's per-symbol DD CPE
# (cpe_dd), the tracking CPE (cpe), [blind IQ compensation before sync], or the denoiser.
SNR_START = {"clean": 3.0, "pa": 8.0, "rapp": 4.0, "pn": 4.0, "iq": 3.0, "adc": 3.0, "pa+pn": 9.0, "all": 9.0}
# pa_cancel: decision-aided PA-distortion cancellation (blind PA fit), alone or after the
# tracking CPE; pa_cancel+denoiser: the learned denoiser on the canceller's output.
CLASSICAL = ("plain", "cpe_dd", "cpe", "iq", "cpe+iq", "pa_cancel", "cpe+pa_cancel")
RECEIVERS: dict[str, Receiver] = {
    "plain": Receiver("lmmse"),
    "cpe_dd": Receiver("lmmse", "cpe_dd"),
    "cpe": Receiver("lmmse", "cpe"),
    "iq": Receiver("lmmse", "none", True),
    "cpe+iq": Receiver("lmmse", "cpe", True),
    "pa_cancel": Receiver("lmmse", "pa_cancel"),
    "cpe+pa_cancel": Receiver("lmmse", "cpe+pa_cancel"),
    "denoiser": Receiver("lmmse", "diffusion"),
    "denoiser+iq": Receiver("lmmse", "diffusion", True),
    "pa_cancel+denoiser": Receiver("lmmse", "cpe+pa_cancel+diffusion"),
}
IQ_RECEIVERS = ("iq", "cpe+iq", "denoiser+iq")  # only where the scenario has IQ imbalance


HELDOUT_SEED = 5151  # frame-level held-out set (denoising.data EVAL_PURPOSE stream)


def exact_llrs(z: np.ndarray, w: np.ndarray, x: np.ndarray, modulation: str) -> tuple[np.ndarray, np.ndarray]:
    """Exact bit LLRs of observations z with complex noise variance w (square QAM, per axis)
    and the signs (+1: bit 0) of the bits of the points x; both [..., bits]."""
    from scipy.special import logsumexp

    from ..ofdm import qam

    pam, table = qam._axis(modulation)
    ww = np.maximum(np.asarray(w, np.float64), 1e-12)[..., None]
    llrs, signs = [], []
    for u, xa in ((z.real, x.real), (z.imag, x.imag)):
        lg = -(u[..., None].astype(np.float64) - pam) ** 2 / ww
        bits = table[np.argmin(np.abs(xa[..., None] - pam), -1)]
        for j in range(table.shape[1]):
            llrs.append(logsumexp(lg[..., ~table[:, j]], -1) - logsumexp(lg[..., table[:, j]], -1))
            signs.append(1.0 - 2.0 * bits[..., j])
    return np.stack(llrs, -1), np.stack(signs, -1)


def frame_metrics(z, w, x, spec) -> dict:
    """Raw (hard-decision) bit error rate and the bit cross-entropy at each frame's best LLR scale
    (nats/bit; the LDPC decoder ignores a frame's LLR scale) of frames z, w, x [N, S, K], data
    REs only."""
    d = spec.data_mask
    llr, sign = exact_llrs(z[:, d], w[:, d], x[:, d], spec.modulation)
    a = (sign * llr).reshape(len(z), -1)
    scales = np.exp(np.linspace(-4, 3, 36))
    bce = np.min([np.mean(np.logaddexp(0, -t * a), 1) for t in scales], 0)
    return {"raw_ber": float(np.mean(a < 0)), "bce": float(np.mean(bce))}


def heldout_metrics(denoisers: dict, n_frames: int = 64, seed: int = HELDOUT_SEED, modulation: str = "16qam") -> dict:
    """frame_metrics of every denoiser on held-out frames of the training link mix (random
    channels, SNRs, impairments; drawn from a purpose key training never uses)."""
    from ..frame import FrameSpec
    from .data import EVAL_PURPOSE, LinkMix, mixed_frames, purpose_rng

    spec = FrameSpec.preset("nr72", modulation=modulation)
    f = mixed_frames(spec, LinkMix(), n_frames, purpose_rng(seed, EVAL_PURPOSE))
    out = {}
    for name, dn in denoisers.items():
        X, V = dn.denoise(f["z"], f["v"])
        out[name] = {k: round(v, 5) for k, v in frame_metrics(X[:, 0], V[:, 0], f["x"][:, 0], spec).items()}
    return out


def sweep(scenario: str, impairments: dict, snrs, runs: int, frames: int, base: LinkConfig, receivers: dict,
          denoisers: dict, seed: int, progress=None) -> list[dict]:
    """Rows (scenario, receiver, snr_db, metric, value, n_frames) for ber, per, raw_ber. Each
    SNR point pools ``runs`` independent links of ``frames`` frames (seeds seed*1000 + run, the
    same at every SNR), so slow fading is averaged over many channel realisations. Stops once
    every receiver is a decade below TARGET, or on an error floor, for two points."""
    rows, quiet, hist = [], 0, {}
    for snr in snrs:
        tot: dict[str, np.ndarray] = {n: np.zeros(5) for n in receivers}  # bit errs, bits, raw errs, ok, sent
        for run in range(runs):
            cfg = dataclasses.replace(base, snr_db=float(snr), impairments=dict(impairments), frames=frames,
                                      seed=seed * 1000 + run)
            for name, r in simulate(cfg, [], receivers=receivers, denoisers=denoisers).items():
                bits = r["bits"] or 0
                tot[name] += [(r["ber"] or 0) * bits, bits, (r["raw_ber"] or 0) * bits, r["frames_ok"],
                              r["frames_sent"]]
        res = {}
        for name, (be, bits, raw, ok, sent) in tot.items():
            res[name] = dict(ber=be / bits if bits else 1.0, raw_ber=raw / bits if bits else 1.0,
                             per=1 - ok / sent)
            for m, v in res[name].items():
                rows.append(dict(scenario=scenario, estimator=name, snr_db=float(snr), metric=m, value=float(v),
                                 n_frames=int(sent)))
        if progress:
            progress(f"{scenario} {snr:5.1f} dB  " + "  ".join(f"{n} {res[n]['ber']:.1e}" for n in receivers))
        for n in receivers:
            hist.setdefault(n, []).append(res[n]["ber"])
        quiet = quiet + 1 if all(_done(hist[n]) for n in receivers) else 0
        if quiet >= 2:
            break
    return rows


def _done(bers: list[float]) -> bool:
    """A decade below the target, or stuck on an error floor (three points within 20%)."""
    if bers[-1] < TARGET / 10:
        return True
    last = bers[-3:]
    return len(last) == 3 and min(last) > 0.8 * max(last)


def summarize(rows: list[dict], receivers=None) -> dict:
    """{scenario: {"snr_at_ber_1e-2": {receiver: dB}, "best_classical": name, "gain_db": ...}}
    (metrics.evaluate.snr_at: log-interpolated; None where the curve never reaches 1e-2)."""
    from ..metrics.evaluate import snr_at

    crossing = snr_at(rows, "ber", TARGET)
    out = {}
    for sc in dict.fromkeys(r["scenario"] for r in rows):
        names = receivers or list(dict.fromkeys(r["estimator"] for r in rows if r["scenario"] == sc))
        at = {n: crossing.get((sc, n)) for n in names if (sc, n) in crossing}
        classical = {n: v for n, v in at.items() if n in CLASSICAL and v is not None}
        best = min(classical, key=classical.get) if classical else None
        entry = {"snr_at_ber_1e-2": at, "best_classical": best}
        for n in names:
            if "denoiser" in n and at.get(n) is not None:
                if best is not None:
                    entry[f"gain_db_{n}_vs_best_classical"] = round(classical[best] - at[n], 2)
                if at.get("plain") is not None:
                    entry[f"gain_db_{n}_vs_plain"] = round(at["plain"] - at[n], 2)
            if "pa_cancel" in n and at.get(n) is not None:
                # the canceller is classical: its gain is over the tracking CPE, never the learned model's
                for ref in ("cpe", "cpe+pa_cancel"):
                    if ref != n and at.get(ref) is not None:
                        entry[f"gain_db_{n}_vs_{ref}"] = round(at[ref] - at[n], 2)
        out[sc] = entry
    return out


def receiver_denoiser(key: str, spec, model, made: dict):
    """The symbol denoiser of a receiver key: a registry name, cpe_dd (main's per-symbol CPE),
    or stages joined by '+' (cpe+pa_cancel: the canceller after the tracking CPE)."""
    from . import make
    from .base import Chain

    if key == "cpe_dd":
        return make("cpe", spec, iterations=2, track=False)
    if key == "diffusion":  # one session, shared by every receiver that runs the network
        if key not in made:
            made[key] = make("diffusion", spec, model=model)
        return made[key]
    if key.startswith("cpe+pa_cancel"):
        first = make("pa_cancel", spec, cpe=True)
        rest = key[len("cpe+pa_cancel"):].lstrip("+")
        return Chain([first, receiver_denoiser(rest, spec, model, made)]) if rest else first
    return make(key, spec)


def main(argv=None) -> dict:
    import argparse

    from ..metrics.evaluate import plot, write_csv

    p = argparse.ArgumentParser(description="BER/PER vs SNR: symbol denoiser vs classical compensation")
    p.add_argument("--out", default="out/denoiser_eval", help="output path without extension")
    p.add_argument("--runs", type=int, default=16, help="independent links per SNR point")
    p.add_argument("--frames", type=int, default=32, help="frames per link")
    p.add_argument("--scenarios", default=",".join(SCENARIOS))
    p.add_argument("--receivers", default=",".join(RECEIVERS))
    p.add_argument("--snr-start", type=float, default=None, help="default: per scenario, a few dB below the waterfall")
    p.add_argument("--snr-stop", type=float, default=30.0)
    p.add_argument("--snr-step", type=float, default=1.0)
    p.add_argument("--model", default="", help="denoiser .onnx (default: the shipped one)")
    p.add_argument("--profile", default="TDL-C")
    p.add_argument("--delay-spread", type=float, default=300e-9)
    p.add_argument("--doppler", type=float, default=50.0)
    a = p.parse_args(argv)
    base = LinkConfig(n_rx=2, n_tx=1, modulation="16qam", estimator="lmmse", profile=a.profile,
                      delay_spread=a.delay_spread, doppler=a.doppler, denoiser_model=a.model)
    receivers = {n: RECEIVERS[n] for n in a.receivers.split(",")}
    spec = base.spec()
    denoisers = {}
    for r in receivers.values():
        if r.denoiser not in denoisers:
            denoisers[r.denoiser] = receiver_denoiser(r.denoiser, spec, a.model or None, denoisers)
    rows = []
    for sc in a.scenarios.split(","):
        if sc not in SCENARIOS:
            raise SystemExit(f"unknown scenario {sc!r}; valid: {', '.join(SCENARIOS)}")
        imp = SCENARIOS[sc]
        mine = {n: r for n, r in receivers.items()
                if n not in IQ_RECEIVERS or imp.get("iq_gain_db") or imp.get("iq_phase_deg")}
        start = a.snr_start if a.snr_start is not None else SNR_START.get(sc, 2.0)
        snrs = np.arange(start, a.snr_stop + 1e-9, a.snr_step)
        rows += sweep(sc, imp, snrs, a.runs, a.frames, base, mine, denoisers, EVAL_SEED + list(SCENARIOS).index(sc),
                      progress=lambda line: print(line, flush=True))
    out = Path(a.out)
    csv_path = write_csv(rows, out.with_suffix(".csv"))
    png = plot([r for r in rows if r["metric"] in ("ber", "per")], out.with_suffix(".png"))
    summary = {"link": f"1x2 {base.preset} 16qam {base.profile} {base.delay_spread * 1e9:g}ns {base.doppler:g}Hz, "
                       f"lmmse estimator + lmmse equalizer, ldpc12",
               "frames_per_point": a.runs * a.frames, "runs_per_point": a.runs, "target_ber": TARGET,
               "scenarios": {k: SCENARIOS[k] for k in a.scenarios.split(",")},
               "model": denoisers["diffusion"].describe()["path"] if "diffusion" in denoisers else None,
               "results": summarize(rows, list(receivers))}
    out.with_suffix(".json").write_text(json.dumps(summary, indent=1, default=str))
    print(json.dumps(summary["results"], indent=1, default=str))
    print(f"wrote {csv_path}, {png}, {out.with_suffix('.json')}")
    return summary


if __name__ == "__main__":
    main()
