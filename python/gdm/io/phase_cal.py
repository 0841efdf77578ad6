"""Per-session phase calibration between the receive channels of a multi-channel radio.

Why: on many devices the relative phase of the RX channels is not stable across restarts and
retunes (X310 with two UBX/SBX boards: each synthesizer locks with its own phase). A shared LO
(B210, TwinRX with the companion LO) keeps the channels coherent within a session, but the
offset between them is not guaranteed to be the same after a restart or retune, so measure it
per session rather than once per device. gr-gdm's own receiver does not need it: the pilots
estimate every RX chain's channel including its phase. Anything that uses the array's spatial structure does: the
LMMSE prior with antenna correlation, direction finding or beamforming, learned estimators
trained on array channels, and recordings compared across sessions.

Procedure (once per session, i.e. after every start of the flowgraph and every retune):
1. Feed all RX inputs the same signal: a 1:N splitter with equal-length cables from a TX
   (``usrp_tx.grc`` on another device, or the same device's TX in ``usrp_loopback.grc``; our
   frames are a good wideband signal) or a signal generator, with enough attenuation for the RX
   input (30 dB or more for a cabled USRP TX).
2. In the session itself: ``usrp_rx_2ch.py --calibrate 0.5`` (and ``usrp_loopback.py``) taps the
   first 0.5 s of uncorrected samples after 0.2 s of settling (``attach``), estimates, and sets the
   per-channel correction (one ``blocks.multiply_const_cc`` per channel before the receiver) while
   the flowgraph keeps running; ``--phase-cal-save cal.json`` keeps the numbers.
3. Then reconnect the antennas without retuning (an RF switch makes this automatic). The fixed
   phase of the antenna cables is not part of it (measure it once with the splitter at the
   antenna end of the cables if it matters).
Offline: ``cal = estimate(x)`` on any capture ``[n_ch, n]``, or ``python3 -m
gnuradio.gdm.io.phase_cal capture.sigmf-meta --save cal.json`` on a SigMF recording: the complex
gain of every channel relative to channel 0 from the cross-correlation (the integer lag of the
best alignment within ``max_lag``), the coherence (near 1 for a good capture) and the expected
phase error; ``apply(x, cal.corrections)`` corrects a capture. A saved calibration
(``--phase-cal cal.json``) is only valid for a later session on devices whose phase repeats
(check by calibrating twice across a restart and comparing).
"""
from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np


@dataclasses.dataclass
class PhaseCal:
    gains: np.ndarray          # complex [n_ch]: channel k ~ gains[k] * channel ref
    lags: np.ndarray           # int [n_ch]: lag (samples) of the cross-correlation peak
    coherence: np.ndarray      # [n_ch]: |normalized cross-correlation| in [0, 1]
    phase_std_rad: np.ndarray  # [n_ch]: expected standard deviation of the phase estimate
    n_samples: int
    ref: int = 0

    @property
    def phase_rad(self) -> np.ndarray:
        return np.angle(self.gains)

    @property
    def phase_deg(self) -> np.ndarray:
        return np.degrees(self.phase_rad)

    @property
    def amplitude(self) -> np.ndarray:
        return np.abs(self.gains)

    @property
    def corrections(self) -> np.ndarray:
        """Phase-only factors: multiply channel k by corrections[k] to align it with the ref."""
        return np.exp(-1j * self.phase_rad).astype(np.complex64)

    def gain_corrections(self) -> np.ndarray:
        """Phase and amplitude: 1 / gains."""
        return (1.0 / self.gains).astype(np.complex64)

    def to_dict(self) -> dict:
        return {"ref": self.ref, "n_samples": self.n_samples,
                "phase_deg": self.phase_deg.tolist(), "amplitude": self.amplitude.tolist(),
                "lags": self.lags.tolist(), "coherence": self.coherence.tolist(),
                "phase_std_deg": np.degrees(self.phase_std_rad).tolist(),
                "corrections": [[float(c.real), float(c.imag)] for c in self.corrections]}

    def save(self, path) -> Path:
        p = Path(path)
        p.write_text(json.dumps(self.to_dict(), indent=1) + "\n")
        return p

    def describe(self) -> str:
        rows = [f"ch{k}: phase {self.phase_deg[k]:+8.2f} deg (+-{np.degrees(self.phase_std_rad[k]):.2f}), "
                f"amplitude {self.amplitude[k]:.4f}, lag {int(self.lags[k]):+d}, coherence {self.coherence[k]:.4f}"
                for k in range(len(self.gains))]
        return "\n".join(rows)


def estimate(x, ref: int = 0, max_lag: int = 0) -> PhaseCal:
    """Complex gain of every channel relative to channel ``ref`` from a capture of one common
    signal, ``x`` complex [n_ch, n]. g_k = <x_k, x_ref> / <x_ref, x_ref> at the lag (within
    +-max_lag samples, 0 on one device, whose channels are sample aligned) where the
    cross-correlation peaks. Noise on the reference biases the amplitude low by SNR/(SNR+1);
    the phase is unbiased. Raises ValueError for a capture without a common signal."""
    x = np.asarray(x)
    if x.ndim != 2 or x.shape[1] < 16:
        raise ValueError(f"phase_cal: need a capture of shape [n_ch, n >= 16], got {x.shape}")
    n_ch, n = x.shape
    if not 0 <= ref < n_ch:
        raise ValueError(f"phase_cal: ref {ref} is not a channel of {n_ch}")
    x = x.astype(np.complex128)
    if not np.all(np.isfinite(x)):
        raise ValueError("phase_cal: the capture has NaN/Inf samples")
    max_lag = int(max_lag)
    r = x[ref]
    p_ref = float(np.vdot(r, r).real)
    if p_ref <= 0:
        raise ValueError(f"phase_cal: reference channel {ref} is all zeros")
    gains = np.ones(n_ch, np.complex128)
    lags = np.zeros(n_ch, int)
    coh = np.ones(n_ch)
    std = np.zeros(n_ch)
    for k in range(n_ch):
        if k == ref:
            continue
        best = None
        for lag in range(-max_lag, max_lag + 1):
            # x_k[t + lag] against r[t]
            a = x[k, max(lag, 0): n + min(lag, 0)]
            b = r[max(-lag, 0): n - max(lag, 0)]
            c = np.vdot(b, a)  # sum conj(r) x_k
            pa, pb = float(np.vdot(a, a).real), float(np.vdot(b, b).real)
            rho = abs(c) / np.sqrt(pa * pb) if pa > 0 and pb > 0 else 0.0
            if best is None or rho > best[0]:
                best = (rho, lag, c / pb if pb > 0 else 0.0, len(a))
        rho, lag, g, m = best
        # Independent noise gives a coherence of about 1/sqrt(m): demand clearly more.
        if rho < 5.0 / np.sqrt(m) or g == 0:
            raise ValueError(f"phase_cal: channel {k} shows no common signal with channel {ref} "
                             f"(coherence {rho:.2g}); feed all inputs from one splitter")
        gains[k], lags[k], coh[k] = g, lag, rho
        # Phase of a sample cross-correlation of m samples with coherence rho.
        std[k] = np.sqrt(max(1.0 - rho ** 2, 0.0) / (2.0 * m * rho ** 2))
    return PhaseCal(gains=gains, lags=lags, coherence=coh, phase_std_rad=std, n_samples=n, ref=ref)


def apply(x, corrections) -> np.ndarray:
    """x complex [n_ch, n] (or [n_ch]) times the per-channel corrections."""
    c = np.asarray(corrections, np.complex64)
    x = np.asarray(x)
    return (x * c.reshape((-1,) + (1,) * (x.ndim - 1))).astype(np.complex64)


def load_corrections(path, n_ch: int, exit_on_error: bool = False) -> list[complex]:
    """Corrections saved by PhaseCal.save; ``path`` empty or None: all ones (no calibration).
    For flowgraph variables; ``exit_on_error``: a missing or unusable file ends the program with
    the reason instead of a traceback."""
    if not path:
        return [1 + 0j] * int(n_ch)
    try:
        d = json.loads(Path(path).read_text())
        c = [complex(re, im) for re, im in d["corrections"]]
        if len(c) != int(n_ch):
            raise ValueError(f"calibration for {len(c)} channels, the flowgraph has {n_ch}")
    except (OSError, ValueError, KeyError, TypeError) as e:
        msg = f"{path}: not a usable phase calibration ({e}); make one with python3 -m gnuradio.gdm.io.phase_cal"
        if exit_on_error:
            raise SystemExit(f"gr-gdm: {msg}") from None
        raise ValueError(msg) from None
    return c


def attach(tb, sources, correctors=(), n_samples: int = 1 << 15, skip: int = 0, max_lag: int = 0,
           save=None, log=None):
    """Per-session calibration inside a flowgraph, before ``tb.start()``: taps ``sources``
    [(block, port)], one per channel (the uncorrected samples), skips ``skip`` samples (settling),
    collects ``n_samples`` per channel, estimates, then sets the constant of every corrector
    (``blocks.multiply_const_cc`` between the source and the receiver: ``set_k``), saves the JSON
    to ``save`` if given, and prints the result. After that the tap only discards samples.
    A capture without a common signal leaves the correctors as they are and says so. Returns
    the tap block; ``tap.result`` is the PhaseCal (None until done), ``tap.done`` an Event."""
    import threading

    from gnuradio import gr

    say = log or (lambda m: print(m, flush=True))
    n_ch = len(sources)

    class _Tap(gr.sync_block):
        def __init__(self):
            gr.sync_block.__init__(self, "gdm_phase_cal_tap", [np.complex64] * n_ch, None)
            self.buf = np.zeros((n_ch, int(n_samples)), np.complex64)
            self.got, self.skip, self.result, self.error = 0, int(skip), None, None
            self.done = threading.Event()

        def work(self, input_items, output_items):
            n = len(input_items[0])
            if self.done.is_set():
                return n
            i = min(n, self.skip)
            self.skip -= i
            k = min(n - i, self.buf.shape[1] - self.got)
            for c in range(n_ch):
                self.buf[c, self.got: self.got + k] = input_items[c][i: i + k]
            self.got += k
            if self.got == self.buf.shape[1]:
                self._finish()
            return n

        def _finish(self):
            try:
                cal = estimate(self.buf, max_lag=max_lag)
            except ValueError as e:
                self.error = str(e)
                say(f"gr-gdm phase calibration failed, corrections unchanged: {e}")
            else:
                for c, blk in zip(cal.corrections, correctors):
                    blk.set_k(complex(c))
                self.result = cal
                say("gr-gdm phase calibration (this session, relative to ch0):\n" + cal.describe())
                if save:
                    say(f"gr-gdm phase calibration saved to {cal.save(save)}")
            self.buf = None
            self.done.set()

    tap = _Tap()
    for c, (blk, port) in enumerate(sources):
        tb.connect((blk, port), (tap, c))
    return tap


def from_recording(path, start: int = 0, count: int = 1 << 16, ref: int = 0, max_lag: int = 0) -> PhaseCal:
    """Estimate from a SigMF recording (see gnuradio.gdm.io.recording)."""
    from .recording import open_recording
    return estimate(open_recording(path).read(start, count), ref=ref, max_lag=max_lag)


def main(argv=None) -> int:
    import argparse
    ap = argparse.ArgumentParser(prog="python3 -m gnuradio.gdm.io.phase_cal",
                                 description="Phase calibration between RX channels from a SigMF capture of one "
                                             "common (splitter-fed) signal.")
    ap.add_argument("recording", help="<base>.sigmf-meta or its base name")
    ap.add_argument("--start", type=int, default=0, help="first sample (per channel)")
    ap.add_argument("--count", type=int, default=1 << 16, help="samples per channel to use")
    ap.add_argument("--max-lag", type=int, default=0, help="search the integer lag within +-N samples")
    ap.add_argument("--save", help="write the calibration JSON (for --phase-cal of usrp_rx_2ch)")
    a = ap.parse_args(argv)
    cal = from_recording(a.recording, a.start, a.count, max_lag=a.max_lag)
    print(cal.describe())
    if a.save:
        print(f"saved {cal.save(a.save)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
