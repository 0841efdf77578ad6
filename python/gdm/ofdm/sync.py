"""Schmidl-Cox timing and CFO synchronisation on continuous multi-antenna streams.

Works chunk by chunk on an unbounded stream with frames back to back or separated by gaps:
1. coarse timing: the half-symbol autocorrelation metric |P|^2 / (E1 E2), summed over receive
   antennas, crossing ``threshold``; the plateau maximum gives the fractional CFO (|cfo| < one
   subcarrier spacing);
2. fine timing: cross-correlation with the known preamble after CFO removal, combined over
   antennas; the earliest arrival within ``first_path_db`` of the peak marks the frame start, so
   the channel seen afterwards starts at delay ~0 rather than at its strongest path;
3. the preamble halves give the noise variance (their difference is noise only);
4. CP removal + FFT of the n_sym symbols, with the FFT window ``backoff`` samples early inside the
   CP and the resulting phase ramp removed;
5. a second CFO stage from the cyclic prefixes of all data symbols (+-7.5 kHz range on nr72);
6. fine CFO from the pilots: the phase advance between the first and last pilot symbols (whose
   spacing gives ~50x the precision of the half-symbol estimate; +-740 Hz range on nr72) is
   removed as a per-symbol common phase. Averaged over carriers and antennas, fading's own
   phase changes cancel (zero-mean Doppler), a LOS Doppler shift is removed like a CFO.
Non-finite input samples are zeroed; frames overlapping them are flagged, never silently decoded.
"""
from __future__ import annotations

import dataclasses

import numpy as np

from ..frame import FrameSpec
from .modem import fft_symbols, preamble_time


@dataclasses.dataclass
class SyncFrame:
    index: int  # running count of frames emitted by this synchronizer
    sample_offset: int  # absolute stream index of the preamble start
    cfo_hz: float
    noise_var: float  # per resource element
    snr_db: float
    grid: np.ndarray  # complex64 [n_rx, n_sym, fft_len], fft-shifted
    nonfinite: bool = False

    def tag(self) -> dict:
        return dict(index=self.index, sample_offset=self.sample_offset, cfo_hz=self.cfo_hz,
                    snr_db=self.snr_db, noise_var=self.noise_var, nonfinite=self.nonfinite)


_WAIT = object()  # _acquire: the frame's samples have not all arrived yet


class FrameSynchronizer:
    def __init__(self, spec: FrameSpec, n_rx: int, threshold: float = 0.12,
                 backoff: int = 2, first_path_db: float = -6.0, search_chunk: int = 2048,
                 pilot_cfo: bool = True, min_xcorr: float = 0.15):
        if n_rx < 1:
            raise ValueError(f"n_rx must be >= 1, got {n_rx}")
        if not 0 < threshold < 1:
            raise ValueError(f"threshold must be in (0, 1), got {threshold}")
        self.spec, self.n_rx = spec, n_rx
        self.threshold, self.first_path = threshold, 10 ** (first_path_db / 10)
        self.min_xcorr = min_xcorr
        self.backoff = min(backoff, spec.cp_len // 2)
        self.L = spec.fft_len // 2
        self.chunk = search_chunk
        rows = np.flatnonzero(spec.any_pilot_mask.any(1))
        self._pilot_rows = None
        if pilot_cfo and rows.size >= 2:
            cols = np.flatnonzero(spec.any_pilot_mask[rows[0]] & spec.any_pilot_mask[rows[-1]])
            seq = spec._pilot_sequence
            self._pilot_rows = (rows[0], rows[-1], spec.occupied_bins[cols],
                                seq[rows[0], cols] * np.conj(seq[rows[-1], cols]),
                                (rows[-1] - rows[0]) * spec.symbol_len / spec.sample_rate)
        self._sym_t = ((np.arange(spec.n_sym) + 1) * spec.symbol_len + spec.cp_len + spec.fft_len / 2) / spec.sample_rate
        self._pre = preamble_time(spec)[spec.cp_len:]  # body, fft_len samples
        self._buf = np.zeros((n_rx, 0), np.complex64)
        self._bad = np.zeros(0, bool)
        self._base = 0  # absolute index of _buf[:, 0]
        self._pos = 0  # absolute index where the next search starts
        self._expect = False  # a frame just ended: search a short span first
        self.frames_emitted = 0
        self.detections_rejected = 0  # preamble-like metric that failed verification
        self.nonfinite_samples = 0
        k = np.arange(spec.fft_len) - spec.fft_len // 2
        self._backoff_fix = np.exp(2j * np.pi * k * self.backoff / spec.fft_len).astype(np.complex64)

    # ---- stream interface --------------------------------------------------------------
    def push(self, x: np.ndarray) -> None:
        x = np.asarray(x, np.complex64)
        if x.ndim != 2 or x.shape[0] != self.n_rx:
            raise ValueError(f"expected samples [n_rx={self.n_rx}, N], got shape {x.shape}")
        bad = ~np.isfinite(x).all(axis=0)
        if bad.any():
            x = np.where(np.isfinite(x), x, 0).astype(np.complex64)
            self.nonfinite_samples += int(bad.sum())
        self._buf = np.concatenate([self._buf, x], axis=1)
        self._bad = np.concatenate([self._bad, bad])

    @property
    def buffered_end(self) -> int:
        return self._base + self._buf.shape[1]

    def pop_frames(self) -> list[SyncFrame]:
        out = []
        spec, L = self.spec, self.L
        while True:
            # A detection at d needs the plateau metric over [d, d + symbol_len). Right after a
            # frame the next preamble is most likely immediately there: look at a short span.
            span = 2 * spec.symbol_len if self._expect else self.chunk
            self._expect = False
            n = min(self.buffered_end - self._pos - 2 * L - spec.symbol_len, span)
            if n <= 0:
                break
            d = self._detect(self._pos, n)
            if d is None:
                self._pos += n
                continue
            frame = self._acquire(d)
            if frame is _WAIT:
                self._pos = d  # the frame is not complete yet: come back with more samples
                break
            if frame is None:
                self.detections_rejected += 1
                self._pos = d + spec.symbol_len  # skip this plateau
                continue
            out.append(frame)
            # Next preamble may follow immediately: resume a little before the frame end.
            self._pos = frame.sample_offset + spec.frame_len - spec.cp_len
            self._expect = True
        self._trim()
        return out

    def flush(self) -> list[SyncFrame]:
        """End of stream: pad with zeros so a final frame that is complete gets emitted."""
        self.push(np.zeros((self.n_rx, self.spec.frame_len + 4 * self.spec.symbol_len), np.complex64))
        return self.pop_frames()

    # ---- internals ---------------------------------------------------------------------
    def _view(self, start: int, n: int) -> np.ndarray:
        i = start - self._base
        return self._buf[:, i:i + n]

    def _metric(self, start: int, n: int):
        """Schmidl-Cox metric |P|^2 / (E1 E2) at [start, start + n), antennas combined."""
        L = self.L
        r = self._view(start, n + 2 * L).astype(np.complex128)
        cp = np.concatenate([[0], np.cumsum((np.conj(r[:, :-L]) * r[:, L:]).sum(0))])
        ce = np.concatenate([[0], np.cumsum((r.real ** 2 + r.imag ** 2).sum(0))])
        P = cp[L:L + n] - cp[:n]
        E1 = ce[L:L + n] - ce[:n]
        E2 = ce[2 * L:2 * L + n] - ce[L:L + n]
        M = (P.real ** 2 + P.imag ** 2) / np.maximum(E1 * E2, 1e-30)
        return M, P

    def _detect(self, start: int, n: int):
        M, _ = self._metric(start, n)
        hits = np.flatnonzero(M > self.threshold)
        return None if hits.size == 0 else start + int(hits[0])

    def _acquire(self, d0: int) -> SyncFrame | None:
        spec, L = self.spec, self.L
        # Plateau: the metric stays high for about cp_len samples; take its maximum.
        M, P = self._metric(d0, spec.symbol_len)
        m = int(np.argmax(M))
        # A preamble holds the metric up over its cyclic prefix; noise crosses only briefly.
        if M[max(0, m - spec.cp_len // 4):m + spec.cp_len // 4 + 1].mean() < self.threshold:
            return None
        eps = np.angle(P[m]) / np.pi  # CFO in subcarrier spacings
        cfo = eps * spec.subcarrier_spacing
        # Fine timing on the preamble body: candidates around the coarse estimate.
        # The frame starts no later than the plateau maximum; wait until that frame is whole,
        # and consider no start whose frame would run past the samples we have.
        if d0 + m + spec.frame_len > self.buffered_end:
            return _WAIT
        lo = max(d0 + m - spec.cp_len - L // 4, self._base)
        hi = min(d0 + m + spec.cp_len + L // 4, self.buffered_end - spec.frame_len + spec.cp_len)
        cand = np.arange(hi + 1 - lo)
        win = self._view(lo, cand.size + spec.fft_len)
        if win.shape[1] < cand.size + spec.fft_len:
            return None
        rot = np.exp(-2j * np.pi * cfo * np.arange(win.shape[1]) / spec.sample_rate)
        w = win * rot
        seg = np.lib.stride_tricks.sliding_window_view(w, spec.fft_len, axis=1)[:, :cand.size]
        C = (np.abs(seg @ np.conj(self._pre)) ** 2).sum(0)
        peak = int(np.argmax(C))
        energy = (np.abs(seg[:, peak]) ** 2).sum() * (np.abs(self._pre) ** 2).sum()
        if energy <= 0 or C[peak] / energy < self.min_xcorr:
            return None  # metric plateau without our preamble (noise, interference)
        # First arrival: the earliest local maximum within first_path_db of the strongest one
        # (the strongest path's own sidelobes are not local maxima).
        Cp = np.r_[-np.inf, C, -np.inf]
        local = (C >= Cp[:-2]) & (C >= Cp[2:]) & (C >= self.first_path * C[peak])
        a = max(0, peak - spec.cp_len)
        body = lo + a + int(np.flatnonzero(local[a:peak + 1])[0])
        start = body - spec.cp_len
        # Noise from the two identical halves of the preamble body.
        pb = self._view(body, spec.fft_len) * np.exp(
            -2j * np.pi * cfo * (np.arange(spec.fft_len) + body - start) / spec.sample_rate)
        h1, h2 = pb[:, :L], pb[:, L:]
        noise_var = float(np.mean(np.abs(h2 - h1) ** 2) / 2)
        sig = max(float(np.mean(np.abs(pb) ** 2)) - noise_var, 1e-12)
        noise_var = max(noise_var, 1e-9)
        snr_db = 10 * np.log10(sig * spec.fft_len / spec.n_occ / noise_var)
        cfo += self._cp_cfo(start, cfo)
        # Data symbols: CFO removed with the phase referenced to the frame start.
        s0 = start + spec.symbol_len + spec.cp_len - self.backoff
        idx = np.arange(spec.n_sym)[:, None] * spec.symbol_len + np.arange(spec.fft_len)
        span = self._view(s0, int(idx[-1, -1]) + 1)
        t0 = (s0 - start + np.arange(spec.n_sym) * spec.symbol_len) / spec.sample_rate
        rot = np.exp(-2j * np.pi * cfo * t0)[:, None] * np.exp(-2j * np.pi * cfo * np.arange(spec.fft_len) / spec.sample_rate)
        bodies = span[:, idx] * rot.astype(np.complex64)
        grid = fft_symbols(bodies, spec) * self._backoff_fix
        if self._pilot_rows is not None:
            r1, r2, bins, ref, dt = self._pilot_rows
            corr = np.sum(np.conj(grid[:, r1, bins]) * grid[:, r2, bins] * ref)
            dcfo = float(np.angle(corr) / (2 * np.pi * dt))
            grid = grid * np.exp(-2j * np.pi * dcfo * self._sym_t)[None, :, None].astype(np.complex64)
            cfo += dcfo
        i0 = start - self._base
        bad = bool(self._bad[max(i0, 0):i0 + spec.frame_len].any())
        frame = SyncFrame(self.frames_emitted, int(start), float(cfo), noise_var, float(snr_db),
                          grid.astype(np.complex64), bad)
        self.frames_emitted += 1
        return frame

    def _cp_cfo(self, start: int, cfo: float) -> float:
        """Residual CFO from every data symbol's cyclic prefix against the symbol's tail: a
        fft_len lag (+-half a subcarrier of range) averaged over n_sym x cp/2 x n_rx samples,
        precise enough that the pilot stage's +-740 Hz range is not exceeded at low SNR. The
        first half of each CP is skipped: it holds the previous symbol's multipath tail."""
        spec = self.spec
        lo = spec.cp_len // 2
        first = start + spec.symbol_len
        span = self._view(first, spec.n_sym * spec.symbol_len)
        if span.shape[1] < spec.n_sym * spec.symbol_len:
            return 0.0
        sym = span.reshape(self.n_rx, spec.n_sym, spec.symbol_len)
        corr = np.sum(np.conj(sym[:, :, lo:spec.cp_len]) * sym[:, :, lo + spec.fft_len:])
        rot = np.exp(-2j * np.pi * cfo * spec.fft_len / spec.sample_rate)
        return float(np.angle(corr * rot) / (2 * np.pi * spec.fft_len / spec.sample_rate))

    def _trim(self) -> None:
        keep_from = self._pos - 4 * self.spec.symbol_len
        drop = keep_from - self._base
        if drop > 0:
            self._buf = self._buf[:, drop:]
            self._bad = self._bad[drop:]
            self._base += drop
