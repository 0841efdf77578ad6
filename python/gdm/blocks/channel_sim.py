"""channel_sim: n_tx complex streams -> n_rx complex streams through a simulated fading channel."""
from __future__ import annotations

import numpy as np
import pmt
from gnuradio import gr

from ..sim.channel import StreamChannel
from ._common import TX_FRAME_TAG, check_ports, from_pmt, make_spec, subscribed, to_pmt


class channel_sim(gr.sync_block):
    """TDL-A..E or flat fading with delay spread, Doppler, antenna correlation, CFO, timing
    offset and AWGN at ``snr_db`` per resource element (None/NaN: no noise). ``snr_db`` and
    ``cfo_hz`` can be changed while running. For each ``gdm_tx_frame`` tag it publishes the true
    grid channel on ``truth`` as {seq, arrival (output sample of the preamble start), cfo_hz, H}
    so link_stats can measure NMSE in the live link."""

    def __init__(self, preset="nr72", n_tx=1, n_rx=2, profile="TDL-A", delay_spread=30e-9,
                 doppler=0.0, snr_db=20.0, cfo_hz=0.0, timing_offset=0.0, rx_corr=0.0,
                 seed=0, publish_truth=True):
        check_ports("channel_sim", n_rx, n_tx)
        self.spec = make_spec(preset, n_tx)
        gr.sync_block.__init__(self, "gdm_channel_sim", [np.complex64] * int(n_tx), [np.complex64] * int(n_rx))
        self.ch = StreamChannel(int(n_tx), int(n_rx), self.spec.sample_rate, profile, float(delay_spread),
                                float(doppler), self._snr(snr_db), float(cfo_hz), float(timing_offset),
                                float(rx_corr), seed=int(seed))
        self.publish_truth = bool(publish_truth)
        self.message_port_register_out(pmt.intern("truth"))

    @staticmethod
    def _snr(snr_db):
        return None if snr_db is None or np.isnan(float(snr_db)) else float(snr_db)

    def set_snr_db(self, snr_db):
        self.ch.set_snr(self._snr(snr_db))

    def set_cfo_hz(self, cfo_hz):
        self.ch.set_cfo(float(cfo_hz))

    def work(self, input_items, output_items):
        n = len(output_items[0])
        y = self.ch.process(np.stack([np.asarray(x[:n]) for x in input_items]))
        for i, out in enumerate(output_items):
            out[:] = y[i]
        if self.publish_truth and subscribed(self, "truth"):
            base = self.nitems_read(0)
            for t in self.get_tags_in_window(0, 0, n, TX_FRAME_TAG):
                info = from_pmt(t.value)
                H = self.ch.frame_truth(self.spec, int(t.offset))
                self.message_port_pub(pmt.intern("truth"), to_pmt({
                    "seq": int(info["seq"]), "arrival": int(t.offset) + self.ch.latency,
                    "cfo_hz": self.ch.cfo_hz, "shape": list(H.shape), "H": H}))
            del base
        return n
