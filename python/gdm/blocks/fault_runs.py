"""The simulated link with one injected fault at a time (blocks/faults.py), scored: did the
flowgraph keep running, what was lost, and was every lost frame reported (a decoder report
with its reason) or explained by the fault (frames a sample gap hit)? `gr-gdm faults` prints
the table; tests/blocks/test_fault_runs.py runs it small."""
from __future__ import annotations

import dataclasses
import time

import numpy as np

from ..link import LinkConfig
from .faults import inject_estimator_faults, pdu_stall_sink, sample_gap, stall_sink
from .sim_link import SimLink

FAULTS = ("none", "estimator raises", "estimator returns NaN", "sample gaps", "stream sink blocks",
          "payload sink blocks")


def run_fault(fault: str, cfg: LinkConfig, stall_s: float = 2.0) -> dict:
    """One run of ``cfg`` with ``fault`` injected -> a row (see FAULTS)."""
    if fault not in FAULTS:
        raise ValueError(f"unknown fault {fault!r}; valid: {', '.join(FAULTS)}")
    spec = cfg.spec()
    gap = None
    if fault == "sample gaps":  # about three gaps, each 3000 samples (1.4 frames), off the frame grid
        period = spec.frame_len * max(cfg.frames // 4, 2) + 777
        gap = sample_gap(cfg.n_rx, cfg.preset, period=period, length=3000)
    link = SimLink(cfg, insert=gap)
    fault_at = max(cfg.frames // 5, 1)  # the frame after which a one-off fault hits
    extra: dict = {}
    faulty = None
    if fault == "estimator raises":
        faulty = inject_estimator_faults(link.est, raise_every=5)
    elif fault == "estimator returns NaN":
        faulty = inject_estimator_faults(link.est, nan_every=3)
    elif fault == "stream sink blocks":  # a CSI recorder on the estimator's output stalls
        vlen = cfg.n_rx * cfg.n_tx * spec.fft_len
        sink = stall_sink(np.complex64, vlen, after=fault_at * spec.n_sym, seconds=stall_s)
        link.connect(link.est, sink)
    elif fault == "payload sink blocks":
        sink = pdu_stall_sink(after=fault_at, seconds=stall_s)
        link.msg_connect((link.dec, "pdus"), (sink, "in"))
    t0 = time.monotonic()
    s = link.run_and_collect()
    wall = time.monotonic() - t0
    ok_seqs = {q for q, _ in s.pop("payloads")}
    missed = set(link.stats.scorer.missed_seqs())
    hits = set(gap.hit_seqs) if gap is not None else set()
    if faulty is not None:
        extra.update(calls=faulty.calls, raised=faulty.raised, nan_results=faulty.nans,
                     fallback_frames=link.est.stats()["fallback"])
    if gap is not None:
        extra.update(gap.stats())
        fault_at = min(hits) if hits else fault_at
    if fault.endswith("sink blocks"):
        extra.update(stalled_s=round(sink.stalled_s, 2))
        if fault == "payload sink blocks":
            extra.update(payloads_delivered=sink.drained())
    lost = s["frames_sent"] - s["frames_ok"]
    return {
        "fault": fault,
        "estimator": cfg.estimator,
        "snr_db": cfg.snr_db,
        # kept running: every frame was pushed through, and good frames came after the fault
        "still_running": bool(s["frames_detected"] > 0 and any(q > fault_at for q in ok_seqs)),
        "frames_sent": s["frames_sent"],
        "frames_ok": s["frames_ok"],
        "frames_lost": lost,
        "lost_reported_by_decoder": lost - len(missed),  # detected, rejected with a reason, counted
        "lost_never_detected": len(missed),
        "explained_by_fault": len(missed & hits),
        "unexplained": len(missed - hits),
        "per": s["per"],
        "nmse_db": s["nmse_db"],
        "wall_s": round(wall, 1),
        **extra,
    }


def fault_table(cfg: LinkConfig, faults=FAULTS, stall_s: float = 2.0, progress=None) -> list[dict]:
    rows = []
    for f in faults:
        rows.append(run_fault(f, dataclasses.replace(cfg), stall_s))
        if progress:
            progress(rows[-1])
    return rows


def markdown(rows: list[dict]) -> str:
    out = ["| injected fault | flowgraph still running | frames sent | ok | lost | lost, reported by decoder | "
           "lost, never detected | of those explained by the fault | unexplained | what the fault did |",
           "|---|---|---:|---:|---:|---:|---:|---:|---:|---|"]
    for r in rows:
        what = ", ".join(f"{k} {v}" for k, v in r.items() if k in (
            "calls", "raised", "nan_results", "fallback_frames", "gaps", "samples_dropped", "frames_hit",
            "stalled_s", "payloads_delivered"))
        out.append(f"| {r['fault']} | {'yes' if r['still_running'] else 'NO'} | {r['frames_sent']} | "
                   f"{r['frames_ok']} | {r['frames_lost']} | {r['lost_reported_by_decoder']} | "
                   f"{r['lost_never_detected']} | {r['explained_by_fault']} | {r['unexplained']} | {what} |")
    return "\n".join(out) + "\n"
