"""XL-MIMO uplink channel estimation blocks: ``xlmimo_sim`` (simulated combined pilot
observations + true channels) and ``xlmimo_estimator`` (observations -> channel estimates).

One stream item is one user's observation of one frame (vector [pilot][rf chain][subcarrier]);
a frame is ``n_users`` consecutive items sharing one combiner sequence. Combiners travel with the
stream as a tag on the first item they apply to (sample-accurate), or arrive on the estimator's
``combiners`` message port / constructor parameter (applied from the next work() call on).
"""
from __future__ import annotations

import threading
import time

import numpy as np
import pmt
from gnuradio import gr

from ..sim import nearfield as nf
from ..xlmimo import EstimatorCore, names
from ._common import NOISE_TAG, from_pmt, log, to_pmt

COMBINERS_TAG = pmt.intern("gdm_xlmimo_combiners")
XL_FRAME_TAG = pmt.intern("gdm_xlmimo_frame")


def _cfg(n_ant, n_rf, n_subcarriers, n_users, n_paths, fc_hz, bandwidth_hz, r_min=5.0, r_max=40.0):
    return nf.NearFieldConfig(n_ant=int(n_ant), n_rf=int(n_rf), n_subcarriers=int(n_subcarriers),
                              n_users=int(n_users), n_paths=int(n_paths), fc_hz=float(fc_hz),
                              bandwidth_hz=float(bandwidth_hz), r_range_m=(float(r_min), float(r_max)))


class xlmimo_sim(gr.sync_block):
    """Near-field multi-user uplink pilot phase (``sim.nearfield.uplink_pilots``), frame after
    frame: out 0 the combined observations (vlen n_pilots*n_rf*n_subcarriers), out 1 the true
    channels (vlen n_ant*n_subcarriers). New random-phase combiners every frame
    (``combiners='per_frame'``) or one set for the whole run ('fixed'); each frame's first item
    carries ``gdm_xlmimo_frame`` {index, snr_db, noise_var}, ``gdm_noise_var`` and, when they
    change, ``gdm_xlmimo_combiners`` (the [P][N_RF][N] matrices, flat). Stops after ``n_frames``
    frames (0 = never)."""

    def __init__(self, n_ant=256, n_rf=16, n_subcarriers=8, n_users=16, n_paths=6, n_pilots=8,
                 snr_db=10.0, r_min=5.0, r_max=40.0, fc_hz=100e9, bandwidth_hz=100e6, n_frames=0,
                 combiners="per_frame", seed=0):
        if combiners not in ("per_frame", "fixed"):
            raise ValueError(f"xlmimo_sim: combiners must be 'per_frame' or 'fixed', got {combiners!r}")
        if not 0 < r_min < r_max:
            raise ValueError(f"xlmimo_sim: need 0 < r_min < r_max, got r_min={r_min}, r_max={r_max}")
        if int(n_pilots) < 1 or int(n_frames) < 0:
            raise ValueError("xlmimo_sim: n_pilots must be >= 1 and n_frames >= 0")
        self.cfg = _cfg(n_ant, n_rf, n_subcarriers, n_users, n_paths, fc_hz, bandwidth_hz, r_min, r_max)
        self.n_pilots, self.n_frames, self.mode = int(n_pilots), int(n_frames), combiners
        c = self.cfg
        gr.sync_block.__init__(self, "gdm_xlmimo_sim", None,
                               [(np.complex64, self.n_pilots * c.n_rf * c.n_subcarriers),
                                (np.complex64, c.n_ant * c.n_subcarriers)])
        self.set_output_multiple(c.n_users)
        self.rng = np.random.default_rng(seed)
        self.snr_db = float(snr_db)
        self.frame = 0
        self._W = None
        self.message_port_register_out(pmt.intern("combiners"))

    def set_snr_db(self, snr_db: float) -> None:
        self.snr_db = float(snr_db)

    def work(self, input_items, output_items):
        c, M = self.cfg, self.cfg.n_users
        if self.n_frames and self.frame >= self.n_frames:
            return -1
        F = len(output_items[0]) // M
        if self.n_frames:
            F = min(F, self.n_frames - self.frame)
        nv = 10 ** (-self.snr_db / 10)
        for f in range(F):
            H = nf.generate_channels(self.rng, c, M)
            new = self._W is None or self.mode == "per_frame"
            if new:
                self._W = nf.random_combiners(self.rng, self.n_pilots, c.n_rf, c.n_ant)
            Y = nf.observe(self.rng, H, self._W, nv)
            output_items[0][f * M:(f + 1) * M] = Y.reshape(M, -1)
            output_items[1][f * M:(f + 1) * M] = H.reshape(M, -1)
            off = self.nitems_written(0) + f * M
            self.add_item_tag(0, off, XL_FRAME_TAG, to_pmt({"index": self.frame, "snr_db": self.snr_db,
                                                            "noise_var": nv}))
            self.add_item_tag(0, off, NOISE_TAG, pmt.from_double(nv))
            if new:
                self.add_item_tag(0, off, COMBINERS_TAG, to_pmt(self._W))
                self.message_port_pub(pmt.intern("combiners"), to_pmt(self._W))
            self.frame += 1
        return F * M


class xlmimo_estimator(gr.sync_block):
    """Channel estimates from combined pilot observations with any XL-MIMO estimator
    (``xlmimo.names()``: diffusion, sigw, somp, swomp, ls), switchable with ``set_method``.
    in 0: observations, vlen n_pilots*n_rf*n_subcarriers ([pilot][rf][subcarrier]); with
    ``truth=True`` in 1: true channels (vlen n_ant*n_subcarriers) for a running NMSE.
    out 0: estimates, vlen n_ant*n_subcarriers ([antenna][subcarrier]). Every item available is
    estimated in one batch per work() call; nothing is held back at the end of the stream."""

    def __init__(self, method="diffusion", n_ant=256, n_rf=16, n_subcarriers=8, n_pilots=8,
                 fc_hz=100e9, bandwidth_hz=100e6, combiners=None, noise_var=0.1, model="",
                 truth=False, print_stats=True, options=None):
        self.cfg = _cfg(n_ant, n_rf, n_subcarriers, 1, 1, fc_hz, bandwidth_hz)
        prior = model or _shipped_prior()
        self.core = EstimatorCore(method, n_pilots=n_pilots, cfg=self.cfg, prior=prior,
                                  combiners=combiners, noise_var=noise_var, **dict(options or {}))
        self.truth, self.print_stats = bool(truth), bool(print_stats)
        ins = [(np.complex64, self.core.vlen_in)] + ([(np.complex64, self.core.vlen_out)] if truth else [])
        gr.sync_block.__init__(self, "gdm_xlmimo_estimator", ins, [(np.complex64, self.core.vlen_out)])
        self.set_tag_propagation_policy(gr.TPP_DONT)
        level = self.log_level()
        self.set_log_level("warn")  # GNU Radio announces the buffer size on stdout at info level
        self.set_min_output_buffer(64)
        self.set_log_level(level)
        self._lock = threading.Lock()
        self._pending_W = None
        self.estimates, self.seconds, self._err, self._pow, self._nmse = 0, 0.0, 0.0, 0.0, []
        self.message_port_register_in(pmt.intern("combiners"))
        self.set_msg_handler(pmt.intern("combiners"), self._on_combiners)

    @property
    def method(self) -> str:
        return self.core.method

    def set_method(self, method: str) -> None:
        if method not in names():
            raise ValueError(f"xlmimo_estimator: unknown method {method!r}; valid: {', '.join(names())}")
        with self._lock:
            self.core.set_method(str(method))

    def set_noise_var(self, noise_var: float) -> None:
        with self._lock:
            self.core.set_noise_var(noise_var)

    def _on_combiners(self, msg):
        W = np.asarray(from_pmt(pmt.cdr(msg) if pmt.is_pair(msg) else msg), np.complex64)
        try:
            with self._lock:
                self.core.set_combiners(W)
        except ValueError as e:
            log.warning("xlmimo_estimator: dropped a combiners message: %s", e)

    def work(self, input_items, output_items):
        n = len(output_items[0])
        base = self.nitems_read(0)
        cuts = {0: {}}
        for t in self.get_tags_in_window(0, 0, n):
            k = pmt.symbol_to_string(t.key)
            if t.key in (COMBINERS_TAG, NOISE_TAG):
                cuts.setdefault(int(t.offset - base), {})[k] = from_pmt(t.value)
            elif t.key == XL_FRAME_TAG:
                self.add_item_tag(0, self.nitems_written(0) + int(t.offset - base), t.key, t.value)
        starts = sorted(cuts) + [n]
        t0 = time.perf_counter()
        with self._lock:
            for a, b in zip(starts[:-1], starts[1:]):
                for k, v in cuts[a].items():
                    if k == "gdm_noise_var":
                        self.core.set_noise_var(v)
                    else:
                        self.core.set_combiners(np.asarray(v, np.complex64))
                if b > a:
                    output_items[0][a:b] = self.core.process(input_items[0][a:b])
        self.seconds += time.perf_counter() - t0
        self.estimates += n
        if self.truth:
            H, Hh = input_items[1][:n], output_items[0][:n]
            e, p = np.sum(np.abs(Hh - H) ** 2, 1), np.sum(np.abs(H) ** 2, 1)
            self._nmse.extend((e / np.maximum(p, 1e-30)).tolist())
        return n

    def stats(self) -> dict:
        out = {"method": self.method, "estimates": self.estimates,
               "ms_per_estimate": 1e3 * self.seconds / max(self.estimates, 1)}
        if self._nmse:
            out["nmse_db"] = float(10 * np.log10(np.mean(self._nmse)))
        return out

    def stop(self):
        if self.print_stats:
            s = self.stats()
            nm = f", NMSE {s['nmse_db']:.2f} dB" if "nmse_db" in s else ""
            print(f"final xlmimo_estimator {s['method']}: {s['estimates']} estimates{nm}, "
                  f"{s['ms_per_estimate']:.1f} ms per estimate", flush=True)
        return True


def _shipped_prior() -> str | None:
    from ..paths import model_dir
    d = model_dir()
    p = d / "gdm_xlmimo_prior.onnx" if d else None
    return str(p) if p and p.exists() else None
