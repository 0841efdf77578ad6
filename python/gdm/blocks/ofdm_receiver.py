"""ofdm_receiver: n_rx complex streams -> decoded payloads, the whole receive chain in one block."""
from __future__ import annotations

import collections
import concurrent.futures
import threading
import time

import numpy as np
import pmt
from gnuradio import gr

from ..ofdm.equalizer import METHODS as EQUALIZERS
from ..ofdm.receiver import receive
from ..ofdm.sync import FrameSynchronizer
from ._common import check_ports, log, make_spec, subscribed
from .channel_estimator import EstimatorMethods
from .frame_decoder import FrameReports

IDLE_S = 0.002  # a work() call that waited this long for input: the block keeps up with its source
HEAVY_METHODS = ("diffusion", "bank")  # estimators that take most of a frame's CPU: two workers


class ofdm_receiver(EstimatorMethods, FrameReports, gr.sync_block):
    """Sync/demod -> channel estimator -> equalizer -> decoder in one block, for headless
    receivers where throughput matters: the chain of separate blocks pays, per stage, a thread
    contending for Python's GIL, a copy through a GNU Radio buffer and a dict<->PMT conversion
    of every frame's tags; this block runs the same cores on batches of ``batch_frames`` frames
    (and what has arrived as soon as it has caught up with a live source; a finite
    stream's last partial batch at stop, shared among the workers); while backlogged, sync runs
    in the block's thread and the rest of the chain on ``workers`` threads (0: two for the
    diffusion and bank estimators and for two tx streams, one otherwise, chosen at start), one
    batch each (the first batches after start smaller, so the workers start sooner),
    publishing in frame order. Same estimator methods and options as
    channel_estimator (``set_method`` while running), same equalizers as mimo_equalizer, same
    messages as frame_decoder (``pdus``, ``frames``) and channel_estimator (``csi``); a frame whose
    estimate was replaced by the fallback says so in its ``frames`` report (``est_fallback``).
    Nothing in between is visible as a stream: use the separate blocks to plot or record grids,
    channel estimates or symbols, or to insert a symbol denoiser."""

    def __init__(self, preset="nr72", n_rx=2, n_tx=1, modulation="16qam", fec="", method="ls_interp",
                 equalizer="lmmse", model="", steps=-1, device="auto", threshold=0.12, batch_frames=32,
                 publish_csi=True, options=None, profile="TDL-A", delay_spread=30e-9, doppler=0.0,
                 workers=0):
        check_ports("ofdm_receiver", n_rx, n_tx)
        self._who = "ofdm_receiver"
        if equalizer not in EQUALIZERS:
            raise ValueError(f"ofdm_receiver: unknown equalizer {equalizer!r}; valid: {', '.join(EQUALIZERS)}")
        if int(batch_frames) < 1:
            raise ValueError(f"ofdm_receiver: batch_frames must be >= 1, got {batch_frames}")
        if int(workers) < 0:
            raise ValueError(f"ofdm_receiver: workers must be >= 0 (0: auto), got {workers}")
        self._workers_opt = int(workers)
        self.workers = 1
        self.spec = make_spec(preset, n_tx, modulation, fec)
        self.n_rx, self.n_tx = int(n_rx), int(n_tx)
        if self.n_rx < self.n_tx:
            raise ValueError(f"ofdm_receiver: need n_rx >= n_tx to separate streams, got {n_rx} x {n_tx}")
        gr.sync_block.__init__(self, "gdm_ofdm_receiver", [np.complex64] * self.n_rx, None)
        self.equalizer, self.publish_csi = str(equalizer), bool(publish_csi)
        self.sync = FrameSynchronizer(self.spec, self.n_rx, threshold=float(threshold))
        self._batch = int(batch_frames) * self.spec.frame_len
        self._target = self._batch  # this dispatch's batch: ramps up to _batch after each start
        self._pending = 0
        self._worker = None  # made at start(): a flowgraph can be stopped and started again
        self._inflight: collections.deque = collections.deque()
        self._last_published = None  # Event: the newest batch on the workers is published
        self._returned = time.monotonic()
        self._busy_at_return = False
        self.frames_at_stop = 0
        self._init_reports()
        self.message_port_register_out(pmt.intern("csi"))
        self._init_estimator(method, profile, delay_spread, doppler, options, model, steps, device)
        if self.spec.fec != "none":
            from ..ofdm.fec import warm_up
            warm_up(self.spec.bits_per_frame)

    def set_equalizer(self, equalizer: str) -> None:
        if equalizer not in EQUALIZERS:
            raise ValueError(f"ofdm_receiver: unknown equalizer {equalizer!r}; valid: {', '.join(EQUALIZERS)}")
        self.equalizer = str(equalizer)

    def work(self, input_items, output_items):
        n = min(len(x) for x in input_items)
        self.sync.push([x[:n] for x in input_items])
        self._pending += n
        # Batch while input keeps coming (a file, or a receiver falling behind). A call that had
        # to wait for its input means the block keeps up with its source: decode what is there
        # now, for low latency on a live radio. Not while a worker is still busy: then the wait
        # was for the GIL (a worker in Python code holds it up to the 5 ms switch interval), the
        # block is behind, and decoding here would stall the pipeline (measured: 1x2 diffusion
        # fell back to decoding 3-frame batches in this thread, no overlap left).
        # Nor when a batch was still on a worker at the last return: its end (publishing,
        # holding the GIL) can hold this thread back past IDLE_S with input waiting (measured,
        # 1x2 LS from a file: a fifth of the batches decoded here, the worker idle meanwhile).
        self._inflight_trim()
        waited = (time.monotonic() - self._returned > IDLE_S and not self._inflight
                  and not self._busy_at_return)
        if self._pending >= self._target or waited:
            self._pending = 0
            self._target = min(self._batch, 2 * self._target)
            frames = self.sync.pop_frames()
            # Backlogged: sync runs here and the rest of the chain on ``workers`` threads, one
            # batch each, overlapping where numpy, numba and onnxruntime release the GIL; each
            # batch publishes after the one before it, so messages stay in frame order (one
            # batch more than workers in flight at most). Keeping up: decode here, so each frame
            # is out before the next call, as a live receiver wants and as blocks that stop
            # with their source expect.
            while self._inflight and (waited or len(self._inflight) > self.workers):
                self._inflight.popleft().result()
            if waited:
                self._process(frames)
            elif frames:
                self._submit(frames)
        self._returned = time.monotonic()
        self._busy_at_return = bool(self._inflight)
        return n

    def _submit(self, frames) -> None:
        """A batch to the workers, published after the one submitted before it."""
        done = threading.Event()
        self._inflight.append(self._worker.submit(self._process, frames, self._last_published, done))
        self._last_published = done

    def _inflight_trim(self) -> None:
        """Forget finished batches at the head (their exceptions are raised here)."""
        while self._inflight and self._inflight[0].done():
            self._inflight.popleft().result()

    def start(self):
        # auto: a second worker pays where the chain after sync dominates (measured: 1x2
        # diffusion wall 2.25 -> 1.43 ms per frame; 2x2 LS, two streams to equalize and decode,
        # 1.70 -> 1.32); with a light one it only adds GIL contention (1x2 LS: 0.66 -> 0.75)
        self.workers = self._workers_opt or (2 if self.method in HEAVY_METHODS or self.n_tx > 1 else 1)
        self._worker = concurrent.futures.ThreadPoolExecutor(self.workers, thread_name_prefix="gdm_ofdm_receiver")
        self._last_published = None
        # the first batches are smaller (a quarter, a half, then whole): the workers start while
        # the block's thread still syncs the rest, instead of idling through a whole batch (1x2
        # diffusion, 400 frames: the first worker batch began 24 ms into a 460 ms run)
        self._target = max(self.spec.frame_len, self._batch // 4)
        self._returned = time.monotonic()  # the time before start is not a wait for input
        self._busy_at_return = False
        return True

    def _process(self, frames, after: threading.Event | None = None, done: threading.Event | None = None) -> None:
        """Receive a batch, then publish it once the batch before it (``after``) is published."""
        try:
            if not frames:
                return
            with self._lock:
                est = self._cache[self.method]
            results = receive(frames, self.spec, lambda Y, nv: self._estimate(est, Y, nv), self.equalizer)
            if after is not None:
                after.wait()
            csi = self.publish_csi and subscribed(self, "csi")
            for r in results:
                meta = self._frame_meta(r.frame.tag())
                if r.fallback:
                    meta["est_fallback"] = r.fallback
                if csi and r.H is not None:
                    self._publish_csi(r.frame.index, r.H)
                self._publish(meta, r.decoded)
        finally:
            if done is not None:
                done.set()

    def stop(self):
        # A finite stream's last partial batch, and its final frame, which is complete but lacks
        # the samples after it that the search needs (flush pads them with zeros). GNU Radio
        # does not tell a sink that its input has ended, so they are published here: link_stats
        # and gr-gdm's sinks drain their queues at stop and count them; a message block whose
        # thread has already ended (GNU Radio's message_debug) keeps them queued, unhandled.
        # They are shared among the workers, after the batches still in flight, in frame order
        # (decoded here in one piece they took the last 9 % of a 400-frame diffusion run alone).
        late = self.sync.pop_frames() + self.sync.flush()
        self.frames_at_stop = len(late)
        if late:
            log.info("ofdm_receiver: %d frame(s) at the end of the stream decoded at stop", len(late))
        k = -(-len(late) // self.workers)
        for i in range(0, len(late), k or 1):
            self._submit(late[i:i + k])
        while self._inflight:
            self._inflight.popleft().result()
        self._worker.shutdown()
        self._log_counters("ofdm_receiver")
        return True

    def stats(self) -> dict:
        s = self.sync
        return dict(self.counters, method=self.method, fallback=self.fallback_frames, at_stop=self.frames_at_stop,
                    sync=dict(frames=s.frames_emitted, rejected_detections=s.detections_rejected,
                              nonfinite_samples=s.nonfinite_samples))
