"""frame_decoder: equalized symbols + noise variance -> soft demap, CRC, payload PDUs, counters."""
from __future__ import annotations

import hashlib

import numpy as np
import pmt
from gnuradio import gr

from ..ofdm.transceiver import decode_batch
from ._common import check_ports, equalized_streams, frame_batches, frame_tags, log, make_spec, pdu, subscribed, to_pmt


class FrameReports:
    """Counters and the ``pdus`` / ``frames`` messages of a block that decodes frames. Call
    ``_init_reports()`` in ``__init__``, ``_publish(meta, decoded)`` per frame (decoded None:
    flagged non-finite, reported as lost without decoding)."""

    META_KEYS = ("index", "sample_offset", "cfo_hz", "snr_db")  # of the gdm_frame tag, in every report

    @classmethod
    def _frame_meta(cls, tag: dict) -> dict:
        return {k: tag.get(k) for k in cls.META_KEYS}

    def _init_reports(self) -> None:
        self.counters = dict(frames=0, ok=0, header_errors=0, crc_errors=0, flagged=0, untagged=0)
        self.message_port_register_out(pmt.intern("pdus"))
        self.message_port_register_out(pmt.intern("frames"))

    def _publish(self, meta: dict, d) -> None:
        c = self.counters
        c["frames"] += 1
        if d is None:
            c["flagged"] += 1
            self._report({**meta, "header_ok": False, "crc_ok": False, "reason": "non-finite input"})
            return
        c["ok"] += d.crc_ok
        c["header_errors"] += not d.header_ok
        c["crc_errors"] += d.header_ok and not d.crc_ok
        meta.update(seq=d.seq, header_ok=d.header_ok, crc_ok=d.crc_ok, evm_db=d.evm_db, reason=d.reason)
        if d.crc_ok:
            # The digest as 32 bytes (a u8vector): a hex string would become a PMT symbol, and
            # GNU Radio keeps every symbol ever made (~170 B per frame for the life of the process).
            meta["payload_sha256"] = hashlib.sha256(d.payload).digest()
            self.message_port_pub(pmt.intern("pdus"), pdu({k: v for k, v in meta.items() if v is not None},
                                                            d.payload))
        self._report(meta, d)

    def _report(self, meta, d=None):
        """The ``frames`` message (with the decoded bits of ``d``), built only when subscribed."""
        if not subscribed(self, "frames"):
            return
        if d is not None:
            meta = {**meta, "bits": np.packbits(d.bits), "raw_bits": np.packbits(d.raw_bits)}
        self.message_port_pub(pmt.intern("frames"), to_pmt({k: v for k, v in meta.items() if v is not None}))

    def _log_counters(self, who: str) -> None:
        c = self.counters
        log.info("%s: %d frames, %d ok, %d header errors, %d CRC errors, %d flagged",
                 who, c["frames"], c["ok"], c["header_errors"], c["crc_errors"], c["flagged"])


class frame_decoder(FrameReports, gr.sync_block):
    """Inputs: n_tx equalized streams (vlen n_occ) and the noise-variance stream (vlen
    n_tx*n_occ) of mimo_equalizer. Max-log soft demapping, hard decisions, header + CRC-32
    check. Good payloads leave on ``pdus`` (metadata: seq, frame index, evm_db, snr_db);
    every frame, good or bad, is reported on ``frames`` for link_stats. Counters: frames,
    ok, header_errors, crc_errors, flagged (non-finite input)."""

    def __init__(self, preset="nr72", n_tx=1, modulation="16qam", fec=""):
        check_ports("frame_decoder", 1, n_tx)
        self.spec = make_spec(preset, n_tx, modulation, fec)
        self.n_tx = int(n_tx)
        K = self.spec.n_occ
        gr.sync_block.__init__(self, "gdm_frame_decoder",
                               [(np.complex64, K)] * self.n_tx + [(np.float32, self.n_tx * K)], None)
        frame_batches(self, self.spec, has_outputs=False)
        self._init_reports()
        if self.spec.fec != "none":
            from ..ofdm.fec import warm_up
            warm_up(self.spec.bits_per_frame)

    def work(self, input_items, output_items):
        S, spec = self.spec.n_sym, self.spec
        n = len(input_items[0]) // S * S
        B = n // S
        if B == 0:
            return 0
        X, V = equalized_streams(input_items, self.n_tx, spec, n)
        tags = frame_tags(self, 0, 0, n)
        metas, flagged = [], np.zeros(B, bool)
        for b in range(B):
            t = tags.get(b * S)
            if t is None:
                self.counters["untagged"] += 1
                t = {}
            flagged[b] = bool(t.get("nonfinite"))
            metas.append(self._frame_meta(t))
        decoded = iter(decode_batch(X[~flagged], V[~flagged], spec)) if (~flagged).any() else iter(())
        for b, meta in enumerate(metas):
            self._publish(meta, None if flagged[b] else next(decoded))
        return n

    def stop(self):
        self._log_counters("frame_decoder")
        return True

    def stats(self) -> dict:
        return dict(self.counters)
