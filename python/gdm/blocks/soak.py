"""Soak: the simulated link running continuously (a transmitter that never stops, one persistent
flowgraph, streaming), with periodic reports and a final account: frames, PER, every lost frame
reported by the decoder or explained by an injected fault, and the process's memory (RSS) from
after warm-up to the end. `gr-gdm soak --minutes N`."""
from __future__ import annotations

import ctypes
import dataclasses
import gc
import os
import time
from pathlib import Path

from ..link import LinkConfig
from .faults import inject_estimator_faults, sample_gap
from .sim_link import SimLink

SOAK_FAULTS = ("none", "gaps", "estimator")


def rss_mb() -> float:
    """Resident set size of this process (MB)."""
    return int(Path("/proc/self/statm").read_text().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


class _MallInfo2(ctypes.Structure):
    _fields_ = [(f, ctypes.c_size_t) for f in ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks",
                                                 "fsmblks", "uordblks", "fordblks", "keepcost")]


def heap_mb() -> dict | None:
    """The C heap of all threads (glibc mallinfo2): ``in_use`` (allocated and not freed: a leak
    grows this) and ``free`` (held by malloc's per-thread arenas, not returned to the system:
    fragmentation grows this). None where glibc's mallinfo2 is not available."""
    try:
        f = ctypes.CDLL(None).mallinfo2
    except (AttributeError, OSError):
        return None
    f.restype = _MallInfo2
    m = f()
    return {"in_use": round((m.uordblks + m.hblkhd) / 2**20, 1), "free": round(m.fordblks / 2**20, 1)}


def soak(cfg: LinkConfig, minutes: float, interval_s: float = 30.0, warmup_s: float | None = None,
         fault: str = "none", progress=print) -> dict:
    """Run ``cfg`` (frames ignored: the transmitter runs until the time is up) for ``minutes``.
    RSS 'start' is taken after ``warmup_s`` (default: a quarter of the run, at most 60 s), when
    the scorer's windows and buffers have their working size; a learned estimator's arena is
    warmed at every batch shape before the start (``warm_up()``)."""
    if fault not in SOAK_FAULTS:
        raise ValueError(f"soak: fault must be one of {', '.join(SOAK_FAULTS)}, got {fault!r}")
    if minutes <= 0:
        raise ValueError(f"soak: minutes must be > 0, got {minutes}")
    spec = cfg.spec()
    cfg = dataclasses.replace(cfg, frames=0)
    duration = 60.0 * minutes
    warmup_s = min(0.25 * duration, 60.0) if warmup_s is None else warmup_s
    gap = sample_gap(cfg.n_rx, cfg.preset, period=spec.frame_len * 500 + 777, length=3000) if fault == "gaps" else None
    rss_before = rss_mb()
    link = SimLink(cfg, insert=gap, keep_payloads=False)
    core = link.est._cache[link.est.method]
    if hasattr(core, "warm_up"):  # the model's memory arena at its final size before RSS is measured
        core.warm_up()
    faulty = inject_estimator_faults(link.est, raise_every=50) if fault == "estimator" else None
    progress(f"gr-gdm soak: {cfg.antennas} {cfg.estimator} {cfg.snr_db:g} dB {cfg.profile}, {minutes:g} min, "
             f"fault {fault}; report every {interval_s:g} s (RSS start after {warmup_s:.0f} s warm-up)")
    t0 = time.monotonic()
    link.start()
    rss_start = rss_peak = None
    reports = []
    try:
        next_report = t0 + min(interval_s, warmup_s) if warmup_s > 0 else t0 + interval_s
        while True:
            now = time.monotonic()
            if now - t0 >= duration:
                break
            time.sleep(max(0.0, min(next_report, t0 + duration) - now))
            now = time.monotonic()
            rss = rss_mb()
            if rss_start is None and now - t0 >= warmup_s:
                rss_start = rss
            rss_peak = max(rss_peak or rss, rss)
            if now >= next_report:
                r = _report(link, now - t0, rss)
                reports.append(r)
                progress(_line(r))
                next_report += interval_s
        rss_end = rss_mb()
    finally:
        link.tx.finish()  # the transmitter stops after what it has queued; the receiver drains it
        link.wait()
    wall = time.monotonic() - t0
    s = link.stats.stats()
    gains = link.stats.scorer.missed_gain_db()  # never-detected seq -> its channel power
    missed = set(gains)
    hits = set(gap.hit_seqs) if gap is not None else set()
    lost = (s["frames_sent"] or 0) - s["frames_ok"]
    rss_start = rss_start or rss_end
    out = {
        "antennas": cfg.antennas, "estimator": cfg.estimator, "snr_db": cfg.snr_db, "profile": cfg.profile,
        "fault": fault, "minutes": minutes, "wall_s": round(wall, 1),
        "frames_sent": s["frames_sent"], "frames_ok": s["frames_ok"], "per": s["per"], "ber": s["ber"],
        "nmse_db": s["nmse_db"], "frames_per_s": round((s["frames_sent"] or 0) / wall, 1),
        "frames_lost": lost,
        "lost_reported_by_decoder": lost - len(missed),  # detected, rejected with a reason, counted
        "lost_never_detected": len(missed),
        # their channel power (dB re the average): a deep fade over the preamble, or the receiver
        "never_detected_channel_db": sorted(round(g, 1) for g in gains.values() if g is not None),
        "explained_by_fault": len(missed & hits),
        "unexplained": len(missed - hits),
        "header_errors": s["header_errors"], "crc_errors": s["crc_errors"], "flagged": s["flagged"],
        "unmatched": s["unmatched"], "evicted": s["evicted"],
        "estimator_fallback_frames": link.est.stats()["fallback"],
        "sync": link.sync.stats(),
        "rss_before_mb": round(rss_before, 1), "rss_start_mb": round(rss_start, 1),
        "rss_end_mb": round(rss_end, 1), "rss_peak_mb": round(rss_peak or rss_end, 1),
        "rss_drift_pct": round(100.0 * (rss_end - rss_start) / rss_start, 2),
        "warmup_s": warmup_s, "reports": reports,
    }
    if gap is not None:
        out.update(gap.stats())
    if faulty is not None:
        out.update(inference_calls=faulty.calls, inference_raised=faulty.raised)
    progress(summary_line(out))
    return out


def _report(link, t: float, rss: float) -> dict:
    s = link.stats.snapshot()
    failed = s["header_errors"] + s["crc_errors"] + s["flagged"]
    return {"t_s": round(t, 1), "frames_sent": s["frames_sent"] or 0, "frames_ok": s["frames_ok"],
            "failed_reported": failed, "never_detected": s["frames_missed"],
            # sent, not yet through the receiver (or lost without a report: counted at the end)
            "in_flight": max(0, (s["frames_sent"] or 0) - s["frames_ok"] - failed - s["frames_missed"]),
            "per_so_far": s["per"], "fallback": link.est.stats()["fallback"], "rss_mb": round(rss, 1),
            # messages waiting at the scorer: a backlog here would grow memory, not a leak
            "queued_msgs": link.stats.queued(), "heap_mb": heap_mb(), "py_objects": len(gc.get_objects())}


def _line(r: dict) -> str:
    return (f"  t {r['t_s']:7.1f} s  sent {r['frames_sent']} ok {r['frames_ok']} failed (reported) "
            f"{r['failed_reported']} never detected {r['never_detected']} in flight {r['in_flight']} "
            f"fallback {r['fallback']} queued msgs {r['queued_msgs']} RSS {r['rss_mb']:.1f} MB{_heap(r)} "
            f"Python objects {r['py_objects']}")


def _heap(r: dict) -> str:
    h = r.get("heap_mb")
    return f" (C heap in use {h['in_use']:.1f} MB, free in arenas {h['free']:.1f} MB)" if h else ""


def summary_line(o: dict) -> str:
    f = (lambda v, fmt: "-" if v is None else format(v, fmt))
    return (f"soak {o['minutes']:g} min ({o['wall_s']:.0f} s): sent {o['frames_sent']} ok {o['frames_ok']} "
            f"PER {f(o['per'], '.2e')} lost {o['frames_lost']} (reported by decoder {o['lost_reported_by_decoder']}, "
            f"never detected {o['lost_never_detected']}: explained by fault {o['explained_by_fault']}, "
            f"unexplained {o['unexplained']}{_faded(o)}); {o['frames_per_s']} frames/s; RSS start {o['rss_start_mb']} MB "
            f"-> end {o['rss_end_mb']} MB ({o['rss_drift_pct']:+.2f} %), peak {o['rss_peak_mb']} MB")


def _faded(o: dict) -> str:
    g = o.get("never_detected_channel_db")
    return f"; channel of the never-detected frames {', '.join(f'{v:+.1f}' for v in g)} dB" if g else ""
