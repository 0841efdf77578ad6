"""ofdm_sync_demod: n_rx complex streams -> n_rx frame-aligned grids (vlen fft_len)."""
from __future__ import annotations

import collections

import numpy as np
from gnuradio import gr

from ..ofdm.sync import FrameSynchronizer
from ._common import BATCH_FRAMES, FRAME_TAG, check_ports, frame_batches, log, make_spec, to_pmt


class ofdm_sync_demod(gr.basic_block):
    """Schmidl-Cox timing + CFO on all antennas jointly, CP removal and FFT. Each frame is
    exactly n_sym vectors per output (fft-shifted bins), the first tagged ``gdm_frame``
    {index, sample_offset, cfo_hz, snr_db, noise_var, nonfinite}. Frames overlapping NaN/Inf
    input are flagged (nonfinite=True) and counted. A frame cut off by the end of the stream is
    counted in ``frames_truncated`` and logged at stop."""

    def __init__(self, preset="nr72", n_rx=2, threshold=0.12):
        check_ports("ofdm_sync_demod", n_rx, 1)
        self.spec = make_spec(preset)
        self.n_rx = int(n_rx)
        gr.basic_block.__init__(self, "gdm_ofdm_sync_demod", [np.complex64] * self.n_rx,
                                [(np.complex64, self.spec.fft_len)] * self.n_rx)
        self.sync = FrameSynchronizer(self.spec, self.n_rx, threshold=float(threshold))
        self._out: collections.deque = collections.deque()
        frame_batches(self, self.spec)
        self.set_tag_propagation_policy(gr.TPP_DONT)
        self.frames_flagged = 0
        self.frames_truncated = 0
        # Search in batches of ~BATCH_FRAMES frames of samples: the synchronizer costs far less
        # per frame on big pushes. Whatever is pending is searched when no more input comes.
        self._pending = 0
        self._batch = BATCH_FRAMES * self.spec.frame_len

    def forecast(self, noutput_items, ninputs):
        # With frames or samples waiting we must be called even without new input (end of stream).
        return [0 if (self._out or self._pending) else 1] * ninputs

    def general_work(self, input_items, output_items):
        S = self.spec.n_sym
        room = len(output_items[0]) // S
        n_in = min(len(x) for x in input_items)
        if n_in and len(self._out) < 2 * BATCH_FRAMES:
            self.sync.push([x[:n_in] for x in input_items])
            self.consume_each(n_in)
            self._pending += n_in
        if self._pending >= self._batch or (self._pending and not n_in):
            self._pending = 0
            for f in self.sync.pop_frames():
                self.frames_flagged += f.nonfinite
                self._out.append(f)
        k = min(room, len(self._out))
        for j in range(k):
            f = self._out.popleft()
            off = self.nitems_written(0) + j * S
            tag = to_pmt(f.tag())
            for r in range(self.n_rx):
                output_items[r][j * S:(j + 1) * S] = f.grid[r]
                self.add_item_tag(r, off, FRAME_TAG, tag)
        return k * S

    def stop(self):
        tail = self.sync.flush()
        self.frames_truncated = len(tail) + len(self._out)
        if self.frames_truncated:
            log.warning("ofdm_sync_demod: %d frame(s) at the end of the stream were not emitted "
                        "(stream ended before the frame completed or the flowgraph stopped)",
                        self.frames_truncated)
        return True

    def stats(self) -> dict:
        s = self.sync
        return dict(frames=s.frames_emitted, flagged_nonfinite=self.frames_flagged,
                    rejected_detections=s.detections_rejected, nonfinite_samples=s.nonfinite_samples,
                    truncated=self.frames_truncated)
