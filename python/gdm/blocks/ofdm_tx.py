"""ofdm_tx: payload PDUs or random payloads -> n_tx complex sample streams of gr-gdm frames."""
from __future__ import annotations

import collections
import threading

import numpy as np
import pmt
from gnuradio import gr

from ..logutil import warn_throttled
from ..ofdm import framing
from ..ofdm.transceiver import random_payload, transmit
from ._common import TX_FRAME_TAG, log, make_spec, to_pmt


class ofdm_tx(gr.sync_block):
    """Frames back to back (``gap`` zero samples between them). mode 'random': seeded random
    payloads of ``payload_len`` bytes (0 = frame capacity); mode 'pdu': payloads from the ``pdus``
    message port, silence while none is queued. Stops after ``n_frames`` frames (0 = never) and
    then sends one frame length of silence so the receiver sees the last frame whole.
    Each frame start carries a ``gdm_tx_frame`` tag {seq, n_bytes}; every frame is also
    published on ``tx`` as {seq, payload} so link_stats can score it."""

    def __init__(self, preset="nr72", n_tx=1, modulation="16qam", mode="random", payload_len=0,
                 n_frames=0, gap=0, seed=0, batch=16, fec=""):
        self.spec = make_spec(preset, n_tx, modulation, fec)
        if mode not in ("random", "pdu"):
            raise ValueError(f"ofdm_tx: mode must be 'random' or 'pdu', got {mode!r}")
        cap = framing.max_payload_bytes(self.spec.info_bits_per_frame)
        if not 0 <= payload_len <= cap:
            raise ValueError(f"ofdm_tx: payload_len must be in [0, {cap}] bytes for {self.spec.describe()}")
        if gap < 0 or n_frames < 0:
            raise ValueError("ofdm_tx: gap and n_frames must be >= 0")
        gr.sync_block.__init__(self, "gdm_ofdm_tx", None, [np.complex64] * self.spec.n_tx)
        self.mode, self.payload_len = mode, int(payload_len) or cap
        self.n_frames, self.gap, self.seed, self.batch = int(n_frames), int(gap), int(seed), int(batch)
        self._pending = np.zeros((self.spec.n_tx, 0), np.complex64)
        self._pending_tags: list[tuple[int, dict, bytes]] = []  # (offset in pending, tag, payload)
        self._queue: collections.deque = collections.deque()
        self._lock = threading.Lock()
        self.seq = 0
        self._tail_sent = False
        self.message_port_register_in(pmt.intern("pdus"))
        self.set_msg_handler(pmt.intern("pdus"), self._on_pdu)
        self.message_port_register_out(pmt.intern("tx"))

    def _on_pdu(self, msg):
        data = pmt.cdr(msg) if pmt.is_pair(msg) else msg
        if not pmt.is_u8vector(data):
            warn_throttled(log, "ofdm_tx.not_u8", "ofdm_tx: dropped a PDU whose payload is not a u8vector")
            return
        payload = bytes(pmt.u8vector_elements(data))
        cap = framing.max_payload_bytes(self.spec.info_bits_per_frame)
        if len(payload) > cap:
            warn_throttled(log, "ofdm_tx.too_long",
                           "ofdm_tx: dropped a %d-byte PDU, frame capacity is %d bytes", len(payload), cap)
            return
        with self._lock:
            self._queue.append(payload)

    def finish(self) -> None:
        """End a running transmitter cleanly (from any thread): frames already generated go out,
        then the usual frame of silence, then the stream ends."""
        self.n_frames = max(self.seq, 1)

    def _done(self) -> bool:
        return self.n_frames and self.seq >= self.n_frames

    def _refill(self, want: int) -> None:
        spec = self.spec
        payloads = []
        while len(payloads) < self.batch and not (self.n_frames and self.seq + len(payloads) >= self.n_frames):
            if self.mode == "random":
                payloads.append(random_payload(self.seq + len(payloads), self.payload_len, self.seed))
            else:
                with self._lock:
                    if not self._queue:
                        break
                    payloads.append(self._queue.popleft())
        if not payloads:
            if self._done() and not self._tail_sent:
                self._tail_sent = True
                self._append(np.zeros((spec.n_tx, spec.frame_len), np.complex64))
            elif self.mode == "pdu" and not self._done():
                self._append(np.zeros((spec.n_tx, max(want, spec.symbol_len)), np.complex64))
            return
        seqs = list(range(self.seq, self.seq + len(payloads)))
        x, _, _ = transmit(payloads, seqs, spec)
        per = spec.frame_len + self.gap
        if self.gap:
            x = np.concatenate([x.reshape(spec.n_tx, len(payloads), spec.frame_len),
                                np.zeros((spec.n_tx, len(payloads), self.gap), np.complex64)], axis=2)
            x = x.reshape(spec.n_tx, -1)
        base = self._pending.shape[1]
        for i, (s, p) in enumerate(zip(seqs, payloads)):
            self._pending_tags.append((base + i * per, {"seq": s, "n_bytes": len(p)}, p))
        self._append(x)
        self.seq += len(payloads)

    def _append(self, x):
        self._pending = np.concatenate([self._pending, x], axis=1) if self._pending.size else x

    def work(self, input_items, output_items):
        n = len(output_items[0])
        if self._pending.shape[1] == 0:
            self._refill(n)
            if self._pending.shape[1] == 0:
                return -1 if self._done() else 0
        k = min(n, self._pending.shape[1])
        for i, out in enumerate(output_items):
            out[:k] = self._pending[i, :k]
        base = self.nitems_written(0)
        keep = []
        for off, tag, payload in self._pending_tags:
            if off < k:
                # Announce a frame when its first sample leaves, so live PER counts only frames
                # that are actually on their way.
                self.add_item_tag(0, base + off, TX_FRAME_TAG, to_pmt(tag))
                self.message_port_pub(pmt.intern("tx"), to_pmt({"seq": tag["seq"], "payload": payload}))
            else:
                keep.append((off - k, tag, payload))
        self._pending_tags = keep
        self._pending = self._pending[:, k:]
        return k
