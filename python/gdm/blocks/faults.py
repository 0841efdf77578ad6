"""Fault injection for reliability runs (`gr-gdm faults`, `gr-gdm soak --fault`, tests):
- sample_gap: a source that drops samples now and then, like a radio's overflow ('O');
- stall_sink: a stream sink that blocks for a while (a slow disk or network consumer);
- pdu_stall_sink: a payload consumer whose handler blocks for a while;
- FaultyCall / inject_estimator_faults: an estimator whose inference raises or returns NaN.
"""
from __future__ import annotations

import collections
import threading
import time

import numpy as np
import pmt
from gnuradio import gr

from ._common import TX_FRAME_TAG, from_pmt, log, make_spec, to_pmt

GAP_TAG = pmt.intern("gdm_gap")


class sample_gap(gr.basic_block):
    """n_ch streams in, the same streams out with ``length`` samples removed from every channel
    every ``period`` samples (the first gap at ``first``, default one period in; period 0 = no
    gaps). Each gap is announced as a radio would after an overflow: tag ``gdm_gap`` {dropped}
    on the first output sample after it, a message on ``gaps`` {at (output sample), dropped,
    at_in (input sample)}, and a log line. Frames whose ``gdm_tx_frame`` tags (from ofdm_tx
    through channel_sim) show them overlapping a gap, or starting within one frame after it
    (the receiver resynchronises there), are listed in ``hit_seqs``."""

    def __init__(self, n_ch=2, preset="nr72", period=0, length=0, first=None):
        gr.basic_block.__init__(self, "gdm_sample_gap", [np.complex64] * int(n_ch), [np.complex64] * int(n_ch))
        if period and not 0 < length < period:
            raise ValueError(f"sample_gap: need 0 < length < period, got length={length}, period={period}")
        self.set_tag_propagation_policy(gr.TPP_DONT)
        self.spec = make_spec(preset)
        self.period, self.length = int(period), int(length)
        self.next_gap = int(first if first is not None else period) if period else None
        self.gaps = self.dropped = 0
        self.hit_seqs: collections.deque = collections.deque(maxlen=65536)
        self.hit_count = 0
        self._recent: collections.deque = collections.deque(maxlen=256)  # (input offset, seq)
        self._open: list[tuple[int, int, set]] = []  # gap spans [lo, hi) collecting frame starts
        self.message_port_register_out(pmt.intern("gaps"))

    def general_work(self, input_items, output_items):
        n = min(min(len(x) for x in input_items), len(output_items[0]))
        r0 = self.nitems_read(0)
        for t in self.get_tags_in_window(0, 0, n, TX_FRAME_TAG):
            self._recent.append((int(t.offset), int(from_pmt(t.value)["seq"])))
        keep = np.ones(n, bool)
        w0 = self.nitems_written(0)
        g = self.next_gap
        while g is not None and g < r0 + n:
            lo, hi = max(g, r0), min(g + self.length, r0 + n)
            keep[lo - r0:hi - r0] = False
            if lo == g:  # the gap starts in this call: announce it
                at = w0 + int(keep[:lo - r0].sum())
                self._announce(g, at)
            if g + self.length > r0 + n:
                break  # continues in the next call
            g = self.next_gap = g + self.period
        k = int(keep.sum())
        for x, y in zip(input_items, output_items):
            y[:k] = np.asarray(x[:n])[keep]
        self.dropped += n - k
        self._collect_hits(r0 + n)
        self.consume_each(n)
        return k

    def _announce(self, at_in: int, at_out: int) -> None:
        self.gaps += 1
        self.add_item_tag(0, at_out, GAP_TAG, to_pmt({"dropped": self.length}))
        self.message_port_pub(pmt.intern("gaps"), to_pmt({"at": at_out, "dropped": self.length, "at_in": at_in}))
        log.warning("sample_gap: dropped %d samples at input sample %d (output %d)", self.length, at_in, at_out)
        margin = self.spec.symbol_len
        self._open.append((at_in - self.spec.frame_len - margin,
                           at_in + self.length + self.spec.frame_len + margin, set()))

    def _collect_hits(self, read_to: int) -> None:
        still = []
        for lo, hi, seen in self._open:
            for off, seq in self._recent:
                if lo <= off < hi and seq not in seen:
                    seen.add(seq)
                    self.hit_seqs.append(seq)
                    self.hit_count += 1
            if read_to < hi:
                still.append((lo, hi, seen))
        self._open = still

    def stats(self) -> dict:
        return dict(gaps=self.gaps, samples_dropped=self.dropped, frames_hit=self.hit_count)


class stall_sink(gr.sync_block):
    """A stream sink (any item type) that blocks ``seconds`` once ``after`` items have arrived,
    like a disk or network sink that stalls. Upstream waits (GNU Radio back-pressure); nothing
    is dropped. ``stalled_s`` says how long it blocked."""

    def __init__(self, dtype=np.complex64, vlen=1, after=0, seconds=1.0):
        gr.sync_block.__init__(self, "gdm_stall_sink", [(dtype, int(vlen)) if vlen > 1 else dtype], None)
        self.after, self.seconds = int(after), float(seconds)
        self.items, self.stalled_s, self._done = 0, 0.0, False

    def work(self, input_items, output_items):
        n = len(input_items[0])
        self.items += n
        if not self._done and self.items >= self.after:
            self._done = True
            t0 = time.monotonic()
            time.sleep(self.seconds)
            self.stalled_s = time.monotonic() - t0
        return n


class pdu_stall_sink(gr.basic_block):
    """A payload consumer (message port ``in``) whose handler blocks ``seconds`` on message
    number ``after``; counts what it got. GNU Radio queues the messages meanwhile."""

    def __init__(self, after=0, seconds=1.0):
        gr.basic_block.__init__(self, "gdm_pdu_stall_sink", None, None)
        self.after, self.seconds = int(after), float(seconds)
        self.received, self.stalled_s = 0, 0.0
        self.message_port_register_in(pmt.intern("in"))
        self.set_msg_handler(pmt.intern("in"), self._on)

    def _on(self, msg):
        self.received += 1
        if self.received == self.after:
            t0 = time.monotonic()
            time.sleep(self.seconds)
            self.stalled_s = time.monotonic() - t0

    def drained(self) -> int:
        while self.nmsgs(pmt.intern("in")):
            self._on(self.delete_head_nowait(pmt.intern("in")))
        return self.received


class FaultyCall:
    """Wraps an inference call: every ``raise_every``-th call raises, every ``nan_every``-th
    call returns its result with the first item (frame or link) set to NaN. 0 = never."""

    def __init__(self, fn, raise_every: int = 0, nan_every: int = 0):
        self.fn, self.raise_every, self.nan_every = fn, int(raise_every), int(nan_every)
        self.calls = self.raised = self.nans = 0
        self._lock = threading.Lock()

    def __call__(self, *args, **kwargs):
        with self._lock:
            self.calls += 1
            n = self.calls
        if self.raise_every and n % self.raise_every == 0:
            self.raised += 1
            raise RuntimeError(f"injected fault: inference call {n} failed")
        out = self.fn(*args, **kwargs)
        if self.nan_every and n % self.nan_every == 0:
            out = np.array(out, copy=True)
            out[0] = np.nan
            self.nans += 1
        return out


def inject_estimator_faults(est_block, raise_every: int = 0, nan_every: int = 0) -> FaultyCall:
    """Make the running method of a channel_estimator (or ofdm_receiver) block faulty. Diffusion: its network
    calls (the estimator falls back per link to the bank posterior, label 'gmm_lmmse'); any
    other method: the whole estimate() call (the block falls back to ls_interp)."""
    core = est_block._cache[est_block.method]
    if getattr(core, "model", None) is not None:
        f = FaultyCall(core.model.run, raise_every, nan_every)
        core.model.run = f
    else:
        f = FaultyCall(core.estimate, raise_every, nan_every)
        core.estimate = f
    return f
