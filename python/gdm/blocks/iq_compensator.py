"""iq_compensator: n complex streams -> the same with blind IQ-imbalance compensation."""
from __future__ import annotations

import numpy as np
from gnuradio import gr

from ..ofdm.compensation import BlindIQCompensator
from ._common import check_ports


class iq_compensator(gr.sync_block):
    """Blind IQ-imbalance compensation per receive channel (ofdm.compensation.BlindIQCompensator):
    y - w conj(y), with the image coefficient w from the stream's second-order statistics
    (E[y^2] of a proper signal is 0) averaged over ``memory`` samples. Place it on the raw
    samples before gdm_ofdm_sync_demod. Stateless with respect to tags (they pass through)."""

    def __init__(self, n_ch=2, memory=1e5):
        check_ports("iq_compensator", n_ch, 1)
        if float(memory) < 1:
            raise ValueError(f"iq_compensator: memory must be >= 1 sample, got {memory}")
        self.n_ch = int(n_ch)
        gr.sync_block.__init__(self, "gdm_iq_compensator", [np.complex64] * self.n_ch, [np.complex64] * self.n_ch)
        self.comp = BlindIQCompensator(self.n_ch, float(memory))

    def set_memory(self, memory):
        if float(memory) < 1:
            raise ValueError(f"iq_compensator: memory must be >= 1 sample, got {memory}")
        self.comp.a = 1.0 / float(memory)

    def work(self, input_items, output_items):
        n = min(len(x) for x in input_items)
        y = self.comp.process(np.stack([np.asarray(x[:n]) for x in input_items]))
        for i, out in enumerate(output_items):
            out[:n] = y[i]
        return n

    def image_coefficients(self) -> np.ndarray:
        """Current image coefficient estimate w per channel."""
        return self.comp.r2 / np.maximum(2 * self.comp.p, 1e-30)
