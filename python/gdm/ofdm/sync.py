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
Non-finite (or absurdly large) input samples are zeroed; frames overlapping them are flagged,
never silently decoded.
"""
from __future__ import annotations

import dataclasses
import os

import numpy as np
import scipy.fft

from ..frame import FrameSpec
from . import sync_kernels
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


_MAX_ABS = 1e15


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
        # samples live in a growable store: a push copies its own samples only (concatenating
        # the buffer copied all of it on every call)
        self._store = np.zeros((n_rx, 1 << 14), np.complex64)
        self._bad_store = np.zeros(1 << 14, bool)
        self._lo = self._hi = 0
        self._base = 0  # absolute index of _buf[:, 0]
        self._pos = 0  # absolute index where the next search starts
        self._expect = False  # a frame just ended: search a short span first
        self.frames_emitted = 0
        self.detections_rejected = 0  # preamble-like metric that failed verification
        self.nonfinite_samples = 0
        k = np.arange(spec.fft_len) - spec.fft_len // 2
        self._kernel = None if os.environ.get("GDM_NO_NUMBA") else sync_kernels.sc_metric
        self._backoff_fix = np.exp(2j * np.pi * k * self.backoff / spec.fft_len).astype(np.complex64)

    # ---- stream interface --------------------------------------------------------------
    def push(self, x) -> None:
        """x: samples [n_rx, N], or a list of n_rx sample arrays of one length (a block's
        input buffers, copied once, straight into the store)."""
        rows = list(x) if isinstance(x, (list, tuple)) else None
        if rows is None:
            x = np.asarray(x, np.complex64)
            if x.ndim != 2 or x.shape[0] != self.n_rx:
                raise ValueError(f"expected samples [n_rx={self.n_rx}, N], got shape {x.shape}")
            rows = list(x)
        elif len(rows) != self.n_rx or len({len(r) for r in rows}) != 1:
            raise ValueError(f"expected {self.n_rx} sample arrays of one length, got lengths "
                             f"{[len(r) for r in rows]}")
        n = len(rows[0])
        self._reserve(n)
        # NaN/Inf, and magnitudes whose squares overflow float32 (no ADC produces them), are
        # invalid: zeroed, counted, and the frames they touch are flagged.
        bad = self._bad_store[self._hi:self._hi + n]
        bad[:] = False
        if self._kernel is not None:
            for a, r in enumerate(rows):
                sync_kernels.store_checked(np.asarray(r, np.complex64), self._store[a, self._hi:self._hi + n],
                                           bad, _MAX_ABS)
        else:
            x = np.asarray(rows, np.complex64)
            good = np.isfinite(x) & (np.abs(x) < _MAX_ABS)
            bad |= ~good.all(axis=0)
            self._store[:, self._hi:self._hi + n] = np.where(good, x, 0)
        if bad.any():
            self.nonfinite_samples += int(bad.sum())
        self._hi += n

    def _reserve(self, n: int) -> None:
        if self._hi + n > self._bad_store.size:
            live = self._hi - self._lo
            cap = max(self._bad_store.size, 2 * (live + n))
            store, bad_store = np.empty((self.n_rx, cap), np.complex64), np.empty(cap, bool)
            store[:, :live], bad_store[:live] = self._buf, self._bad
            self._store, self._bad_store, self._lo, self._hi = store, bad_store, 0, live

    @property
    def _buf(self) -> np.ndarray:
        return self._store[:, self._lo:self._hi]

    @property
    def _bad(self) -> np.ndarray:
        return self._bad_store[self._lo:self._hi]

    @property
    def buffered_end(self) -> int:
        return self._base + self._hi - self._lo

    def pop_frames(self) -> list[SyncFrame]:
        """Frames complete in the buffer. Detection runs frame by frame (where the next frame
        can start depends on the last), everything after it on all detections at once."""
        out = []
        while True:
            cands = self._coarse_pass()
            if not cands:
                break
            frames, rejected = self._acquire_batch(cands)
            out += frames
            if rejected is not None:
                # Verification failed: search again right after that plateau.
                self.detections_rejected += 1
                self._pos, self._expect = rejected + self.spec.symbol_len, False
                continue
            # Next preamble may follow immediately: resume a little before the frame end.
            self._pos = frames[-1].sample_offset + self.spec.frame_len - self.spec.cp_len
            self._expect = True
            break  # the coarse pass went as far as the samples allow
        self._trim()
        return out

    def _coarse_pass(self):
        """Coarse detections [(d0, m, P at the plateau maximum)] from the current position on,
        assuming each is a frame; stops where a frame is not yet complete."""
        spec, L = self.spec, self.L
        if self._kernel is not None:  # the loop below, compiled (sync_kernels.coarse_pass)
            cap = (self._hi - self._lo) // spec.frame_len + 2
            d0s, ms, Ps = np.empty(cap, np.int64), np.empty(cap, np.int64), np.empty(cap, np.complex128)
            k, pos, expect, rej = sync_kernels.coarse_pass(
                self._buf, self._pos - self._base, self._expect, L, spec.symbol_len, spec.frame_len,
                spec.cp_len, self.chunk, self.threshold, d0s, ms, Ps)
            self.detections_rejected += rej
            cands = [(int(d0s[i]) + self._base, int(ms[i]), complex(Ps[i])) for i in range(k)]
            if not cands:
                self._pos, self._expect = pos + self._base, bool(expect)
            return cands
        cands = []
        pos, expect = self._pos, self._expect
        while True:
            # A detection at d needs the plateau metric over [d, d + symbol_len). Right after a
            # frame the next preamble is most likely immediately there: look at a short span.
            n = min(self.buffered_end - pos - 2 * L - spec.symbol_len, 2 * spec.symbol_len if expect else self.chunk)
            expect = False
            if n <= 0:
                break
            d0 = self._detect(pos, n)
            if d0 is None:
                pos += n
                continue
            M, P = self._metric(d0, spec.symbol_len)
            m = int(np.argmax(M))
            # A preamble holds the metric up over its cyclic prefix; noise crosses only briefly.
            if M[max(0, m - spec.cp_len // 4):m + spec.cp_len // 4 + 1].mean() < self.threshold:
                self.detections_rejected += 1
                pos = d0 + spec.symbol_len
                continue
            if d0 + m + spec.frame_len > self.buffered_end:
                pos = d0  # the frame starts no later than the plateau maximum; not whole yet
                break
            cands.append((d0, m, P[m]))
            # The start lies within [d0+m-cp-L/4, d0+m]: resume before the next possible preamble.
            pos, expect = d0 + m + spec.frame_len - 2 * spec.cp_len - L // 4, True
        if not cands:
            self._pos, self._expect = pos, expect
        return cands

    def _gather(self, starts: np.ndarray, length: int) -> np.ndarray:
        """[n_rx, K, length] windows of the buffer at absolute ``starts``."""
        idx = (starts - self._base)[:, None] + np.arange(length)
        return self._buf[:, np.clip(idx, 0, self._buf.shape[1] - 1)]

    def _acquire_batch(self, cands):
        """Fine timing, verification, noise, three CFO stages and FFT for K detections at once.
        -> (frames accepted in order up to the first rejected one, d0 of that one or None)."""
        spec, L, fs = self.spec, self.L, self.spec.sample_rate
        d0 = np.array([c[0] for c in cands])
        m = np.array([c[1] for c in cands])
        cfo = np.angle(np.array([c[2] for c in cands])) / np.pi * spec.subcarrier_spacing
        K = d0.size
        # Fine timing: correlate with the preamble body at every start the plateau allows.
        W = 2 * spec.cp_len + L // 2 + 1
        lo = d0 + m - spec.cp_len - L // 4
        if self._kernel is not None:
            # the CFO's phase ramp folded into the reference (a common phase leaves |.|^2 alone)
            q = np.conj(self._pre)[None] * np.exp(-2j * np.pi * cfo[:, None] * np.arange(spec.fft_len) / fs)
            C = np.empty((K, W))
            sync_kernels.fine_xcorr(self._buf, lo - self._base, W, q, C)
        else:
            win = self._gather(lo, W + spec.fft_len - 1)
            win = win * np.exp(-2j * np.pi * cfo[:, None] * np.arange(win.shape[2]) / fs)
            seg = np.lib.stride_tricks.sliding_window_view(win, spec.fft_len, axis=2)  # [rx, K, W, F]
            C = (np.abs(seg @ np.conj(self._pre)) ** 2).sum(0)  # [K, W]
        j = np.arange(W)
        valid = (lo[:, None] + j >= self._base) & (lo[:, None] + j <= self.buffered_end - spec.frame_len + spec.cp_len)
        C = np.where(valid, C, -np.inf)
        peak = np.argmax(C, axis=1)
        cpk = C[np.arange(K), peak]
        energy = (np.abs(self._gather(lo + peak, spec.fft_len)) ** 2).sum(axis=(0, 2)) * np.sum(np.abs(self._pre) ** 2)
        ok = (energy > 0) & (cpk >= self.min_xcorr * np.maximum(energy, 1e-30))
        # First arrival: the earliest local maximum within first_path_db of the strongest one
        # (the strongest path's own sidelobes are not local maxima).
        Cp = np.pad(C, ((0, 0), (1, 1)), constant_values=-np.inf)
        local = (C >= Cp[:, :-2]) & (C >= Cp[:, 2:]) & (C >= self.first_path * cpk[:, None])
        local &= (j >= peak[:, None] - spec.cp_len) & (j <= peak[:, None])
        body = lo + np.argmax(local, axis=1)
        start = body - spec.cp_len
        # Noise from the two identical halves of the preamble body.
        pb = self._gather(body, spec.fft_len) * np.exp(
            -2j * np.pi * cfo[:, None] * (np.arange(spec.fft_len) + spec.cp_len) / fs)
        nv = np.mean(np.abs(pb[..., L:] - pb[..., :L]) ** 2, axis=(0, 2)) / 2
        sig = np.maximum(np.mean(np.abs(pb) ** 2, axis=(0, 2)) - nv, 1e-12)
        nv = np.maximum(nv, 1e-9)
        snr_db = 10 * np.log10(sig * spec.fft_len / spec.n_occ / nv)
        # Second CFO stage: cyclic prefix against symbol tail, every data symbol (+-half a
        # subcarrier); the first half of each CP holds the previous symbol's multipath tail.
        h = spec.cp_len // 2
        if self._kernel is not None:
            corr = np.empty(K, np.complex128)
            sync_kernels.cp_corr(self._buf, start + spec.symbol_len - self._base, spec.n_sym, spec.symbol_len,
                                 spec.fft_len, h, spec.cp_len, corr)
        else:
            sym = self._gather(start + spec.symbol_len, spec.n_sym * spec.symbol_len).reshape(
                self.n_rx, K, spec.n_sym, spec.symbol_len)
            corr = np.sum(np.conj(sym[..., h:spec.cp_len]) * sym[..., h + spec.fft_len:], axis=(0, 2, 3))
        lag = spec.fft_len / fs
        cfo = cfo + np.angle(corr * np.exp(-2j * np.pi * cfo * lag)) / (2 * np.pi * lag)
        # Data symbols: CFO removed with the phase referenced to the frame start.
        off = spec.symbol_len + spec.cp_len - self.backoff + np.arange(spec.n_sym) * spec.symbol_len
        # exp(-2j pi cfo (off + n) / fs) as the outer product of its [K, S] and [K, F] factors
        w = -2j * np.pi * cfo[:, None] / fs
        e_sym, e_n = np.exp(w * off), np.exp(w * np.arange(spec.fft_len))
        if self._kernel is not None:
            bodies = np.empty((self.n_rx, K, spec.n_sym, spec.fft_len), np.complex64)
            sync_kernels.bodies(self._buf, start - self._base, off, self.backoff, e_sym, e_n, bodies)
            grid = scipy.fft.fft(bodies, norm="ortho", axis=-1, overwrite_x=True)  # [rx, K, S, F]
        else:
            bodies = sym.reshape(self.n_rx, K, -1)[..., (off - spec.symbol_len)[:, None] + np.arange(spec.fft_len)]
            bodies = bodies * (e_sym[:, :, None] * e_n[:, None, :]).astype(np.complex64)
            grid = fft_symbols(bodies, spec) * self._backoff_fix  # [rx, K, S, F]
        if self._pilot_rows is not None:
            r1, r2, bins, ref, dt = self._pilot_rows
            pc = np.sum(np.conj(grid[:, :, r1, bins]) * grid[:, :, r2, bins] * ref, axis=(0, 2))
            dcfo = np.angle(pc) / (2 * np.pi * dt)
            grid = grid * np.exp(-2j * np.pi * dcfo[:, None] * self._sym_t)[None, :, :, None].astype(np.complex64)
            cfo = cfo + dcfo
        n_ok = K if ok.all() else int(np.argmin(ok))
        frames = []
        for k in range(n_ok):
            i0 = int(start[k]) - self._base
            bad = bool(self._bad[max(i0, 0):i0 + spec.frame_len].any())
            frames.append(SyncFrame(self.frames_emitted, int(start[k]), float(cfo[k]), float(nv[k]),
                                    float(snr_db[k]), np.ascontiguousarray(grid[:, k]), bad))
            self.frames_emitted += 1
        return frames, (None if n_ok == K else int(d0[n_ok]))

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
        if self._kernel is not None:
            M, P = np.empty(n), np.empty(n, np.complex128)
            self._kernel(self._buf, start - self._base, n, L, M, P)
            return M, P
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

    def _trim(self) -> None:
        keep_from = self._pos - 4 * self.spec.symbol_len
        drop = keep_from - self._base
        if drop > 0:
            self._lo += drop
            self._base += drop
