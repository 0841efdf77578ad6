"""Implementations of the `gr-gdm` sub-commands (argument parsing lives in main.py)."""
from __future__ import annotations

import dataclasses
import hashlib
from pathlib import Path

from .. import estimation
from ..frame import FrameSpec

ROOT = Path(__file__).resolve().parents[1]
# model kind -> module with train_cli(argv) and export_cli(argv); the remaining options pass through
TRAINERS = {"estimator": "gnuradio.gdm.models.cli", "denoiser": "gnuradio.gdm.denoising.cli",
            "xlmimo": "gnuradio.gdm.xlmimo.cli"}
PASS_THROUGH = ("train", "export")


def _trainer(kind: str):
    import importlib

    try:
        return importlib.import_module(TRAINERS[kind])
    except ModuleNotFoundError as e:
        raise RuntimeError(f"no trainer for kind {kind!r} in this build ({e})") from None


def train(args) -> None:
    _trainer(args.kind).train_cli(args.rest)


def export(args) -> None:
    _trainer(args.kind).export_cli(args.rest)


IMPAIRMENT_OPTIONS = ("pa", "pa_backoff_db", "phase_noise", "pn_linewidth_hz", "iq_gain_db", "iq_phase_deg",
                      "adc_bits", "cfo_drift_hz_s")


def _impairments(args) -> dict | None:
    from ..sim.impairments import Impairments

    default = Impairments()
    imp = {k: getattr(args, k) for k in IMPAIRMENT_OPTIONS if getattr(args, k, None) != getattr(default, k)}
    Impairments(**imp).tx_chain(1), Impairments(**imp).rx_chain(1, 1e6)  # a bad setting fails here, named
    return imp or None


def _denoisers(args) -> list[str]:
    from .. import denoising

    names = [n for n in str(getattr(args, "denoiser", "none") or "none").split(",") if n]
    bad = [n for n in names if n not in denoising.names()]
    if bad:
        raise ValueError(f"unknown denoiser {bad[0]!r}; valid: {', '.join(denoising.names())}")
    return names


def _link_params(args, snr, estimator):
    from ..link import LinkConfig

    n_tx, n_rx = args.antennas
    dn = _denoisers(args)
    return LinkConfig(preset=args.preset, n_rx=n_rx, n_tx=n_tx, modulation=args.modulation, fec=args.fec,
                      estimator=estimator, equalizer=args.equalizer, profile=args.profile,
                      delay_spread=args.delay_spread, doppler=args.doppler, snr_db=snr, cfo_hz=args.cfo,
                      timing_offset=args.timing_offset, frames=args.frames, gap=args.gap, seed=args.seed,
                      impairments=_impairments(args), iq_compensation=bool(getattr(args, "iq_compensation", False)),
                      denoiser=dn[0], denoiser_model=getattr(args, "denoiser_model", "") or "")


def _result(s: dict) -> dict:
    keys = ("frames_sent", "frames_ok", "frames_lost", "per", "ber", "raw_ber", "evm_db", "nmse_db",
            "estimator", "antennas", "snr_db")
    return {**{k: s.get(k) for k in keys}, **{k: v for k, v in s.items() if k not in keys}}


def run(args) -> dict:
    from ..blocks.link_stats import format_stats
    from ..blocks.sim_link import SimLink

    if len(_denoisers(args)) > 1:
        raise ValueError("run takes one --denoiser (eval --link compares several)")
    out = _result(SimLink(_link_params(args, args.snr, args.estimator)).run_and_collect())
    out.pop("payloads")
    if args.stock:
        from ..blocks.stock_ofdm import stock_loopback
        out["stock_ofdm"] = stock_loopback(args.frames, snr_db=args.snr, seed=args.seed)
    if not args.json:
        print(format_stats(out, f"{out['antennas']} {args.estimator} {args.snr:g} dB"))
        print(f"  sync: {out['sync']}  decoder: {out['decoder']}  wall {out['wall_s']:.1f} s")
        if out.get("denoiser"):
            print(f"  symbol denoiser: {out['denoiser']}" + ("  (after blind IQ compensation)" if out.get("iq_compensation") else ""))
        if args.stock:
            s = out["stock_ofdm"]
            print(f"  stock digital.ofdm_tx -> ofdm_rx: {s['packets_ok']}/{s['packets_sent']} packets "
                  f"(lost {s['packets_lost']}, PER {s['per']:.4f})")
    return out


def record(args) -> dict:
    from ..blocks.link_stats import format_stats
    from ..blocks.sim_link import SimLink

    out = _result(SimLink(_link_params(args, args.snr, args.estimator), record=args.out,
                          center_freq=args.center_freq).run_and_collect())
    out.pop("payloads")
    out["recording"] = args.out
    if not args.json:
        print(format_stats(out, f"recorded {args.out}"))
    return out


def replay(args) -> dict:
    from ..blocks.link_stats import format_stats
    from ..blocks.sim_link import ReplayLink, StockReplayLink, stock_ofdm_rx_reference
    from ..io.recording import open_recording

    if open_recording(args.path).meta["global"].get("gdm:waveform") == "stock_ofdm":
        out = StockReplayLink(args.path).run_and_collect()
        out["payloads_ok"] = len(out.pop("payloads"))
        ref = stock_ofdm_rx_reference(args.path)
        out["stock_ofdm_rx_frames_ok"] = ref["frames_ok"]
        if not args.json:
            print(f"replay {args.path} (stock digital.ofdm_tx waveform): gr-gdm stock_ofdm_rx decoded "
                  f"{out['frames_ok']} packets with good CRC; GNU Radio's digital.ofdm_rx on the same "
                  f"samples: {ref['frames_ok']}  ({out['stats']})")
        return out
    over = {k: getattr(args, k) for k in ("estimator", "equalizer", "preset", "modulation", "fec")}
    out = _result(ReplayLink(args.path, **over).run_and_collect())
    out["payloads_ok"] = len(out.pop("payloads"))
    if not args.json:
        print(format_stats(out, f"replay {args.path}"))
        print(f"  sync: {out['sync']}  decoder: {out['decoder']}")
    return out


def demo(args) -> dict:
    from ..blocks.sim_link import SimLink
    from ..link import LinkConfig

    names = args.estimators.split(",")
    print(f"gr-gdm demo: simulated 1x2 nr72 16-QAM link (TDL-C 300 ns, 50 Hz Doppler), headless GNU Radio, "
          f"{args.frames} frames per point")
    print(f"{'estimator':<10} {'SNR':>5} {'sent':>5} {'ok':>5} {'PER':>7} {'BER':>9} {'NMSE dB':>8} {'EVM dB':>7}")
    rows = []
    for snr in args.snrs:
        for name in names:
            p = LinkConfig(estimator=name, snr_db=snr, frames=args.frames, profile="TDL-C", delay_spread=300e-9,
                           doppler=50.0)
            s = SimLink(p).run_and_collect()
            s.pop("payloads")
            rows.append(_result(s))
            f = (lambda v, fmt: "-" if v is None else format(v, fmt))
            print(f"{name:<10} {snr:5.1f} {s['frames_sent']:5d} {s['frames_ok']:5d} {f(s['per'], '7.3f')} "
                  f"{f(s['ber'], '9.2e')} {f(s['nmse_db'], '8.2f')} {f(s['evm_db'], '7.2f')}", flush=True)
    return {"results": rows}


def eval(args) -> dict:  # noqa: A001 - the sub-command's name
    from ..metrics import evaluate as ev
    from ..xlmimo import evaluate as xl

    scenarios = args.scenario or ["TDL-C:300:0"]
    if any(xl.is_scenario(sc) for sc in scenarios):
        return _eval_xlmimo(args, scenarios)
    names = (args.estimators or "ls,ls_interp,lmmse,genie").split(",")
    args.snrs = args.snrs or [float(s) for s in range(-5, 31, 5)]
    args.frames = args.frames or 500
    for n in names:
        if n not in estimation.names():
            raise ValueError(f"unknown estimator {n!r}; valid estimators: {', '.join(estimation.names())}")
    n_tx, n_rx = args.antennas
    spec = FrameSpec.preset(args.preset, n_tx=n_tx)
    rows = []
    for sc in scenarios:
        rows += ev.grid_nmse(sc, names, args.snrs, args.frames, spec=spec, lmmse_source=args.lmmse_source,
                             progress=True)
    if args.link:
        cfg = dataclasses.replace(_link_params(args, 0.0, names[0]), frames=args.link_frames)
        rows += ev.link_sweep(names, args.link_snrs or args.snrs, cfg, progress=True, denoisers=_denoisers(args))
    csv_path = ev.write_csv(rows, args.csv)
    png = ev.plot(rows, csv_path.with_suffix(".png"))
    for m in ("nmse_db", "ber", "per"):
        if any(r["metric"] == m for r in rows):
            print(ev.table(rows, m))
    if any(r["metric"] == "per" for r in rows):
        at = ev.snr_at(rows, "per", 0.1)
        ref = {sc: v for (sc, e), v in at.items() if e == "ls_interp"}
        print("SNR at PER 10 %:")
        for (sc, e), v in at.items():
            gain = "" if v is None or ref.get(sc) is None or e == "ls_interp" else f"  ({ref[sc] - v:+.2f} dB vs ls_interp)"
            print(f"  {e:<10} {'not reached' if v is None else f'{v:.2f} dB'}{gain}")
    print(f"wrote {csv_path} and {png}")
    return {"csv": str(csv_path), "png": str(png), "rows": rows}


def _eval_xlmimo(args, scenarios) -> dict:
    """`gr-gdm eval --scenario xlmimo[...]`: NMSE (and time per estimate) vs pilot overhead."""
    from ..xlmimo import evaluate as xl

    bad = [sc for sc in scenarios if not xl.is_scenario(sc)]
    if bad:
        raise ValueError(f"scenarios {bad} cannot be mixed with XL-MIMO scenarios in one run")
    names = (args.estimators or ",".join(xl.ESTIMATORS + xl.REFERENCES)).split(",")
    for n in names:
        if n not in xl.ESTIMATORS + xl.REFERENCES:
            raise ValueError(f"unknown XL-MIMO estimator {n!r}; valid: {', '.join(xl.ESTIMATORS + xl.REFERENCES)}")
    prior = args.prior or xl.default_prior()
    if "diffusion" in names and prior is None:
        raise ValueError(f"no XL-MIMO prior: {xl.PRIOR_NAME} is not in onnx_models/; pass --prior PATH or "
                         "leave diffusion out of --estimators")
    try:
        pilots = [int(p) for p in args.pilots.split(",")]
    except ValueError:
        raise ValueError(f"--pilots must be comma-separated integers, got {args.pilots!r}") from None
    rows = []
    for sc in scenarios:
        xl.scenario_config(sc)  # refuses a malformed name before any work
    for sc in scenarios:
        rows += xl.evaluate(scenario=sc, prior=prior, estimators=names, pilots=pilots,
                            snrs=args.snrs or list(xl.SNRS), n_frames=args.frames or 4,
                            seed=xl.EVAL_SEED + args.seed)
    if args.append and Path(args.csv).is_file():
        rows = xl.merge(xl.read_csv(args.csv), rows)
        scenarios = list(dict.fromkeys(r["scenario"] for r in rows))
    xl.write_csv(rows, args.csv)
    png = Path(args.csv).with_suffix(".png")
    xl.plot(rows, png)
    for sc in scenarios:
        for snr in sorted({r["snr_db"] for r in rows}):
            print(f"\n{sc}, SNR {snr:g} dB, NMSE (dB) vs pilot overhead P*N_RF\n" + xl.table(rows, snr, sc))
        print(f"\n{sc}, time per estimate (ms, this machine, shared CPU)\n"
              + xl.table(rows, sorted({r['snr_db'] for r in rows})[-1], sc, metric="ms_per_estimate"))
    print(f"wrote {args.csv} and {png}")
    return {"csv": str(args.csv), "png": str(png), "rows": rows}


def bench(args) -> None:
    import json
    import sys

    from ..bench import bench as run_bench

    log = (lambda line: print(line, file=sys.stderr, flush=True)) if args.json else print
    if args.xlmimo:
        from ..bench import bench_xlmimo
        from ..xlmimo import evaluate as xl

        names = (args.estimators or ",".join(xl.ESTIMATORS)).split(",")
        bad = [n for n in names if n not in xl.ESTIMATORS]
        if bad:
            raise ValueError(f"unknown XL-MIMO estimators {bad}; valid: {', '.join(xl.ESTIMATORS)}")
        rows = bench_xlmimo(names, args.pilots, 10.0 if args.snr is None else args.snr, args.prior, progress=log)
        if args.json:
            for r in rows:
                print(json.dumps(r))
        return
    ants = [tuple(int(v) for v in a.split("x")) for a in args.antennas.split(",")]
    est_names = (args.estimators or "ls,lmmse,diffusion").split(",")
    snr = 25.0 if args.snr is None else args.snr
    if args.estimator_only:
        from ..models.evaluate import benchmark

        rows = []
        for n_tx, n_rx in ants:
            for name in est_names:
                opts = {"device": args.device} if name == "diffusion" else None
                for r in benchmark(name, [int(v) for v in args.steps.split(",")], n_frames=args.frames,
                                   preset=args.preset, n_rx=n_rx, n_tx=n_tx, snr_db=snr, options=opts,
                                   progress=False):
                    rows.append(r)
                    log(f"{name:<10} {n_tx}x{n_rx} steps={'' if r['steps'] is None else r['steps']:<2} "
                        f"{r['frames_per_s']:8.1f} frames/s {r['ms_per_frame']:7.3f} ms/frame (batch {r['batch']}) "
                        f"latency p50 {r['latency_ms_p50']:.2f} ms p99 {r['latency_ms_p99']:.2f} ms")
        if args.json:
            for r in rows:
                print(json.dumps(r))
        return
    from ..bench import RECEIVERS

    receivers = args.receivers.split(",")
    bad = [r for r in receivers if r not in RECEIVERS]
    if bad:
        raise ValueError(f"unknown receivers {bad}; valid: {', '.join(RECEIVERS)}")
    if args.repeat < 1:
        raise ValueError(f"--repeat must be >= 1, got {args.repeat}")
    rows = run_bench(est_names, ants, args.frames, snr, args.device, progress=log, preset=args.preset,
                     receivers=receivers, repeat=args.repeat)
    if args.json:
        for r in rows:
            print(json.dumps(r))


def adapt(args) -> dict:
    """`gr-gdm adapt`: exit status 0 adapted and written, 3 rejected by the guard (nothing written)."""
    import shlex
    import sys

    from tqdm.auto import tqdm

    from ..adaptation import adapt as ad
    from ..adaptation import observations as ob
    from ..io.recording import base_path

    log = (lambda line: print(line, file=sys.stderr, flush=True))
    if args.frames < 2:
        raise ValueError(f"--frames must be at least 2 (some are held out for the guard), got {args.frames}")
    src = args.source
    is_rec = base_path(src).with_suffix(".sigmf-meta").exists()
    if is_rec:
        with tqdm(total=args.frames, desc=f"frames from {base_path(src).name}", unit="frame", file=sys.stderr) as bar:
            obs = ob.from_recording(src, args.frames, args.preset, progress=bar.update)
        if obs.n_frames < args.frames:
            log(f"gr-gdm adapt: the recording holds {obs.n_frames} usable frames (asked for {args.frames})")
    else:
        from ..metrics.evaluate import parse_scenario

        if src.endswith((".sigmf-meta", ".sigmf-data")) or "/" in src:
            raise ValueError(f"--from {src!r}: no such recording ({base_path(src).with_suffix('.sigmf-meta')} "
                             "is missing); give a SigMF recording or a profile like TDL-C:2000:0")
        _, scenario = parse_scenario(src)
        n_tx, n_rx = args.antennas
        spec = FrameSpec.preset(args.preset or "nr72", n_tx=n_tx)
        log(f"gr-gdm adapt: simulating {args.frames} frames of {src} at {args.snr:g} dB ({n_tx}x{n_rx})")
        obs = ob.from_profile(scenario, args.snr, args.frames, spec, n_rx, args.seed, not args.estimate_noise)
    result = ad.adapt(obs, args.model, args.holdout, margin_db=args.margin, min_z=args.min_z,
                      progress=lambda s: log(f"  {s}"))
    out = result.summary()
    g = result.guard.to_dict()
    site = result.site.summary()
    shift = f" shifted by {site['doppler_shift_hz']:g} Hz" if site["doppler_shift_hz"] else ""
    log(f"site: rms delay spread {site['rms_delay_spread_ns']:g} ns, Doppler {site['doppler_hz']:g} Hz{shift}, "
        f"power {site['power']:g}; prior weight of the site hypotheses {out['site_prior_weight']:.2f}")
    log(f"guard on {g['heldout_frames']} held-out frames: hold-out risk shipped {g['risk_shipped_db']:.2f} dB, "
        f"adapted {g['risk_adapted_db']:.2f} dB ({g['z']:+.1f} standard errors) -> "
        f"{'accepted' if g['accepted'] else 'REJECTED'}")
    log(f"adaptation time {result.seconds['total']:.1f} s")
    if result.accepted or args.force:
        path = args.out or f"gdm_adapted_{obs.spec.name}.onnx"
        cmd = "gr-gdm adapt " + " ".join(shlex.quote(a) for a in sys.argv[2:]) if sys.argv[1:2] == ["adapt"] else None
        out["model"] = str(ad.export(result, path, command=cmd, force=args.force))
        log(f"wrote {out['model']}  (use it: channel_estimator(method='diffusion', model=...), or "
            f"--estimator-options / estimation.make('diffusion', spec, model=...))")
    else:
        out["model"] = None
        out["exit_code"] = 3
        log("the adapted model is worse than the shipped one on held-out frames: nothing written, the shipped "
            "model stays (--force writes it anyway)")
    if not args.json:
        print(out.get("model") or "rejected")
    return out


def soak(args) -> dict:
    import sys

    from ..blocks.soak import soak as run_soak
    from ..link import LinkConfig

    n_tx, n_rx = args.antennas
    cfg = LinkConfig(n_rx=n_rx, n_tx=n_tx, estimator=args.estimator, snr_db=args.snr, profile=args.profile,
                     doppler=args.doppler, seed=args.seed)
    log = (lambda line: print(line, file=sys.stderr, flush=True)) if args.json else \
        (lambda line: print(line, flush=True))
    return run_soak(cfg, args.minutes, args.interval, args.warmup, args.fault, progress=log)


def faults(args) -> None:
    import json
    import sys

    from ..blocks.fault_runs import fault_table, markdown
    from ..link import LinkConfig

    n_tx, n_rx = args.antennas
    cfg = LinkConfig(n_rx=n_rx, n_tx=n_tx, estimator=args.estimator, snr_db=args.snr, frames=args.frames)
    out = (lambda r: print(json.dumps(r, default=str), flush=True)) if args.json else \
        (lambda r: print(f"{r['fault']}: {r}", file=sys.stderr, flush=True))
    rows = fault_table(cfg, stall_s=args.stall, progress=out)
    if not args.json:
        print(f"{cfg.antennas} {cfg.estimator}, {cfg.snr_db:g} dB, {cfg.frames} frames per fault")
        print(markdown(rows))


def info(args) -> dict:
    from .. import _BLOCKS

    from ..paths import model_dir as _model_dir

    models = []
    model_dir = _model_dir()
    if model_dir is not None:
        listed = {}
        if (model_dir / "SHA256SUMS").exists():
            for line in (model_dir / "SHA256SUMS").read_text().splitlines():
                if line.strip():
                    h, name = line.split(maxsplit=1)
                    listed[name.strip().lstrip("*")] = h
        for f in sorted(model_dir.glob("*.onnx")):
            h = hashlib.sha256(f.read_bytes()).hexdigest()
            models.append({"file": str(f), "sha256": h, "listed": listed.get(f.name) == h})
    out = {"blocks": sorted(_BLOCKS), "presets": FrameSpec.presets(), "estimators": estimation.names(),
           "models": models, "version": _version()}
    if not args.json:
        print(f"gr-gdm {out['version']}")
        print("blocks:     " + ", ".join(out["blocks"]))
        print("presets:    " + ", ".join(f"{p} ({FrameSpec.preset(p).describe()})" for p in out["presets"]))
        print("estimators: " + ", ".join(out["estimators"]))
        for m in models:
            print(f"model:      {m['file']} sha256 {m['sha256'][:16]}... {'listed' if m['listed'] else 'NOT in SHA256SUMS'}")
    return out


def _version() -> str:
    from .. import __version__
    return __version__


__all__ = ["run", "demo", "eval", "info", "record", "replay", "bench", "adapt", "soak", "faults"]
