"""stock_ofdm_rx: receiver for GNU Radio's stock digital.ofdm_tx on n_rx antennas -> payload PDUs."""
from __future__ import annotations

import numpy as np
import pmt
from gnuradio import gr

from ..ofdm.stock import StockOfdmReceiver
from ._common import log, pdu

_META = ("header_number", "sample_offset", "cfo_hz", "snr_db", "evm_db", "n_sym")


class stock_ofdm_rx(gr.sync_block):
    """Sink with n_rx complex inputs (one per antenna) that decodes bursts of the stock
    ``digital.ofdm_tx`` (default carriers, pilots and sync words; BPSK header; payload
    bpsk/qpsk/8psk; CRC-32; optional scrambling, matching the transmitter's scramble_bits).
    Good payloads (CRC-32 checked, CRC stripped) leave on ``pdus`` with metadata {header_number,
    sample_offset, cfo_hz, snr_db, evm_db, n_sym, crc_ok}. ``stats()``: the receiver's counters
    (bursts_detected, detections_rejected, header_crc_failures, payload_crc_failures,
    packets_ok, nonfinite_samples, bursts_dropped_nonfinite), logged at stop."""

    def __init__(self, n_rx=1, fft_len=64, cp_len=16, payload_mod="bpsk", scramble_bits=False,
                 sample_rate=1.0):
        if int(n_rx) < 1:
            raise ValueError(f"stock_ofdm_rx: n_rx must be >= 1, got {n_rx}")
        self.n_rx = int(n_rx)
        self.rx = StockOfdmReceiver(n_rx=self.n_rx, fft_len=int(fft_len), cp_len=int(cp_len),
                                    payload_mod=str(payload_mod), scramble_bits=bool(scramble_bits),
                                    sample_rate=float(sample_rate))
        gr.sync_block.__init__(self, "gdm_stock_ofdm_rx", [np.complex64] * self.n_rx, None)
        self.message_port_register_out(pmt.intern("pdus"))
        self.pdus_sent = 0

    def work(self, input_items, output_items):
        n = min(len(x) for x in input_items)
        if n:
            self.rx.push(np.stack([np.asarray(x[:n]) for x in input_items]))
            self._publish(self.rx.pop_packets())
        return n

    def _publish(self, packets):
        for p in packets:
            if not p["crc_ok"]:
                continue
            meta = {k: p[k] for k in _META}
            meta["crc_ok"] = True
            self.message_port_pub(pmt.intern("pdus"), pdu(meta, p["payload"]))
            self.pdus_sent += 1

    def stop(self):
        # A burst ending with the stream is decoded in work(); flushing only completes the search.
        self._publish(self.rx.flush())
        c = self.rx.stats()
        log.info("stock_ofdm_rx: %d bursts, %d packets ok, %d header CRC failures, %d payload CRC "
                 "failures, %d detections rejected", c["bursts_detected"], c["packets_ok"],
                 c["header_crc_failures"], c["payload_crc_failures"], c["detections_rejected"])
        return True

    def stats(self) -> dict:
        return {**self.rx.stats(), "pdus": self.pdus_sent}
