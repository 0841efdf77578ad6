"""Hardware impairments on time-domain streams, streaming (state carries across calls):
- PA nonlinearity at the transmitter: Rapp (AM/AM) or Saleh (AM/AM + AM/PM), set by input
  back-off from the signal's RMS;
- receiver phase noise: Wiener (Lorentzian spectrum of a given 3 dB linewidth) or a PSD mask
  (dBc/Hz at frequency offsets) synthesised by filtering white noise;
- IQ amplitude/phase imbalance: y = k1 x + k2 conj(x);
- low-resolution ADC with AGC: the gain tracks the input RMS, I and Q are quantised to b bits
  over +-clip RMS, then scaled back;
- residual CFO: a frequency offset that drifts linearly in time (Hz/s), which a per-frame
  estimate cannot remove entirely.
Each model is a small class with ``process(x [n_ch, N]) -> y`` so channel_sim can chain them.
"""
from __future__ import annotations

import dataclasses

import numpy as np
from scipy import signal


class RappPA:
    """AM/AM g(A) = A / (1 + (A/A_sat)^(2p))^(1/2p); A_sat = RMS * 10^(IBO/20)."""

    def __init__(self, backoff_db: float = 6.0, smoothness: float = 2.0, rms: float = np.sqrt(72 / 128)):
        self.a_sat = rms * 10 ** (backoff_db / 20)
        self.p = float(smoothness)

    def process(self, x):
        a = np.abs(x)
        g = 1.0 / (1.0 + (a / self.a_sat) ** (2 * self.p)) ** (1 / (2 * self.p))
        return (x * g).astype(np.complex64)


class SalehPA:
    """AM/AM A(r) = aa r / (1 + ba r^2), AM/PM phi(r) = ap r^2 / (1 + bp r^2) with Saleh's
    travelling-wave-tube constants; the input is scaled so its RMS sits ``backoff_db`` below
    the AM/AM saturation point (r = 1/sqrt(ba)), and the output is scaled back to unit gain at
    small amplitude."""

    def __init__(self, backoff_db: float = 6.0, rms: float = np.sqrt(72 / 128),
                 aa: float = 2.1587, ba: float = 1.1517, ap: float = 4.0033, bp: float = 9.1040):
        self.aa, self.ba, self.ap, self.bp = aa, ba, ap, bp
        self.scale = (1 / np.sqrt(ba)) * 10 ** (-backoff_db / 20) / rms

    def process(self, x):
        r = np.abs(x) * self.scale
        am = self.aa * r / (1 + self.ba * r ** 2)
        pm = self.ap * r ** 2 / (1 + self.bp * r ** 2)
        return (np.exp(1j * (np.angle(x) + pm)) * am / (self.aa * self.scale)).astype(np.complex64)


class WienerPhaseNoise:
    """phi[n] = phi[n-1] + N(0, 2 pi linewidth / fs): Lorentzian spectrum, 3 dB linewidth."""

    def __init__(self, linewidth_hz: float, sample_rate: float, n_ch: int = 1, seed: int = 0,
                 common: bool = True):
        self.sigma = np.sqrt(2 * np.pi * linewidth_hz / sample_rate)
        self.rng = np.random.default_rng(seed)
        self.phi = np.zeros(1 if common else n_ch)

    def process(self, x):
        steps = self.rng.standard_normal((self.phi.size, x.shape[-1])) * self.sigma
        phi = self.phi[:, None] + np.cumsum(steps, axis=1)
        self.phi = phi[:, -1] % (2 * np.pi)
        return (x * np.exp(1j * phi)).astype(np.complex64)


class MaskPhaseNoise:
    """Phase noise with a PSD given as (offset Hz, dBc/Hz) points: white noise shaped by an FIR
    designed from the mask (interpolated in log-frequency), filtered with state across calls."""

    def __init__(self, mask: list[tuple[float, float]], sample_rate: float, n_ch: int = 1, seed: int = 0,
                 taps: int = 1025, common: bool = True):
        f = np.fft.rfftfreq(2 * (taps // 2), 1 / sample_rate)
        off, lvl = np.array(mask, float).T
        L = np.interp(np.log10(np.maximum(f, off[0])), np.log10(off), lvl)  # dBc/Hz
        # White unit-variance noise has a two-sided PSD of 1/fs; the phase's two-sided PSD is L(f).
        amp = np.sqrt(10 ** (L / 10) * sample_rate)
        self.h = np.fft.fftshift(np.fft.irfft(amp)).astype(float)[:taps]
        self.rng = np.random.default_rng(seed)
        n = 1 if common else n_ch
        self.zi = np.zeros((n, self.h.size - 1))

    def process(self, x):
        w = self.rng.standard_normal((self.zi.shape[0], x.shape[-1]))
        phi, self.zi = signal.lfilter(self.h, [1.0], w, axis=1, zi=self.zi)
        return (x * np.exp(1j * phi)).astype(np.complex64)


class IQImbalance:
    """Receiver IQ imbalance: amplitude ``gain_db`` and phase ``phase_deg`` between I and Q."""

    def __init__(self, gain_db: float = 0.5, phase_deg: float = 3.0):
        g, ph = 10 ** (gain_db / 20), np.deg2rad(phase_deg)
        self.k1 = (1 + g * np.exp(-1j * ph)) / 2
        self.k2 = (1 - g * np.exp(1j * ph)) / 2

    @property
    def irr_db(self) -> float:
        """Image rejection ratio."""
        return float(10 * np.log10(abs(self.k1) ** 2 / abs(self.k2) ** 2))

    def process(self, x):
        return (self.k1 * x + self.k2 * np.conj(x)).astype(np.complex64)


class QuantizingADC:
    """b-bit ADC per I and Q behind an AGC whose gain follows the RMS with time constant
    ``agc_time`` samples; full scale = ``clip`` x RMS. Output rescaled by the AGC gain."""

    def __init__(self, bits: int = 4, clip: float = 3.0, agc_time: float = 2000.0, n_ch: int = 1):
        if not 1 <= bits <= 16:
            raise ValueError(f"ADC bits must be in [1, 16], got {bits}")
        self.levels = 2 ** bits
        self.clip, self.alpha = clip, 1.0 / agc_time
        self.pow = np.ones(n_ch)

    def process(self, x):
        # AGC power per channel: one-pole average, evaluated blockwise (fine at these rates).
        p_block = np.mean(np.abs(x) ** 2, axis=-1)
        a = min(1.0, self.alpha * x.shape[-1])
        self.pow = np.maximum((1 - a) * self.pow + a * p_block, 1e-20)
        fs = self.clip * np.sqrt(self.pow)[:, None]
        step = 2 * fs / self.levels

        def q(v):
            return np.clip((np.floor(v / step) + 0.5) * step, -fs + step / 2, fs - step / 2)

        return (q(x.real) + 1j * q(x.imag)).astype(np.complex64)


class CFODrift:
    """Residual CFO: offset cfo0 + drift * t (Hz, Hz/s), phase continuous across calls."""

    def __init__(self, cfo_hz: float, drift_hz_s: float, sample_rate: float):
        self.f0, self.drift, self.fs = cfo_hz, drift_hz_s, sample_rate
        self.n = 0

    def process(self, x):
        t = (self.n + np.arange(x.shape[-1])) / self.fs
        self.n += x.shape[-1]
        ph = 2 * np.pi * (self.f0 * t + 0.5 * self.drift * t ** 2)
        return (x * np.exp(1j * ph)).astype(np.complex64)


@dataclasses.dataclass
class Impairments:
    """Settings of all impairments (None/0 = off), as channel_sim takes them."""
    pa: str = "none"  # none | rapp | saleh
    pa_backoff_db: float = 6.0
    phase_noise: str = "none"  # none | wiener | mask
    pn_linewidth_hz: float = 100.0
    pn_mask: tuple = ((1e3, -80.0), (1e4, -90.0), (1e5, -110.0), (1e6, -130.0))
    iq_gain_db: float = 0.0
    iq_phase_deg: float = 0.0
    adc_bits: int = 0  # 0 = ideal
    cfo_drift_hz_s: float = 0.0

    def tx_chain(self, n_tx: int):
        if self.pa == "rapp":
            return [RappPA(self.pa_backoff_db)]
        if self.pa == "saleh":
            return [SalehPA(self.pa_backoff_db)]
        if self.pa != "none":
            raise ValueError(f"unknown PA model {self.pa!r}; valid: none, rapp, saleh")
        return []

    def rx_chain(self, n_rx: int, fs: float, seed: int = 0):
        out = []
        if self.cfo_drift_hz_s:
            out.append(CFODrift(0.0, self.cfo_drift_hz_s, fs))
        if self.phase_noise == "wiener":
            out.append(WienerPhaseNoise(self.pn_linewidth_hz, fs, n_rx, seed))
        elif self.phase_noise == "mask":
            out.append(MaskPhaseNoise(list(self.pn_mask), fs, n_rx, seed))
        elif self.phase_noise != "none":
            raise ValueError(f"unknown phase noise model {self.phase_noise!r}; valid: none, wiener, mask")
        if self.iq_gain_db or self.iq_phase_deg:
            out.append(IQImbalance(self.iq_gain_db, self.iq_phase_deg))
        if self.adc_bits:
            out.append(QuantizingADC(self.adc_bits, n_ch=n_rx))
        return out
