"""mimo_equalizer: n_rx grids + H -> n_tx equalized symbol streams + post-equalization noise."""
from __future__ import annotations

import numpy as np
import pmt
from gnuradio import gr

from ..ofdm.equalizer import METHODS, equalize
from ._common import FRAME_TAG, NOISE_TAG, check_ports, frame_batches, frame_tag_values, make_spec


class mimo_equalizer(gr.sync_block):
    """Inputs: n_rx grids (vlen fft_len) and the channel_estimator output (vlen
    n_rx*n_tx*fft_len). Outputs: n_tx streams of equalized occupied carriers (vlen n_occ per
    OFDM symbol; pilots included, the decoder picks the data REs by the frame spec) and one
    float stream of post-equalization noise variance (vlen n_tx*n_occ). Methods: mrc (1 tx),
    zf, lmmse. The noise variance per frame comes from the ``gdm_noise_var`` tag."""

    def __init__(self, preset="nr72", n_rx=2, n_tx=1, method="lmmse"):
        check_ports("mimo_equalizer", n_rx, n_tx)
        _check_method(method, int(n_tx))
        if int(n_rx) < int(n_tx):
            raise ValueError(f"mimo_equalizer: need n_rx >= n_tx, got n_rx={n_rx}, n_tx={n_tx}")
        self.spec = make_spec(preset, n_tx)
        self.n_rx, self.n_tx, self.method = int(n_rx), int(n_tx), method
        F, K = self.spec.fft_len, self.spec.n_occ
        gr.sync_block.__init__(self, "gdm_mimo_equalizer",
                               [(np.complex64, F)] * self.n_rx + [(np.complex64, self.n_rx * self.n_tx * F)],
                               [(np.complex64, K)] * self.n_tx + [(np.float32, self.n_tx * K)])
        frame_batches(self, self.spec)
        self.set_tag_propagation_policy(gr.TPP_DONT)

    def set_method(self, method):
        _check_method(method, self.n_tx)
        self.method = method

    def work(self, input_items, output_items):
        S, F, spec = self.spec.n_sym, self.spec.fft_len, self.spec
        n = len(output_items[0]) // S * S
        B = n // S
        if B == 0:
            return 0
        occ = spec.occupied_bins
        Y = np.stack([np.asarray(x[:n]).reshape(B, S, F)[..., occ] for x in input_items[:self.n_rx]], 1)
        H = np.asarray(input_items[self.n_rx][:n]).reshape(B, S, self.n_rx, self.n_tx, F)[..., occ]
        H = H.transpose(0, 2, 3, 1, 4)
        nv_tags = self.get_tags_in_window(self.n_rx, 0, n, NOISE_TAG)
        base = self.nitems_read(self.n_rx)
        nv = np.full(B, np.nan)
        for t in nv_tags:
            nv[int(t.offset - base) // S] = pmt.to_double(t.value)
        nv = np.where(np.isfinite(nv), nv, 1.0)
        X, V = equalize(Y, H, nv, self.method)
        for t in range(self.n_tx):
            output_items[t][:n] = X[:, t].reshape(n, -1)
        output_items[self.n_tx][:n] = V.transpose(0, 2, 1, 3).reshape(n, -1)
        tags = frame_tag_values(self, self.n_rx, n)
        wbase = self.nitems_written(0)
        for off, t in tags.items():
            for o in range(self.n_tx + 1):
                self.add_item_tag(o, wbase + off, FRAME_TAG, t)
        return n


def _check_method(method: str, n_tx: int) -> None:
    if method not in METHODS:
        raise ValueError(f"mimo_equalizer: unknown method {method!r}; valid: {', '.join(METHODS)}")
    if method == "mrc" and n_tx != 1:
        raise ValueError("mimo_equalizer: mrc needs n_tx = 1; use zf or lmmse for MIMO")
