"""sigmf_sink / sigmf_source: multi-antenna SigMF recording and replay."""
from __future__ import annotations

import threading

import numpy as np
import pmt
from gnuradio import gr

from ..frame import FrameSpec
from ..io.recording import base_path, open_recording, write_meta
from ._common import drain_messages, from_pmt, log


class sigmf_sink(gr.sync_block):
    """Records n_ch complex streams into ``<path>.sigmf-data`` (channels interleaved, cf32_le)
    and writes ``<path>.sigmf-meta`` at stop: sample rate, centre frequency, channel count,
    frame preset and FrameSpec, hardware description, and one annotation per frame reported on
    the ``frames`` port (connect frame_decoder's ``frames``; its sample offsets are in this
    stream's coordinates when both see the same samples). ``max_samples`` > 0 stops recording
    (not the flowgraph) after that many samples per channel."""

    def __init__(self, path, n_ch=2, sample_rate=1.92e6, center_freq=0.0, preset="nr72", hw="",
                 description="", max_samples=0, extra=None):
        if int(n_ch) < 1:
            raise ValueError(f"sigmf_sink: n_ch must be >= 1, got {n_ch}")
        gr.sync_block.__init__(self, "gdm_sigmf_sink", [np.complex64] * int(n_ch), None)
        self.base = base_path(path)
        self.n_ch, self.fs, self.fc = int(n_ch), float(sample_rate), float(center_freq)
        self.spec = FrameSpec.preset(preset) if preset else None
        self.hw, self.description, self.max_samples = hw, description, int(max_samples)
        self.extra = dict(extra or {})
        self._lock = threading.Lock()
        self._annotations: list[dict] = []
        self._f = None
        self.written = 0
        self.message_port_register_in(pmt.intern("frames"))
        self.set_msg_handler(pmt.intern("frames"), self._on_frame)

    def start(self):
        self.base.parent.mkdir(parents=True, exist_ok=True)
        self._f = open(self.base.with_suffix(".sigmf-data"), "wb")
        return True

    def _on_frame(self, msg):
        d = from_pmt(msg)
        if d.get("sample_offset") is None:
            return
        ann = {"sample_start": int(d["sample_offset"]),
               "sample_count": self.spec.frame_len if self.spec else 1,
               "core:label": f"gdm frame {d.get('index')}" + (f" seq {d['seq']}" if d.get("seq") is not None else ""),
               "gdm:crc_ok": bool(d.get("crc_ok", False))}
        for k in ("seq", "index", "snr_db", "cfo_hz", "evm_db"):
            if d.get(k) is not None:
                ann[f"gdm:{k}"] = d[k]
        if d.get("payload_sha256") is not None:  # 32 bytes on the message, hex in the file
            ann["gdm:payload_sha256"] = bytes(np.asarray(d["payload_sha256"], np.uint8)).hex()
        with self._lock:
            self._annotations.append(ann)

    def work(self, input_items, output_items):
        n = len(input_items[0])
        if self.max_samples:
            n_w = max(0, min(n, self.max_samples - self.written))
        else:
            n_w = n
        if n_w and self._f is not None:
            x = np.stack([np.asarray(i[:n_w]) for i in input_items], axis=1)  # interleave channels
            self._f.write(x.astype("<c8").tobytes())
            self.written += n_w
        return n

    def stop(self):
        if self._f is not None:
            self._f.close()
            self._f = None
            drain_messages(self, [("frames", self._on_frame)])
            with self._lock:
                anns = sorted((a for a in self._annotations if a["sample_start"] < self.written),
                              key=lambda a: a["sample_start"])
            write_meta(self.base, sample_rate=self.fs, num_channels=self.n_ch, n_samples=self.written,
                       spec=self.spec, center_freq=self.fc or None, hw=self.hw, description=self.description,
                       annotations=anns, extra=self.extra)
            log.info("sigmf_sink: wrote %d samples x %d channels, %d annotations to %s",
                     self.written, self.n_ch, len(anns), self.base)
        return True


class sigmf_source(gr.sync_block):
    """Plays a SigMF recording as n_ch complex streams (channels de-interleaved). The metadata
    is checked at construction against ``preset`` and ``n_rx`` (0: take the recording's), with
    errors naming the field and the fix; a truncated data file plays up to the damage."""

    def __init__(self, path, preset="", n_rx=0, repeat=False, chunk=65536):
        self.rec = open_recording(path, preset=preset or None, n_rx=int(n_rx) or None)
        gr.sync_block.__init__(self, "gdm_sigmf_source", None, [np.complex64] * self.rec.num_channels)
        self.repeat, self.chunk, self.pos = bool(repeat), int(chunk), 0

    @property
    def n_ch(self) -> int:
        return self.rec.num_channels

    @property
    def spec(self) -> FrameSpec | None:
        return self.rec.spec

    def work(self, input_items, output_items):
        if self.pos >= self.rec.n_samples:
            if not self.repeat or self.rec.n_samples == 0:
                return -1
            self.pos = 0
        n = min(len(output_items[0]), self.chunk, self.rec.n_samples - self.pos)
        x = self.rec.read(self.pos, n)
        for i, out in enumerate(output_items):
            out[:n] = x[i]
        self.pos += n
        return n
