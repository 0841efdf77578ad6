"""`gr-gdm`: one entry point for the module. Option names follow the GRC block parameters."""
from __future__ import annotations

import argparse
import json
import sys

from . import commands


def _antennas(text: str) -> tuple[int, int]:
    try:
        n_tx, n_rx = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"antennas must look like 1x2 (n_tx x n_rx), got {text!r}") from None
    if n_tx < 1 or n_rx < n_tx:
        raise argparse.ArgumentTypeError(f"need 1 <= n_tx <= n_rx, got {text!r}")
    return n_tx, n_rx


def _floats(text: str) -> list[float]:
    """'5,10,20' or a range 'start:stop:step' (stop included)."""
    if ":" in text:
        a, b, s = (float(v) for v in text.split(":"))
        n = int(round((b - a) / s)) + 1
        return [a + i * s for i in range(n)]
    return [float(v) for v in text.split(",") if v]


def _link_options(p: argparse.ArgumentParser, frames: int):
    p.add_argument("--antennas", type=_antennas, default=(1, 2), help="n_tx x n_rx, e.g. 1x2, 2x2, 1x4")
    p.add_argument("--preset", default="nr72")
    p.add_argument("--modulation", default="16qam", choices=["qpsk", "16qam", "64qam"])
    p.add_argument("--fec", default=None, choices=["none", "ldpc12"], help="default: the preset's")
    p.add_argument("--equalizer", default="lmmse", choices=["mrc", "zf", "lmmse"])
    p.add_argument("--profile", default="TDL-A")
    p.add_argument("--delay-spread", type=float, default=30e-9, help="seconds")
    p.add_argument("--doppler", type=float, default=10.0, help="Hz")
    p.add_argument("--cfo", type=float, default=0.0, help="Hz")
    p.add_argument("--timing-offset", type=float, default=0.0, help="samples")
    p.add_argument("--frames", type=int, default=frames, help="frames (per SNR point where there are several)")
    p.add_argument("--gap", type=int, default=0, help="idle samples between frames")
    p.add_argument("--seed", type=int, default=0)
    g = p.add_argument_group("impairments (channel_sim parameters)")
    g.add_argument("--pa", default="none", choices=["none", "rapp", "saleh"])
    g.add_argument("--pa-backoff-db", type=float, default=6.0)
    g.add_argument("--phase-noise", default="none", choices=["none", "wiener", "mask"])
    g.add_argument("--pn-linewidth-hz", type=float, default=100.0)
    g.add_argument("--iq-gain-db", type=float, default=0.0)
    g.add_argument("--iq-phase-deg", type=float, default=0.0)
    g.add_argument("--adc-bits", type=int, default=0, help="0 = ideal")
    g.add_argument("--cfo-drift-hz-s", type=float, default=0.0)
    g = p.add_argument_group("receiver compensation")
    g.add_argument("--iq-compensation", action="store_true", help="blind IQ-imbalance compensation before sync")
    g.add_argument("--denoiser", default="none",
                   help="symbol denoiser after the equalizer: none, cpe, diffusion, pa_cancel (eval: a comma list to compare)")
    g.add_argument("--denoiser-model", default="", help="diffusion denoiser .onnx (default: the shipped one)")


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="gr-gdm", description=__doc__)
    sub = ap.add_subparsers(dest="cmd", required=True)

    p = sub.add_parser("demo", help="simulated 1x2 link, headless GNU Radio, a few SNRs, all classical estimators")
    p.add_argument("--snrs", type=_floats, default=[5.0, 10.0, 15.0, 20.0])
    p.add_argument("--frames", type=int, default=100)
    p.add_argument("--estimators", default="ls,ls_interp,lmmse,genie")

    p = sub.add_parser("run", help="run the simulated link flowgraph once and report BER/PER/EVM/NMSE")
    _link_options(p, 1000)
    p.add_argument("--snr", type=float, default=20.0, help="dB per resource element")
    p.add_argument("--estimator", default="ls_interp")
    p.add_argument("--stock", action="store_true", help="also run GNU Radio's stock ofdm_tx -> ofdm_rx on "
                   "the same number of back-to-back packets")
    p.add_argument("--json", action="store_true", help="one JSON object on stdout")

    p = sub.add_parser("eval", help="NMSE vs SNR on the grid and BER/PER vs SNR on the link; CSV + PNG")
    p.add_argument("--estimators", default=None, help="default ls,ls_interp,lmmse,genie; XL-MIMO: "
                   "diffusion,sigw,somp,swomp,ls,genie")
    p.add_argument("--scenario", action="append", default=None,
                   help="'mix' or PROFILE[:DS_NS[:DOPPLER_HZ]] (repeatable); default TDL-C:300:0. "
                   "XL-MIMO case study: xlmimo (training distances), xlmimo-far, xlmimo-near or "
                   "xlmimo:R_MIN:R_MAX: NMSE vs pilot overhead")
    p.add_argument("--snrs", type=_floats, default=None, help="default -5:30:5; XL-MIMO 0,10,20")
    p.add_argument("--pilots", default="4,8,12,16,24,32",
                   help="XL-MIMO: pilot symbols P per user (overhead P*N_RF, N_RF = 16, N = 256)")
    p.add_argument("--prior", default=None, help="XL-MIMO: ONNX prior (default: the shipped one)")
    p.add_argument("--append", action="store_true", help="XL-MIMO: keep the CSV's rows of other "
                   "(scenario, estimator, SNR) triples (same seeds, so runs per estimator combine)")
    p.add_argument("--lmmse-source", choices=["scenario", "mix"], default="scenario",
                   help="covariance for lmmse: the scenario's own channels, or the training mix")
    p.add_argument("--link", action="store_true", help="also BER/PER/NMSE on the simulated link")
    p.add_argument("--link-snrs", type=_floats, default=None)
    p.add_argument("--link-frames", type=int, default=200, help="frames per SNR on the link")
    _link_options(p, None)
    p.add_argument("--csv", default="gdm_eval.csv", help="output CSV; the PNG goes beside it")

    p = sub.add_parser("record", help="record the simulated link's received samples as SigMF (+ frame annotations)")
    p.add_argument("--out", required=True, help="recording path (without .sigmf-meta/.sigmf-data)")
    p.add_argument("--source", choices=["sim"], default="sim")
    _link_options(p, 50)
    p.add_argument("--snr", type=float, default=15.0)
    p.add_argument("--estimator", default="lmmse")
    p.add_argument("--center-freq", type=float, default=0.0, help="Hz, written to the metadata")
    p.add_argument("--json", action="store_true")

    p = sub.add_parser("replay", help="decode a SigMF recording with the gr-gdm receiver, headless")
    p.add_argument("path")
    p.add_argument("--estimator", default=None, help="default: the recording's, else ls_interp")
    p.add_argument("--equalizer", default=None)
    p.add_argument("--preset", default=None)
    p.add_argument("--modulation", default=None)
    p.add_argument("--fec", default=None, choices=["none", "ldpc12"])
    p.add_argument("--json", action="store_true")

    p = sub.add_parser("bench", help="receiver and estimator speed beside GNU Radio's stock OFDM receiver")
    p.add_argument("--estimators", default=None, help="default ls,lmmse,diffusion; --xlmimo: diffusion,sigw,somp,swomp,ls")
    p.add_argument("--antennas", default="1x2,2x2,1x4", help="comma-separated n_tx x n_rx")
    p.add_argument("--preset", default="nr72", help="frame preset (diffusion needs a model for it)")
    p.add_argument("--estimator-only", action="store_true",
                   help="only the estimators on grids: frames/s, ms/frame, latency per step count")
    p.add_argument("--steps", default="0,1,2,3", help="diffusion step counts for --estimator-only")
    p.add_argument("--receivers", default="blocks,one_block",
                   help="receive flowgraphs to time: blocks (the separate blocks), one_block (ofdm_receiver)")
    p.add_argument("--frames", type=int, default=400)
    p.add_argument("--repeat", type=int, default=3, help="timed runs per receiver (stock too); the median is "
                   "reported, all in runs_samples_per_s")
    p.add_argument("--snr", type=float, default=None, help="dB; default 25, --xlmimo 10")
    p.add_argument("--xlmimo", action="store_true", help="XL-MIMO case study instead: run time per channel "
                   "estimate per method (N = 256, N_RF = 16, K = 8)")
    p.add_argument("--pilots", type=int, default=8, help="--xlmimo: pilot symbols per user")
    p.add_argument("--prior", default=None, help="--xlmimo: ONNX prior (default: the shipped one)")
    p.add_argument("--device", default="cpu", choices=["cpu", "cuda", "auto"])
    p.add_argument("--json", action="store_true", help="one JSON object per configuration, one per line")

    p = sub.add_parser("soak", help="run the simulated link continuously for N minutes: periodic frames/errors/"
                       "losses/RSS, then the account (every lost frame reported or explained, RSS drift)")
    p.add_argument("--minutes", type=float, required=True)
    p.add_argument("--antennas", type=_antennas, default=(1, 2), help="n_tx x n_rx")
    p.add_argument("--snr", type=float, default=25.0)
    p.add_argument("--estimator", default="diffusion")
    p.add_argument("--profile", default="TDL-A")
    p.add_argument("--doppler", type=float, default=10.0, help="Hz")
    p.add_argument("--interval", type=float, default=30.0, help="seconds between reports")
    p.add_argument("--warmup", type=float, default=None, help="seconds before the start RSS is taken "
                   "(default a quarter of the run, at most 60)")
    p.add_argument("--fault", default="none", choices=["none", "gaps", "estimator"],
                   help="inject a fault all along: sample gaps (3000 samples every 500 frames) or an "
                   "estimator whose inference fails every 50th call")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", action="store_true", help="the final account as one JSON object on stdout")

    p = sub.add_parser("faults", help="inject each fault into the simulated link (estimator raises / NaN, "
                       "sample gaps, blocking sinks) and print what was lost and reported")
    p.add_argument("--frames", type=int, default=300)
    p.add_argument("--antennas", type=_antennas, default=(1, 2), help="n_tx x n_rx")
    p.add_argument("--snr", type=float, default=25.0)
    p.add_argument("--estimator", default="diffusion")
    p.add_argument("--stall", type=float, default=2.0, help="seconds the blocking sinks block")
    p.add_argument("--json", action="store_true", help="one JSON object per fault, one per line")

    p = sub.add_parser("train", help="train a model (diffusion estimator or symbol denoiser); every other "
                       "option is a field of the trainer's config, e.g. --steps 1000 --out-dir out/train",
                       add_help=False)
    p.add_argument("--kind", default="estimator", choices=sorted(commands.TRAINERS))
    p = sub.add_parser("export", help="export a checkpoint to ONNX with metadata, check parity, update "
                       "SHA256SUMS (options: --checkpoint C --out F [--heldout rows.json])", add_help=False)
    p.add_argument("--kind", default="estimator", choices=sorted(commands.TRAINERS))

    p = sub.add_parser("adapt", help="adapt the diffusion estimator to a site from received pilots only (no true "
                       "channels): fit, validate on held-out frames, write a new ONNX model")
    p.add_argument("--from", dest="source", required=True,
                   help="a SigMF recording (.sigmf-meta or its base path), or a simulated profile "
                        "PROFILE[:DELAY_SPREAD_NS[:DOPPLER_HZ]] (e.g. TDL-C:2000:0) or 'mix'")
    p.add_argument("--frames", type=int, default=200, help="frames to collect; the last --holdout of them "
                   "only validate the result")
    p.add_argument("--holdout", type=float, default=0.25, help="fraction of the frames held out for the guard")
    p.add_argument("--model", default=None, help="base model (default: the shipped one); never modified")
    p.add_argument("--out", default=None, help="adapted model file (default: gdm_adapted_<preset>.onnx here)")
    p.add_argument("--preset", default=None, help="frame preset (default: the recording's, else nr72)")
    p.add_argument("--snr", type=float, default=10.0, help="dB per RE, simulated profiles only")
    p.add_argument("--antennas", type=_antennas, default=(1, 1), help="n_tx x n_rx, simulated profiles only")
    p.add_argument("--estimate-noise", action="store_true",
                   help="simulated profiles: estimate the noise variance from the pilots instead of using the true one")
    p.add_argument("--seed", type=int, default=0, help="simulated profiles: seed of the adaptation frames")
    p.add_argument("--margin", type=float, default=0.0, help="dB the adapted prior must beat the shipped one by")
    p.add_argument("--min-z", type=float, default=1.0, help="standard errors the adapted prior must beat the "
                   "shipped one by on the held-out frames (0: accept anything not worse)")
    p.add_argument("--force", action="store_true", help="write the model even when the guard rejects it")
    p.add_argument("--json", action="store_true", help="one JSON object on stdout")

    p = sub.add_parser("info", help="blocks, presets, estimators, shipped models")
    p.add_argument("--json", action="store_true")
    return ap


def main(argv=None) -> int:
    args, rest = build_parser().parse_known_args(argv)
    if rest and args.cmd not in commands.PASS_THROUGH:
        build_parser().parse_args(argv)  # the usual error for unknown options
    args.rest = rest
    try:
        out = getattr(commands, args.cmd)(args)
    except (ValueError, FileNotFoundError, RuntimeError) as e:
        print(f"gr-gdm {args.cmd}: error: {e}", file=sys.stderr)
        return 2
    if isinstance(out, dict) and getattr(args, "json", False):
        print(json.dumps(out, default=str))
    return int(out.get("exit_code", 0)) if isinstance(out, dict) else 0


if __name__ == "__main__":
    sys.exit(main())
