"""Adaptation while the receiver runs (the channel_estimator block's adapt mode), without gnuradio.

``OnlineAdapter.collect(Y, noise_var)`` keeps received grids until ``frames`` are there, then a
background thread adapts (``adapt.adapt``: fit, guard on the last ``holdout`` of them), writes the
adapted model and builds a new estimator from it. The receiver never waits: it keeps estimating
with its current model and calls ``take_ready()`` between batches, which hands over the new
estimator exactly once (None until then, and never when the guard rejected the adaptation).
``state``: idle, collecting, adapting, ready, switched, rejected or failed.
"""
from __future__ import annotations

import logging
import os
import threading
import time
from pathlib import Path
from typing import Callable

import numpy as np

from ..frame import FrameSpec

log = logging.getLogger("gnuradio.gdm.adaptation")


def default_out(spec: FrameSpec) -> Path:
    from ..estimation.lmmse import cache_dir

    return cache_dir() / "adapted" / f"gdm_adapted_{spec.name}_{time.strftime('%Y%m%dT%H%M%S')}_{os.getpid()}.onnx"


class OnlineAdapter:
    def __init__(self, spec: FrameSpec, n_rx: int, frames: int = 200, out: str | os.PathLike | None = None,
                 model=None, holdout: float = 0.25, make_estimator: Callable[[Path], object] | None = None,
                 source: dict | None = None):
        if int(frames) < 2:
            raise ValueError(f"adapt_frames must be at least 2 (some are held out for the guard), got {frames}")
        self.spec, self.n_rx, self.frames = spec, int(n_rx), int(frames)
        self.out, self.model, self.holdout = out, model, float(holdout)
        self.make_estimator = make_estimator
        self.source = source or {"kind": "stream"}
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self.state = "idle"
        self.summary: dict = {}
        self.start()

    # ---- receiver side (work thread) ---------------------------------------------------------
    def start(self) -> None:
        """Begin a new collection (after a switch, a rejection or a failure)."""
        with self._lock:
            if self.state == "adapting":
                return
            self._Y, self._nv = [], []
            self._n = 0
            self._ready = None
            self.state = "collecting"

    def stop(self) -> None:
        with self._lock:
            if self.state == "collecting":
                self.state = "idle"

    def collect(self, Y: np.ndarray, noise_var: np.ndarray) -> None:
        """Keep frames (copies) while collecting; start adapting once there are enough."""
        with self._lock:
            if self.state != "collecting" or len(Y) == 0:
                return
            take = min(self.frames - self._n, len(Y))
            self._Y.append(np.array(Y[:take], np.complex64))
            self._nv.append(np.array(noise_var[:take], float))
            self._n += take
            if self._n < self.frames:
                return
            self.state = "adapting"
            Ys, nvs = np.concatenate(self._Y), np.concatenate(self._nv)
            self._Y, self._nv = [], []
        self._thread = threading.Thread(target=self._run, args=(Ys, nvs), name="gdm-adapt", daemon=True)
        self._thread.start()

    def take_ready(self):
        """(estimator, summary) of a finished, accepted adaptation, once; else None."""
        with self._lock:
            if self.state != "ready":
                return None
            ready, self._ready = self._ready, None
            self.state = "switched"
            return ready

    def wait(self, timeout: float | None = None) -> str:
        t = self._thread
        if t is not None:
            t.join(timeout)
        return self.state

    # ---- background thread -------------------------------------------------------------------
    def _run(self, Y, nv) -> None:
        from . import adapt as ad
        from .observations import from_grids

        t0 = time.perf_counter()
        try:
            obs = from_grids(Y, nv, self.spec, {**self.source, "frames_collected": int(len(Y))})
            result = ad.adapt(obs, self.model, self.holdout)
            summary = result.summary()
            if not result.accepted:
                g = result.guard.to_dict()
                log.warning("online adaptation rejected by the guard (held-out risk adapted %.2f dB vs shipped "
                            "%.2f dB); the current model stays", g["risk_adapted_db"], g["risk_shipped_db"])
                with self._lock:
                    self.summary, self.state = summary, "rejected"
                return
            path = ad.export(result, self.out or default_out(self.spec))
            est = self.make_estimator(path) if self.make_estimator else None
            summary["model"] = str(path)
            summary["seconds"]["to_estimator"] = round(time.perf_counter() - t0, 3)
            log.info("online adaptation accepted (%s); switching to %s between frames", summary["guard"]["gain_db"], path)
            with self._lock:
                self.summary, self._ready, self.state = summary, (est, summary), "ready"
        except Exception as e:  # noqa: BLE001 - adaptation must never stop the receiver
            log.warning("online adaptation failed (%s: %s); the current model stays", type(e).__name__, e)
            with self._lock:
                self.summary, self.state = {"error": f"{type(e).__name__}: {e}"}, "failed"

    def status(self) -> dict:
        with self._lock:
            return {"state": self.state, "collected": self._n, "frames": self.frames, **self.summary}
