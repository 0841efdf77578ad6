"""channel_sim: n_tx complex streams -> n_rx complex streams through a simulated fading channel."""
from __future__ import annotations

import dataclasses

import numpy as np
import pmt
from gnuradio import gr

from ..sim.channel import StreamChannel
from ..sim.impairments import Impairments
from ._common import TX_FRAME_TAG, check_ports, from_pmt, make_spec, subscribed, to_pmt


class channel_sim(gr.sync_block):
    """TDL-A..E or flat fading with delay spread, Doppler, antenna correlation, CFO, timing
    offset and AWGN at ``snr_db`` per resource element (None/NaN: no noise), plus hardware
    impairments (sim/impairments.py): PA (rapp | saleh, back-off), phase noise (wiener | mask),
    IQ imbalance, b-bit ADC with AGC, CFO drift. ``snr_db``, ``cfo_hz`` and every impairment can
    be changed while running. For each ``gdm_tx_frame`` tag it publishes the true
    grid channel on ``truth`` as {seq, arrival (output sample of the preamble start), cfo_hz, H}
    so link_stats can measure NMSE in the live link."""

    def __init__(self, preset="nr72", n_tx=1, n_rx=2, profile="TDL-A", delay_spread=30e-9,
                 doppler=0.0, snr_db=20.0, cfo_hz=0.0, timing_offset=0.0, rx_corr=0.0,
                 seed=0, publish_truth=True, pa="none", pa_backoff_db=6.0, phase_noise="none",
                 pn_linewidth_hz=100.0, iq_gain_db=0.0, iq_phase_deg=0.0, adc_bits=0,
                 cfo_drift_hz_s=0.0):
        check_ports("channel_sim", n_rx, n_tx)
        self.spec = make_spec(preset, n_tx)
        gr.sync_block.__init__(self, "gdm_channel_sim", [np.complex64] * int(n_tx), [np.complex64] * int(n_rx))
        self.ch = StreamChannel(int(n_tx), int(n_rx), self.spec.sample_rate, profile, float(delay_spread),
                                float(doppler), self._snr(snr_db), float(cfo_hz), float(timing_offset),
                                float(rx_corr), seed=int(seed))
        self.publish_truth = bool(publish_truth)
        self.imp = Impairments(pa=pa, pa_backoff_db=float(pa_backoff_db), phase_noise=phase_noise,
                               pn_linewidth_hz=float(pn_linewidth_hz), iq_gain_db=float(iq_gain_db),
                               iq_phase_deg=float(iq_phase_deg), adc_bits=int(adc_bits),
                               cfo_drift_hz_s=float(cfo_drift_hz_s))
        self.ch.set_impairments(self.imp)
        self.message_port_register_out(pmt.intern("truth"))

    @staticmethod
    def _snr(snr_db):
        return None if snr_db is None or np.isnan(float(snr_db)) else float(snr_db)

    def set_snr_db(self, snr_db):
        self.ch.set_snr(self._snr(snr_db))

    def set_cfo_hz(self, cfo_hz):
        self.ch.set_cfo(float(cfo_hz))

    def set_impairments(self, **changes):
        """Change any impairment setting while running, e.g. set_impairments(pa_backoff_db=3)."""
        new = dataclasses.replace(self.imp, **changes)
        self.ch.set_impairments(new)  # raises on a bad setting, leaving the running one in place
        self.imp = new

    # One setter per GRC parameter, for callbacks.
    def set_pa(self, v): self.set_impairments(pa=v)  # noqa: E704
    def set_pa_backoff_db(self, v): self.set_impairments(pa_backoff_db=float(v))  # noqa: E704
    def set_phase_noise(self, v): self.set_impairments(phase_noise=v)  # noqa: E704
    def set_pn_linewidth_hz(self, v): self.set_impairments(pn_linewidth_hz=float(v))  # noqa: E704
    def set_iq_gain_db(self, v): self.set_impairments(iq_gain_db=float(v))  # noqa: E704
    def set_iq_phase_deg(self, v): self.set_impairments(iq_phase_deg=float(v))  # noqa: E704
    def set_adc_bits(self, v): self.set_impairments(adc_bits=int(v))  # noqa: E704
    def set_cfo_drift_hz_s(self, v): self.set_impairments(cfo_drift_hz_s=float(v))  # noqa: E704

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
