"""symbol_denoiser: equalized symbols + post-eq variance -> denoised symbols + per-symbol variance."""
from __future__ import annotations

import numpy as np
import pmt
from gnuradio import gr

from .. import denoising
from ..logutil import warn_throttled
from ._common import (FRAME_TAG, MethodCores, check_ports, equalized_streams, frame_batches, frame_tag_values, log,
                      make_spec, tag_field)

FALLBACK_TAG = pmt.intern("gdm_dn_fallback")


class symbol_denoiser(MethodCores, gr.sync_block):
    """Sits between mimo_equalizer and frame_decoder with the same stream contract on both sides:
    n_tx streams of equalized occupied carriers (vlen n_occ) and one float stream of per-RE
    variance (vlen n_tx*n_occ, [tx][carrier]) in; the same out, the symbols denoised and the
    variance the one the soft demapper should use. Methods (``denoising.names()``, switchable
    while running with ``set_method``): ``diffusion`` (the learned denoiser, ONNX), ``cpe``
    (classical common-phase-error correction), ``none`` (pass-through).

    ``model``: .onnx path, empty = the shipped model for the preset; its checksum and metadata
    (kind 'denoiser', frame, modulation, n_tx) are checked at construction. A frame whose
    inference fails leaves as it came (plain demapping), with a logged warning, a count in
    ``stats()['fallback']`` and a ``gdm_dn_fallback`` tag. Frames flagged nonfinite pass through
    for the decoder to report. ``gdm_frame`` tags are copied to every output."""

    def __init__(self, preset="nr72", n_tx=1, modulation="16qam", method="diffusion", model="", device="auto"):
        check_ports("symbol_denoiser", 1, n_tx)
        self.spec = make_spec(preset, n_tx, modulation)
        self.n_tx = int(n_tx)
        K = self.spec.n_occ
        ports = [(np.complex64, K)] * self.n_tx + [(np.float32, self.n_tx * K)]
        gr.sync_block.__init__(self, "gdm_symbol_denoiser", ports, ports)
        frame_batches(self, self.spec)
        self.set_tag_propagation_policy(gr.TPP_DONT)
        self.options = {"diffusion": {"model": str(model) or None, "device": str(device or "auto")}}
        self._init_cores()
        self.set_method(method)
        self.counters = dict(frames=0, fallback=0, flagged=0)

    def _build(self, method):
        if method not in denoising.names():
            raise ValueError(f"symbol_denoiser: unknown method {method!r}; valid methods: "
                             f"{', '.join(denoising.names())}")
        return denoising.make(method, self.spec, **self.options.get(method, {}))

    def work(self, input_items, output_items):
        S, K, T = self.spec.n_sym, self.spec.n_occ, self.n_tx
        n = len(output_items[0]) // S * S
        B = n // S
        if B == 0:
            return 0
        X, V = equalized_streams(input_items, T, self.spec, n)
        tags = frame_tag_values(self, 0, n)
        flagged = np.array([b * S in tags and bool(tag_field(tags[b * S], "nonfinite", False)) for b in range(B)])
        with self._lock:
            core = self._cache[self.method]
        Xo, Vo = X.copy(), V.copy()
        fallback = np.zeros(B, bool)
        good = ~flagged
        if good.any():
            try:
                Xg, Vg = core.denoise(X[good], V[good])
                fb = np.asarray(core.last_info.get("fallback", np.zeros(int(good.sum()), bool)), bool)
            except Exception as e:  # noqa: BLE001 - the denoiser must never stop the receiver
                warn_throttled(log, "symbol_denoiser.raised",
                               "symbol_denoiser: %s failed on %d frames (%s: %s); plain demapping for them",
                               core.name, int(good.sum()), type(e).__name__, e)
                Xg, Vg, fb = X[good], V[good], np.ones(int(good.sum()), bool)
            Xo[good], Vo[good] = Xg, Vg
            fallback[good] = fb
        c = self.counters
        c["frames"] += B
        c["flagged"] += int(flagged.sum())
        c["fallback"] += int(fallback.sum())
        for t in range(T):
            output_items[t][:n] = Xo[:, t].reshape(n, K)
        output_items[T][:n] = Vo.transpose(0, 2, 1, 3).reshape(n, T * K)
        base = self.nitems_written(0)
        for b in range(B):
            off = base + b * S
            t = tags.get(b * S)
            if t is not None:
                for o in range(T + 1):
                    self.add_item_tag(o, off, FRAME_TAG, t)
            if fallback[b]:
                for o in range(T + 1):
                    self.add_item_tag(o, off, FALLBACK_TAG, pmt.intern("plain"))
        return n

    def stop(self):
        c = self.counters
        if c["fallback"]:
            log.warning("symbol_denoiser: %d of %d frames fell back to plain demapping", c["fallback"], c["frames"])
        return True

    def stats(self) -> dict:
        return {**self.counters, "method": self.method}
