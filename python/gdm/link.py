"""The simulated link in pure numpy: the same cores the GNU Radio blocks wrap, chained without a
flowgraph (TX -> streaming channel -> sync/demod -> estimator -> equalizer -> decoder -> scorer).
Used for evaluation sweeps, where starting a flowgraph per point would dominate the run time;
the flowgraph path (blocks/sim_link.py) is tested to agree with it."""
from __future__ import annotations

import dataclasses

import numpy as np

from . import estimation
from .frame import FrameSpec
from .metrics.link import LinkScorer
from .ofdm import framing
from .ofdm.compensation import BlindIQCompensator
from .ofdm.equalizer import equalize
from .ofdm.modem import occupied
from .ofdm.sync import FrameSynchronizer
from .ofdm.transceiver import decode_batch, random_payload, transmit
from .sim.channel import StreamChannel
from .sim.impairments import Impairments
from .sim.grid import ChannelConfig


@dataclasses.dataclass
class LinkConfig:
    preset: str = "nr72"
    n_rx: int = 2
    n_tx: int = 1
    modulation: str = "16qam"
    fec: str | None = None  # None: the preset's
    estimator: str = "ls_interp"  # for the flowgraph; simulate() takes a list
    equalizer: str = "lmmse"
    profile: str = "TDL-A"
    delay_spread: float = 30e-9
    doppler: float = 10.0
    snr_db: float = 25.0
    cfo_hz: float = 0.0
    timing_offset: float = 0.0
    frames: int = 200
    gap: int = 0
    seed: int = 0
    batch: int = 32
    impairments: dict | None = None  # sim.impairments.Impairments fields, e.g. {"pa": "rapp"}
    estimator_options: dict | None = None  # keywords for the estimator, e.g. {"device": "cuda"}
    iq_compensation: bool = False  # blind IQ-imbalance compensation of the samples before sync
    denoiser: str = "none"  # after the equalizer: none (plain demapping) | cpe | diffusion
    denoiser_model: str = ""  # diffusion: .onnx path ("" = the shipped model)

    @property
    def antennas(self) -> str:
        return f"{self.n_tx}x{self.n_rx}"

    def spec(self) -> FrameSpec:
        over = dict(n_tx=self.n_tx, modulation=self.modulation)
        if self.fec:
            over["fec"] = self.fec
        return FrameSpec.preset(self.preset, **over)

    def channel_config(self) -> ChannelConfig:
        return ChannelConfig(self.profile, self.delay_spread, self.doppler)

    def receiver(self, estimator: str | None = None) -> "Receiver":
        return Receiver(estimator or self.estimator, self.denoiser, self.iq_compensation)


def link_fields(d: dict, where: str = "link parameters") -> dict:
    """The LinkConfig fields in ``d`` (e.g. a recording's gdm:link metadata), each checked to be
    of its field's type; ValueError naming the field otherwise. Unknown keys are ignored."""
    out = {}
    for f in dataclasses.fields(LinkConfig):
        if f.name not in d:
            continue
        v, default = d[f.name], f.default
        if v is None and (default is None or f.name == "snr_db"):
            ok = True
        elif isinstance(default, bool):
            ok = isinstance(v, bool)
        elif isinstance(v, bool):
            ok = False
        elif isinstance(default, str) or default is None and f.name == "fec":
            ok = isinstance(v, str) and len(v) <= (4096 if f.name == "denoiser_model" else 64)
        elif isinstance(default, int):
            ok = isinstance(v, int) and -2**63 <= v < 2**63
        elif isinstance(default, float):
            ok = isinstance(v, (int, float)) and np.isfinite(v)
        else:  # impairments: a dict of settings
            ok = isinstance(v, dict)
        if not ok:
            raise ValueError(f"{where}: {f.name} has the wrong type or range ({str(v)[:40]!r}); fix or remove it")
        out[f.name] = v
    return out


@dataclasses.dataclass(frozen=True)
class Receiver:
    """One receiver variant of the numpy link: channel estimator, symbol denoiser (none | cpe |
    diffusion) and whether blind IQ compensation runs on the samples before sync. Variants in
    one simulate() call see the same received samples (paired comparisons)."""
    estimator: str = "ls_interp"
    denoiser: str = "none"
    iq_compensation: bool = False

    @property
    def label(self) -> str:
        parts = [self.estimator] + (["iq"] if self.iq_compensation else []) + \
            ([self.denoiser] if self.denoiser != "none" else [])
        return "+".join(parts)


def simulate(cfg: LinkConfig, estimators: dict[str, estimation.Estimator] | list[str],
             receivers: dict[str, Receiver] | None = None, denoisers: dict | None = None) -> dict[str, dict]:
    """Runs the same received samples through every receiver; returns {name: summary}.

    ``estimators``: names or {name: Estimator}; without ``receivers`` each estimator is one
    receiver with the config's denoiser and IQ compensation (keyed by the estimator name).
    ``receivers``: {name: Receiver}; their estimators are made from ``estimators`` or by name.
    ``denoisers``: {name: SymbolDenoiser} to reuse (made on first use otherwise)."""
    spec = cfg.spec()
    if not isinstance(estimators, dict):
        estimators = {n: make_estimator(n, spec, cfg) for n in estimators}
    if receivers is None:
        receivers = {n: cfg.receiver(n) for n in estimators}
    estimators = dict(estimators)
    for r in receivers.values():
        if r.estimator not in estimators:
            estimators[r.estimator] = make_estimator(r.estimator, spec, cfg)
    denoisers = dict(denoisers or {})
    for r in receivers.values():
        if r.denoiser not in denoisers:
            denoisers[r.denoiser] = make_denoiser(r.denoiser, spec, cfg)
    n_bytes = framing.max_payload_bytes(spec.info_bits_per_frame)
    ch = StreamChannel(cfg.n_tx, cfg.n_rx, spec.sample_rate, cfg.profile, cfg.delay_spread, cfg.doppler,
                       cfg.snr_db, cfg.cfo_hz, cfg.timing_offset, seed=cfg.seed + 1,
                       impairments=Impairments(**(cfg.impairments or {})))
    # One front end (sync, optionally behind IQ compensation) per IQ setting in use.
    fronts = {iq: (BlindIQCompensator(cfg.n_rx) if iq else None, FrameSynchronizer(spec, cfg.n_rx))
              for iq in sorted({r.iq_compensation for r in receivers.values()})}
    scorers = {n: LinkScorer(spec) for n in receivers}
    per_frame = spec.frame_len + cfg.gap
    seq = 0
    while seq < cfg.frames:
        seqs = list(range(seq, min(seq + cfg.batch, cfg.frames)))
        payloads = [random_payload(s, n_bytes, cfg.seed) for s in seqs]
        x, _, _ = transmit(payloads, seqs, spec)
        if cfg.gap:
            x = np.concatenate([x.reshape(cfg.n_tx, len(seqs), -1),
                                np.zeros((cfg.n_tx, len(seqs), cfg.gap), np.complex64)], 2).reshape(cfg.n_tx, -1)
        start_in = ch.n
        y = ch.process(x)
        tail = ch.process(np.zeros((cfg.n_tx, spec.frame_len), np.complex64)) if seqs[-1] == cfg.frames - 1 else None
        for i, (s, p) in enumerate(zip(seqs, payloads)):
            H = ch.frame_truth(spec, start_in + i * per_frame)
            for sc in scorers.values():
                sc.add_tx(s, p)
                sc.add_truth(s, start_in + i * per_frame + ch.latency, ch.cfo_hz, H)
        for iq, (comp, sync) in fronts.items():
            frames = []
            for part in (y, tail):
                if part is not None:
                    sync.push(comp.process(part) if comp is not None else part)
                    frames += sync.pop_frames()
            if frames:
                mine = {n: r for n, r in receivers.items() if r.iq_compensation == iq}
                _receive(frames, spec, cfg, mine, estimators, denoisers, scorers)
        seq = seqs[-1] + 1
    return {n: {**sc.summary(), "estimator": receivers[n].estimator, "receiver": receivers[n].label}
            for n, sc in scorers.items()}


def _receive(frames, spec, cfg, receivers, estimators, denoisers, scorers):
    Y = np.stack([occupied(f.grid, spec) for f in frames])
    nv = np.array([f.noise_var for f in frames])
    equalized = {}
    for name, r in receivers.items():
        if r.estimator not in equalized:
            H = estimators[r.estimator].estimate(Y, nv)
            equalized[r.estimator] = (H, *equalize(Y, H, nv, cfg.equalizer))
        H, X, V = equalized[r.estimator]
        X, V = denoisers[r.denoiser].denoise(X, V)
        for f, h, d in zip(frames, H, decode_batch(X, V, spec)):
            scorers[name].add_csi(f.index, h)
            scorers[name].add_rx({"index": f.index, "sample_offset": f.sample_offset, "cfo_hz": f.cfo_hz,
                                  "seq": d.seq, "header_ok": d.header_ok, "crc_ok": d.crc_ok,
                                  "evm_db": d.evm_db, "reason": d.reason,
                                  "bits": np.packbits(d.bits), "raw_bits": np.packbits(d.raw_bits)})


def make_estimator(name: str, spec: FrameSpec, cfg: LinkConfig) -> estimation.Estimator:
    opts = {"config": cfg.channel_config()} if name == "genie" else {}
    if name == cfg.estimator:
        opts.update(cfg.estimator_options or {})
    return estimation.make(name, spec, cfg.n_rx, cfg.n_tx, **opts)


def make_denoiser(name: str, spec: FrameSpec, cfg: LinkConfig):
    from . import denoising

    opts = {"model": cfg.denoiser_model or None} if name == "diffusion" else {}
    return denoising.make(name, spec, cfg.n_tx, **opts)
