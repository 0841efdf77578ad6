"""Streaming multi-antenna channel on time-domain samples: TDL fading with Doppler, antenna
correlation, fractional timing offset, CFO and AWGN. State carries across calls, so a stream can
be processed in chunks of any size with the same result.

Each tap is a windowed-sinc fractional delay; tap gains are held for ``update`` samples (16
samples are 8 us at 1.92 Msps, far below the coherence time at 1 kHz Doppler). The filter has a
fixed latency of ``pre`` samples. ``frame_truth`` returns the channel a receiver sees on the grid
of a frame, for NMSE in the live link.
"""
from __future__ import annotations

import numpy as np

from ..frame import FrameSpec
from .awgn import complex_noise, noise_var_for_snr
from .fading import TapFading
from .grid import carrier_freqs
from .profiles import make_profile


class StreamChannel:
    def __init__(self, n_tx: int, n_rx: int, sample_rate: float, profile: str = "TDL-A",
                 delay_spread: float = 30e-9, doppler: float = 0.0, snr_db: float | None = 20.0,
                 cfo_hz: float = 0.0, timing_offset: float = 0.0, rx_corr: float = 0.0,
                 tx_corr: float = 0.0, seed: int = 0, update: int = 16, pre: int = 8,
                 impairments=None):
        if n_tx < 1 or n_rx < 1:
            raise ValueError(f"need n_tx >= 1 and n_rx >= 1, got {n_tx} x {n_rx}")
        if timing_offset < 0:
            raise ValueError(f"timing_offset must be >= 0 samples, got {timing_offset}")
        self.n_tx, self.n_rx, self.fs = n_tx, n_rx, float(sample_rate)
        self.profile = make_profile(profile, delay_spread)
        self.doppler, self.cfo_hz, self.timing_offset = float(doppler), float(cfo_hz), float(timing_offset)
        self.update, self.pre = int(update), int(pre)
        # Update blocks between exact fading evaluations: the phase of the fastest sinusoid may
        # advance ~0.13 rad between them (linear-interpolation error < -50 dB).
        self.coarse = max(1, int(0.02 / max(doppler, 1e-9) / (self.update / self.fs)))
        self._rng = np.random.default_rng(seed)
        # One long realisation: equal-amplitude sinusoids keep its time-average power at 1; a
        # static channel is one draw of Rayleigh fading instead.
        self.fading = TapFading(self.profile, doppler, n_rx, n_tx, np.random.default_rng([seed, 1]),
                                n_sin=32 if doppler > 0 else 16, rx_corr=rx_corr, tx_corr=tx_corr,
                                ergodic=doppler > 0)
        self.set_snr(snr_db)
        d = self.profile.delays * self.fs + self.timing_offset  # tap delays in samples
        self.K = 2 * self.pre + int(np.ceil(d.max())) + 1
        k = np.arange(self.K)[None, :] - self.pre - d[:, None]  # [L, K]
        win = np.where(np.abs(k) <= self.pre, np.kaiser(2 * 1024 + 1, 6.0)[
            np.clip(np.round((k / self.pre + 1) * 1024).astype(int), 0, 2048)], 0)
        self._sinc = (np.sinc(k) * win).astype(np.complex64)  # [L, K]
        self._hist = np.zeros((n_tx, self.K - 1), np.complex64)
        self.n = 0  # samples processed
        self._seed = seed
        self.set_impairments(impairments)

    def set_impairments(self, impairments=None) -> None:
        """Hardware impairments (sim.impairments.Impairments) around the linear channel: PA
        models before it (per tx stream), phase noise / IQ imbalance / ADC after the noise."""
        from .impairments import Impairments

        imp = impairments or Impairments()
        tx, rx = imp.tx_chain(self.n_tx), imp.rx_chain(self.n_rx, self.fs, seed=self._seed + 7)
        self.impairments, self._tx_chain, self._rx_chain = imp, tx, rx  # only once all are valid

    # ---- parameters settable while running -------------------------------------------------
    def set_snr(self, snr_db: float | None) -> None:
        self.snr_db = snr_db
        self.noise_var = 0.0 if snr_db is None else float(noise_var_for_snr(snr_db))

    def set_cfo(self, cfo_hz: float) -> None:
        self.cfo_hz = float(cfo_hz)

    # ---- processing ---------------------------------------------------------------------------
    def _block_taps(self, b0: int, nb: int) -> np.ndarray:
        """FIR taps [nb, rx, tx, K] for update-blocks b0 .. b0+nb-1."""
        return self._gains_at_blocks(b0 + np.arange(nb)) @ self._sinc

    def _gains_at_blocks(self, blocks: np.ndarray) -> np.ndarray:
        """Tap gains [n, rx, tx, L] at the centres of update blocks. The sum of sinusoids is
        evaluated every ``coarse`` blocks and interpolated linearly in between; a static channel
        is evaluated once."""
        if self.doppler == 0 and not self.profile.los:
            if not hasattr(self, "_static"):
                self._static = self.fading.gains(np.zeros(1))[0, 0]
            return np.broadcast_to(self._static, (len(blocks), *self._static.shape))
        c = self.coarse
        pos = blocks / c
        i0 = int(np.floor(pos.min()))
        idx = np.arange(i0, int(np.floor(pos.max())) + 2)
        g = self.fading.gains((idx * c * self.update + self.update / 2) / self.fs)[0]
        j = np.floor(pos).astype(int) - i0
        w = (pos - np.floor(pos)).astype(np.float32)[:, None, None, None]
        return g[j] * (1 - w) + g[j + 1] * w

    def process(self, x: np.ndarray, chunk: int = 4096) -> np.ndarray:
        x = np.asarray(x, np.complex64)
        if x.ndim == 1 and self.n_tx == 1:
            x = x[None]
        if x.ndim != 2 or x.shape[0] != self.n_tx:
            raise ValueError(f"channel expects [n_tx={self.n_tx}, N] samples, got {x.shape}")
        for stage in self._tx_chain:
            x = stage.process(x)
        out = np.empty((self.n_rx, x.shape[1]), np.complex64)
        for s in range(0, x.shape[1], chunk):
            out[:, s:s + chunk] = self._process(x[:, s:s + chunk])
        for stage in self._rx_chain:
            out = stage.process(out)
        return out

    def _process(self, x: np.ndarray) -> np.ndarray:
        N = x.shape[1]
        xp = np.concatenate([self._hist, x], axis=1)
        self._hist = xp[:, -(self.K - 1):] if self.K > 1 else xp[:, :0]
        # win[tx, n, k] = x[n - k]: reversed sliding window so taps index delay directly.
        win = np.lib.stride_tricks.sliding_window_view(xp, self.K, axis=1)[:, :, ::-1]
        n_abs = self.n + np.arange(N)
        u = self.update
        b0 = self.n // u
        taps = self._block_taps(b0, (self.n + N - 1) // u - b0 + 1)  # [nb, rx, tx, K]
        y = np.empty((self.n_rx, N), np.complex64)
        # Whole update blocks as one batched matrix product; ragged ends sample by sample.
        head = min(N, (-self.n) % u)
        body = (N - head) // u * u
        for a, e in ((0, head), (head + body, N)):
            if e > a:
                h = taps[n_abs[a:e] // u - b0]  # [n, rx, tx, K]
                y[:, a:e] = np.einsum("nrxk,xnk->rn", h, win[:, a:e])
        if body:
            nb = body // u
            w = win[:, head:head + body].reshape(self.n_tx, nb, u, self.K)
            t = taps[(self.n + head) // u - b0:][:nb]  # [nb, rx, tx, K]
            acc = np.zeros((nb, u, self.n_rx), np.complex64)
            for tx in range(self.n_tx):
                acc += w[tx] @ t[:, :, tx, :].transpose(0, 2, 1)
            y[:, head:head + body] = acc.reshape(body, self.n_rx).T
        if self.cfo_hz:
            y *= np.exp(2j * np.pi * self.cfo_hz * n_abs / self.fs).astype(np.complex64)
        if self.noise_var:
            y += complex_noise(self._rng, y.shape, self.noise_var, sample_major=True)
        self.n += N
        return y

    # ---- truth for the live link -----------------------------------------------------------
    @property
    def latency(self) -> int:
        return self.pre

    def frame_truth(self, spec: FrameSpec, frame_start_in: int, start_est: int | None = None,
                    cfo_est: float | None = None) -> np.ndarray:
        """Effective channel complex64 [n_rx, n_tx, n_sym, n_occ] of the frame whose preamble
        entered at input sample ``frame_start_in``, as a receiver sees it after placing its frame
        start at output sample ``start_est`` (default: the true arrival) and removing ``cfo_est``
        (default: the true CFO) with phase referenced to that start."""
        n0 = frame_start_in + self.pre
        f = carrier_freqs(spec)
        tau = self.profile.delays + self.timing_offset / self.fs
        steer = np.exp(-2j * np.pi * f[:, None] * tau[None, :])  # [K, L]
        # Each symbol sees the mean of the piecewise-constant gains over its FFT window.
        w0 = n0 + (np.arange(spec.n_sym) + 1) * spec.symbol_len + spec.cp_len - self.pre
        blk = (w0[:, None] + np.arange(spec.fft_len)) // self.update  # [S, fft]
        ub, inv = np.unique(blk, return_inverse=True)
        W = np.zeros((spec.n_sym, ub.size))
        np.add.at(W, (np.repeat(np.arange(spec.n_sym), spec.fft_len), inv.reshape(-1)), 1.0 / spec.fft_len)
        g = np.tensordot(W, self._gains_at_blocks(ub), axes=(1, 0))  # [S, rx, tx, L]
        H = np.einsum("srxl,kl->rxsk", g, steer).astype(np.complex64)
        H *= np.exp(2j * np.pi * self.cfo_hz * n0 / self.fs) * spec.tx_amplitude
        if start_est is None and cfo_est is None:
            return H
        return align_truth(H, spec, (n0 if start_est is None else start_est) - n0, self.cfo_hz,
                           self.cfo_hz if cfo_est is None else cfo_est)


def align_truth(H: np.ndarray, spec: FrameSpec, delta: float, cfo_hz: float, cfo_est: float) -> np.ndarray:
    """Channel of a frame seen with ideal timing and CFO removal -> as seen by a receiver whose
    frame start is ``delta`` samples late and which removed ``cfo_est`` instead of ``cfo_hz``
    (phase referenced to its own start): a linear phase over carriers plus the CFO terms."""
    k = np.asarray(spec.occupied)
    u = (np.arange(spec.n_sym) + 1) * spec.symbol_len + spec.cp_len + spec.fft_len / 2
    ph_t = np.exp(2j * np.pi * (cfo_hz * delta + (cfo_hz - cfo_est) * u) / spec.sample_rate)
    ph_k = np.exp(2j * np.pi * k * delta / spec.fft_len)
    return (H * ph_t[:, None] * ph_k[None, :]).astype(np.complex64)
