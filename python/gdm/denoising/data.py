"""Training and evaluation frames for the symbol denoiser, generated on the fly by the numpy
link: random payloads -> OFDM TX -> (PA) -> streaming fading channel + AWGN -> (phase noise, IQ
imbalance, ADC, CFO drift) -> [blind IQ compensation] -> Schmidl-Cox sync -> channel estimator
-> equalizer. What the denoiser learns from is exactly what the receiver hands it, including
the sync's noise-variance estimate and the estimator's errors under impairments.

Every scenario (channel, SNR, antennas, impairment settings) is drawn at random, so the model
sees transmitters and radios we did not write with fixed parameters. Seeds: draws come from
``np.random.default_rng([seed, PURPOSE])`` with different purpose keys for training,
validation and held-out evaluation.
"""
from __future__ import annotations

import dataclasses
from functools import lru_cache

import numpy as np

from .. import estimation
from ..frame import FrameSpec
from ..ofdm.compensation import BlindIQCompensator
from ..ofdm.equalizer import equalize
from ..ofdm.modem import occupied
from ..ofdm.sync import FrameSynchronizer
from ..ofdm.transceiver import transmit
from ..sim.channel import StreamChannel
from ..sim.impairments import Impairments

TRAIN_PURPOSE = 0xD71
VAL_PURPOSE = 0xD7A
EVAL_PURPOSE = 0xDE7
MODULATIONS = ("qpsk", "16qam", "64qam")


def purpose_rng(seed: int, purpose: int) -> np.random.Generator:
    return np.random.default_rng([int(seed), int(purpose)])


@dataclasses.dataclass(frozen=True)
class ImpairmentMix:
    """Random hardware impairments: each on with its probability (all off with ``p_clean``);
    back-off, linewidth, mask level, imbalance and ADC bits uniform (linewidth log-uniform)."""
    p_clean: float = 0.2
    p_pa: float = 0.5
    rapp_backoff_db: tuple = (1.0, 10.0)
    saleh_backoff_db: tuple = (3.0, 12.0)
    p_pn: float = 0.5
    pn_linewidth_hz: tuple = (5.0, 400.0)
    p_pn_mask: float = 0.3  # of the phase-noise cases: PSD mask instead of Wiener
    pn_mask_shift_db: tuple = (-10.0, 8.0)
    p_iq: float = 0.35
    iq_gain_db: float = 2.0  # |gain| up to
    iq_phase_deg: float = 10.0  # |phase| up to
    p_adc: float = 0.3
    adc_bits: tuple = (3, 8)
    p_drift: float = 0.15
    drift_hz_s: float = 2000.0
    p_iq_comp: float = 0.5

    def sample(self, rng: np.random.Generator) -> tuple[dict, bool]:
        """-> (Impairments fields, whether the receiver runs blind IQ compensation)."""
        imp: dict = {}
        if rng.random() >= self.p_clean:
            if rng.random() < self.p_pa:
                if rng.random() < 0.5:
                    imp.update(pa="rapp", pa_backoff_db=float(rng.uniform(*self.rapp_backoff_db)))
                else:
                    imp.update(pa="saleh", pa_backoff_db=float(rng.uniform(*self.saleh_backoff_db)))
            if rng.random() < self.p_pn:
                if rng.random() < self.p_pn_mask:
                    shift = rng.uniform(*self.pn_mask_shift_db)
                    imp.update(phase_noise="mask",
                               pn_mask=tuple((f, lvl + shift) for f, lvl in Impairments().pn_mask))
                else:
                    lo, hi = np.log(self.pn_linewidth_hz[0]), np.log(self.pn_linewidth_hz[1])
                    imp.update(phase_noise="wiener", pn_linewidth_hz=float(np.exp(rng.uniform(lo, hi))))
            if rng.random() < self.p_iq:
                imp.update(iq_gain_db=float(rng.uniform(-1, 1) * self.iq_gain_db),
                           iq_phase_deg=float(rng.uniform(-1, 1) * self.iq_phase_deg))
            if rng.random() < self.p_adc:
                imp.update(adc_bits=int(rng.integers(self.adc_bits[0], self.adc_bits[1] + 1)))
            if rng.random() < self.p_drift:
                imp.update(cfo_drift_hz_s=float(rng.uniform(-1, 1) * self.drift_hz_s))
        return imp, bool(rng.random() < self.p_iq_comp)


@dataclasses.dataclass(frozen=True)
class LinkMix:
    """Random links: profile, delay spread (log-uniform), Doppler, CFO, SNR, receive antennas,
    channel estimator, and the impairments."""
    profiles: tuple = ("TDL-A", "TDL-B", "TDL-C")
    delay_spread: tuple = (10e-9, 600e-9)
    doppler: tuple = (0.0, 200.0)
    cfo_hz: float = 1000.0  # |CFO| up to
    snr_db: tuple = (-2.0, 30.0)
    n_rx: tuple = (1, 2, 4)
    n_rx_p: tuple = (0.25, 0.55, 0.2)
    estimators: tuple = ("ls_interp", "lmmse")
    impairments: ImpairmentMix = ImpairmentMix()

    def sample(self, rng: np.random.Generator) -> dict:
        lo, hi = np.log(self.delay_spread[0]), np.log(self.delay_spread[1])
        imp, iq_comp = self.impairments.sample(rng)
        return dict(profile=str(rng.choice(self.profiles)), delay_spread=float(np.exp(rng.uniform(lo, hi))),
                    doppler=float(rng.uniform(*self.doppler)), cfo_hz=float(rng.uniform(-1, 1) * self.cfo_hz),
                    snr_db=float(rng.uniform(*self.snr_db)),
                    n_rx=int(rng.choice(self.n_rx, p=self.n_rx_p)), estimator=str(rng.choice(self.estimators)),
                    impairments=imp, iq_compensation=iq_comp, seed=int(rng.integers(1 << 31)))


@lru_cache(maxsize=16)
def _estimator(name: str, spec: FrameSpec, n_rx: int):
    return estimation.make(name, spec, n_rx)


def link_frames(spec: FrameSpec, scenario: dict, n_frames: int, rng: np.random.Generator,
                equalizer: str = "lmmse") -> dict:
    """Frames of one scenario (``LinkMix.sample``) through the receiver up to the equalizer.
    Returns z (equalized) and x (transmitted grid) complex64 [N, n_tx, S, K], v (post-eq noise
    variance) float32 [N, n_tx, S, K] and nv [N] (the sync's per-frame noise variance), for the
    N <= n_frames frames the sync found (matched to what was sent by their arrival time)."""
    sc = scenario
    n_rx, n_tx = sc["n_rx"], spec.n_tx
    payload_bits = rng.integers(0, 2, (n_frames, n_tx * spec.n_data * spec.bits_per_symbol), np.uint8)
    from ..ofdm import qam

    data = qam.bits_to_symbols(payload_bits, spec.modulation).reshape(n_frames, n_tx, spec.n_data)
    from ..ofdm.modem import build_grid, modulate

    grids = build_grid(data, spec)
    x = modulate(grids, spec)
    ch = StreamChannel(n_tx, n_rx, spec.sample_rate, sc["profile"], sc["delay_spread"], sc["doppler"],
                       sc["snr_db"], sc["cfo_hz"], 0.0, seed=sc["seed"],
                       impairments=Impairments(**sc["impairments"]))
    y = np.concatenate([ch.process(x), ch.process(np.zeros((n_tx, spec.frame_len), np.complex64))], axis=1)
    if sc["iq_compensation"]:
        y = BlindIQCompensator(n_rx, memory=1.0).process(y)  # statistics of the whole burst
    sync = FrameSynchronizer(spec, n_rx)
    sync.push(y)
    frames = sync.pop_frames()
    starts = np.arange(n_frames) * spec.frame_len + ch.latency
    keep, idx = [], []
    for f in frames:
        i = int(np.argmin(np.abs(starts - f.sample_offset)))
        if abs(starts[i] - f.sample_offset) <= spec.cp_len and i not in idx:
            keep.append(f)
            idx.append(i)
    S, K = spec.n_sym, spec.n_occ
    if not keep:
        return dict(z=np.zeros((0, n_tx, S, K), np.complex64), v=np.zeros((0, n_tx, S, K), np.float32),
                    x=np.zeros((0, n_tx, S, K), np.complex64), nv=np.zeros(0))
    Y = np.stack([occupied(f.grid, spec) for f in keep])
    nv = np.array([f.noise_var for f in keep])
    H = _estimator(sc["estimator"], spec, n_rx).estimate(Y, nv)
    z, v = equalize(Y, H, nv, equalizer)
    return dict(z=z, v=v, x=grids[idx], nv=nv)


def mixed_frames(spec: FrameSpec, mix: LinkMix, n_frames: int, rng: np.random.Generator,
                 per_scenario: int = 8) -> dict:
    """``n_frames`` frames from ceil(n_frames / per_scenario) random scenarios (concatenated;
    short by the few frames the sync may miss at very low SNR)."""
    parts, tries = [], 0
    while sum(len(p["z"]) for p in parts) < n_frames:
        tries += 1
        if tries > 4 * (n_frames // per_scenario + 1):
            raise RuntimeError(f"the sync found too few frames in {tries} scenarios; check the LinkMix SNR range")
        parts.append(link_frames(spec, mix.sample(rng), per_scenario, rng))
    out = {k: np.concatenate([p[k] for p in parts])[:n_frames] for k in parts[0]}
    return out
