"""channel_estimator: n_rx frame-aligned grids -> H per OFDM symbol, vlen n_rx*n_tx*fft_len."""
from __future__ import annotations

import numpy as np
import pmt
from gnuradio import gr

from .. import estimation
from ..estimation.fallback import estimate_or_fallback
from ..sim.grid import ChannelConfig
from ._common import (FRAME_TAG, NOISE_TAG, MethodCores, check_ports, frame_batches, frame_tag_values, make_spec,
                      subscribed, tag_field, to_pmt)

CHAN_TAPS_TAG = pmt.intern("ofdm_sync_chan_taps")
FALLBACK_TAG = pmt.intern("gdm_est_fallback")
SWITCH_TAG = pmt.intern("gdm_model_switch")


def _warmed(est):
    """``est`` after its ``warm_up()`` where it has one: lazy loads and first-shape setups happen
    when the estimator is built, not on the first frames it estimates."""
    if hasattr(est, "warm_up"):
        est.warm_up()
    return est


class EstimatorMethods(MethodCores):
    """A block's channel estimator by name (``estimation.names()``), switchable while running,
    with the options of each method and the fallback that keeps every frame estimated. Needs
    ``self.spec``, ``self.n_rx``, ``self.n_tx``; call ``_init_estimator`` in ``__init__``."""

    def _init_estimator(self, method, profile="TDL-A", delay_spread=30e-9, doppler=0.0, options=None,
                        model="", steps=-1, device="auto") -> None:
        self.config = ChannelConfig(profile, float(delay_spread), float(doppler))
        self.options = dict(options or {})
        diff = dict(self.options.get("diffusion", {}))
        if model:
            diff.setdefault("model", str(model))
        if int(steps) >= 0:
            diff.setdefault("steps", int(steps))
        diff.setdefault("device", str(device or "auto"))
        self.options["diffusion"] = diff
        self.fallback_frames = 0
        self._init_cores()
        self.set_method(method)

    def _build(self, method):
        if method not in estimation.names():
            raise ValueError(f"{self._who}: unknown method {method!r}; valid methods: "
                             f"{', '.join(estimation.names())}")
        opts = dict(self.options.get(method, {}))
        if method == "genie":
            opts.setdefault("config", self.config)
        return _warmed(estimation.make(method, self.spec, self.n_rx, self.n_tx, **opts))

    def _publish_csi(self, index: int, H) -> None:
        self.message_port_pub(pmt.intern("csi"), to_pmt({"index": int(index), "method": self.method, "H": H}))

    def _estimate(self, est, Y, nv):
        """(H, per-frame fallback label: '' when the method's own estimate was used)."""
        H, labels = estimate_or_fallback(est, Y, nv, lambda: self._core("ls_interp"), self._who)
        with self._lock:  # ofdm_receiver estimates on several workers at once
            self.fallback_frames += int(np.count_nonzero(labels != ""))
        return H, labels


class channel_estimator(EstimatorMethods, gr.sync_block):
    """Estimates the channel of every frame with a named method (``estimation.names()``),
    switchable while running with ``set_method``. Output layout per symbol: [rx][tx][carrier]
    over fft-shifted bins (zero outside the occupied carriers). Frames are processed in batches
    of whatever whole frames are available; ``gdm_frame`` tags pass through and each frame gets
    ``gdm_noise_var``. Frames flagged non-finite are not estimated (zeros out, flag kept).
    ``chan_taps=True`` also emits GNU Radio's ``ofdm_sync_chan_taps`` tag (first tx/rx, fft_len
    taps) for use ahead of digital.ofdm_frame_equalizer_vcvc. ``publish_csi`` publishes every
    estimate on ``csi`` as {index, H} for link_stats.

    ``method='diffusion'`` loads ``model`` (a path; empty = the shipped model for the preset)
    through onnxruntime on ``device`` (auto|cpu|cuda) with ``steps`` reverse steps (-1: adaptive);
    the file's checksum and metadata are checked against this block's frame spec and antenna
    count at construction. A frame whose inference fails gets a classical estimate instead (the
    diffusion estimator's Gaussian-mixture LMMSE for a bad link, LS + interpolation when the
    whole call fails), a logged warning, a count in ``stats()['fallback']`` and a
    ``gdm_est_fallback`` tag naming the replacement.

    ``adapt=True`` (site adaptation, ``gnuradio.gdm.adaptation``): the block keeps the received
    grids of the next ``adapt_frames`` good frames; a background thread fits the site prior to
    them, validates it on the last quarter (held out) and writes the adapted model to
    ``adapt_out`` (empty: the gr-gdm cache). If the guard accepts it, the diffusion estimator is
    replaced between two batches (no frame waits or is dropped) and the first frame the new
    model estimates carries a ``gdm_model_switch`` tag {model, gain_db, frames}; a rejected
    adaptation leaves the model as it was. ``set_adapt(True)`` starts a new collection;
    ``stats()['adapt']`` reports the state."""

    def __init__(self, preset="nr72", n_rx=2, n_tx=1, method="ls_interp", profile="TDL-A",
                 delay_spread=30e-9, doppler=0.0, chan_taps=False, publish_csi=True, options=None,
                 model="", steps=-1, device="auto", adapt=False, adapt_frames=200, adapt_out=""):
        check_ports("channel_estimator", n_rx, n_tx)
        self._who = "channel_estimator"
        self.spec = make_spec(preset, n_tx)
        self.n_rx, self.n_tx = int(n_rx), int(n_tx)
        F = self.spec.fft_len
        gr.sync_block.__init__(self, "gdm_channel_estimator", [(np.complex64, F)] * self.n_rx,
                               [(np.complex64, self.n_rx * self.n_tx * F)])
        frame_batches(self, self.spec)
        self.set_tag_propagation_policy(gr.TPP_DONT)
        self._init_estimator(method, profile, delay_spread, doppler, options, model, steps, device)
        self.chan_taps, self.publish_csi = bool(chan_taps), bool(publish_csi)
        self.frames = 0
        self.frames_flagged = 0
        self.frames_untagged = 0
        self.message_port_register_out(pmt.intern("csi"))
        self.adapt_frames, self.adapt_out = int(adapt_frames), str(adapt_out or "")
        self._adapter = None
        self._switch_info = None  # set at a swap, tagged on the first frame the new model estimates
        self.set_adapt(adapt)

    def set_adapt(self, adapt: bool) -> None:
        """True: collect ``adapt_frames`` frames and adapt (again); False: stop collecting."""
        from ..adaptation.online import OnlineAdapter

        if not adapt:
            if self._adapter is not None:
                self._adapter.stop()
            return
        if self._adapter is None:
            base = self.options["diffusion"].get("model")
            self._adapter = OnlineAdapter(self.spec, self.n_rx, self.adapt_frames, self.adapt_out or None,
                                          base, make_estimator=self._adapted_estimator,
                                          source={"kind": "stream", "block": "gdm_channel_estimator"})
        else:
            self._adapter.start()

    def _adapted_estimator(self, path):
        opts = dict(self.options.get("diffusion", {}))
        opts["model"] = str(path)
        return _warmed(estimation.make("diffusion", self.spec, self.n_rx, self.n_tx, **opts))  # in the adapter's thread

    def work(self, input_items, output_items):
        S, F, spec = self.spec.n_sym, self.spec.fft_len, self.spec
        n = len(output_items[0]) // S * S
        B = n // S
        if B == 0:
            return 0
        tags = frame_tag_values(self, 0, n)
        Y = np.stack([np.asarray(x[:n]).reshape(B, S, F)[..., spec.occupied_bins] for x in input_items], 1)
        nv = np.full(B, np.nan)
        flagged = np.zeros(B, bool)
        for b in range(B):
            t = tags.get(b * S)
            if t is None:
                self.frames_untagged += 1
                continue
            nv[b] = tag_field(t, "noise_var", np.nan)
            flagged[b] = bool(tag_field(t, "nonfinite", False))
        ready = self._adapter.take_ready() if self._adapter is not None else None
        with self._lock:
            if ready is not None:  # between batches: every later frame uses the adapted model
                self._cache["diffusion"] = ready[0]
                self._switch_info = {"model": ready[1]["model"], "gain_db": ready[1]["guard"]["gain_db"],
                                     "frames": ready[1]["frames_adapt"] + ready[1]["frames_heldout"]}
            est = self._cache[self.method]
            switch = self._switch_info if self.method == "diffusion" else None
            if switch is not None:
                self._switch_info = None
        H = np.zeros((B, self.n_rx, self.n_tx, S, spec.n_occ), np.complex64)
        good = ~flagged
        fallback = np.full(B, "", object)
        if good.any():
            nvg = nv[good]
            if np.isnan(nvg).any():
                from ..estimation import estimate_noise_var
                nvg = np.where(np.isnan(nvg), estimate_noise_var(Y[good], spec), nvg)
            nv[good] = nvg
            H[good], fb = self._estimate(est, Y[good], nvg)
            fallback[good] = fb
        if self._adapter is not None and good.any():
            self._adapter.collect(Y[good], nv[good])
        self.frames += B
        self.frames_flagged += int(flagged.sum())
        out = output_items[0][:n].reshape(B, S, self.n_rx, self.n_tx, F)
        out[:] = 0
        out[..., spec.occupied_bins] = H.transpose(0, 3, 1, 2, 4)
        base = self.nitems_written(0)
        for b in range(B):
            off = base + b * S
            t = tags.get(b * S)
            index = None if t is None else tag_field(t, "index")
            self.add_item_tag(0, off, FRAME_TAG, to_pmt({"index": None}) if t is None else t)
            self.add_item_tag(0, off, NOISE_TAG, pmt.from_double(float(nv[b])))
            if b == 0 and switch is not None:
                self.add_item_tag(0, off, SWITCH_TAG, to_pmt(switch))
            if fallback[b]:
                self.add_item_tag(0, off, FALLBACK_TAG, pmt.intern(fallback[b]))
            if self.chan_taps:
                self.add_item_tag(0, off, CHAN_TAPS_TAG, to_pmt(out[b, 0, 0, 0].copy()))
            if self.publish_csi and index is not None and subscribed(self, "csi"):
                self._publish_csi(index, H[b])
        return n

    def stats(self) -> dict:
        out = dict(frames=self.frames, flagged=self.frames_flagged, untagged=self.frames_untagged,
                   method=self.method, fallback=self.fallback_frames)
        if self._adapter is not None:
            out["adapt"] = self._adapter.status()
        return out
