"""link_stats: BER / PER / EVM / NMSE of a running link, printed and published as a message."""
from __future__ import annotations

import functools
import threading
import time

import pmt
from gnuradio import gr

from ..metrics.link import LinkScorer
from ._common import drain_messages, from_pmt, make_spec, to_pmt


class link_stats(gr.basic_block):
    """Message ports in: ``tx`` (ofdm_tx), ``truth`` (channel_sim, optional), ``csi``
    (channel_estimator, optional), ``frames`` (frame_decoder), ``gaps`` (samples a source
    dropped, {at, dropped}: e.g. faults.sample_gap; optional). Out: ``stats`` (a dict, every
    ``print_interval`` seconds and at stop). PER counts every transmitted frame not decoded with
    a good CRC; BER is over all bits of detected frames; NMSE compares each frame's estimate with
    the simulator's truth aligned to the receiver's timing and CFO."""

    def __init__(self, preset="nr72", n_tx=1, modulation="16qam", print_interval=0.0, label="", fec=""):
        gr.basic_block.__init__(self, "gdm_link_stats", None, None)
        self.spec = make_spec(preset, n_tx, modulation, fec)
        self.scorer = LinkScorer(self.spec)
        self.print_interval, self.label = float(print_interval), label
        self.stop_timeout = 5.0
        self._lock = threading.Lock()
        self._last = time.monotonic()
        self._handlers = (("tx", self._tx), ("truth", self._truth), ("csi", self._csi), ("gaps", self._gap),
                          ("frames", self._rx))
        for port, fn in self._handlers:
            self.message_port_register_in(pmt.intern(port))
            self.set_msg_handler(pmt.intern(port), fn)
        self.message_port_register_out(pmt.intern("stats"))

    def _tx(self, msg):
        d = from_pmt(msg)
        with self._lock:
            self.scorer.add_tx(d["seq"], bytes(d["payload"]))

    def _truth(self, msg):
        d = from_pmt(msg)
        with self._lock:
            self.scorer.add_truth(d["seq"], d["arrival"], d["cfo_hz"], d["H"].reshape(d["shape"]))

    def _csi(self, msg):
        d = from_pmt(msg)
        with self._lock:
            self.scorer.add_csi(d["index"], d["H"].reshape(-1, self.spec.n_tx, self.spec.n_sym, self.spec.n_occ))

    def _gap(self, msg):
        d = from_pmt(msg)
        with self._lock:
            self.scorer.add_gap(d["at"], d["dropped"])

    def _rx(self, msg):
        d = from_pmt(msg)
        with self._lock:
            self.scorer.add_rx(d)
        if self.print_interval > 0 and time.monotonic() - self._last >= self.print_interval:
            self._last = time.monotonic()
            self._publish(print_it=True)

    def set_reference(self, seed: int, n_bytes: int, frames: int) -> None:
        """Payloads known in advance (ofdm_tx 'random' mode): frames 0..frames-1 count as sent."""
        with self._lock:
            self.scorer.set_reference(functools.partial(_seeded_payload, n_bytes=int(n_bytes), seed=int(seed)),
                                      int(frames))

    def drain(self) -> None:
        """Handle messages still queued. A message-only block's thread can end before the last
        decoder reports arrive; draining after the run makes the counts complete."""
        for port, fn in self._handlers:
            p = pmt.intern(port)
            while self.nmsgs(p):
                msg = self.delete_head_nowait(p)
                if msg is None:
                    break
                fn(msg)

    def queued(self) -> int:
        """Messages waiting in this block's input queues."""
        return sum(self.nmsgs(pmt.intern(port)) for port, _ in self._handlers)

    def stats(self) -> dict:
        self.drain()
        with self._lock:
            return self.scorer.summary()

    def snapshot(self) -> dict:
        """The summary so far, safe to call from another thread while the flowgraph runs
        (messages still queued are left to the block's own thread)."""
        with self._lock:
            return self.scorer.summary()

    def _publish(self, print_it=False):
        s = self.stats()
        if print_it:
            print(format_stats(s, self.label), flush=True)
        self.message_port_pub(pmt.intern("stats"), to_pmt({k: v for k, v in s.items() if v is not None}))

    def stop(self):
        drain_messages(self, self._handlers, timeout=self.stop_timeout)
        self._publish(print_it=self.print_interval > 0)
        return True


def _seeded_payload(seq: int, n_bytes: int, seed: int) -> bytes:
    from ..ofdm.transceiver import random_payload
    return random_payload(seq, n_bytes, seed)


def format_stats(s: dict, label: str = "") -> str:
    f = (lambda v, fmt: "-" if v is None else format(v, fmt))
    return (f"{label + ': ' if label else ''}sent {f(s['frames_sent'], 'd')} ok {s['frames_ok']} "
            f"lost {f(s['frames_lost'], 'd')} PER {f(s['per'], '.4f')} BER {f(s['ber'], '.2e')} "
            f"EVM {f(s['evm_db'], '.1f')} dB NMSE {f(s['nmse_db'], '.1f')} dB")
