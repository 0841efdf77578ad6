"""Received pilot observations for site adaptation: received grids and per-frame noise variances,
from a SigMF recording (through the receiver's own synchronizer), from a simulated channel
profile, or from grids a running receiver collected. No true channel is kept.
"""
from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Callable

import numpy as np

from ..frame import FrameSpec

ADAPT_PURPOSE = 0xADA  # rng stream of simulated adaptation data (evaluation uses models.data.EVAL_PURPOSE)


@dataclasses.dataclass
class PilotObservations:
    """``Y`` complex64 [N, n_rx, n_sym, n_occ] received grids, ``noise_var`` [N] per frame,
    ``source``: where they came from (goes into the adapted model's metadata)."""
    spec: FrameSpec
    Y: np.ndarray
    noise_var: np.ndarray
    source: dict

    def __post_init__(self):
        self.Y = np.asarray(self.Y, np.complex64)
        self.noise_var = np.broadcast_to(np.asarray(self.noise_var, float), (self.Y.shape[0],)).copy()
        want = (self.spec.n_sym, self.spec.n_occ)
        if self.Y.ndim != 4 or self.Y.shape[2:] != want:
            raise ValueError(f"observations: Y must be [N, n_rx, {want[0]}, {want[1]}] for preset "
                             f"{self.spec.name}, got {self.Y.shape}")
        if not (np.isfinite(self.noise_var).all() and (self.noise_var > 0).all()):
            raise ValueError("observations: every frame needs a finite positive noise variance; drop "
                             "frames without one or estimate it (estimation.estimate_noise_var)")

    @property
    def n_frames(self) -> int:
        return self.Y.shape[0]

    @property
    def n_rx(self) -> int:
        return self.Y.shape[1]

    def take(self, idx) -> "PilotObservations":
        return PilotObservations(self.spec, self.Y[idx], self.noise_var[idx], self.source)

    def split(self, holdout: float) -> tuple["PilotObservations", "PilotObservations"]:
        """(adaptation frames, held-out frames): the last ``holdout`` fraction in time order is
        held out (at least one frame each)."""
        if not 0 < holdout < 1:
            raise ValueError(f"holdout must be a fraction in (0, 1), got {holdout}")
        if self.n_frames < 2:
            raise ValueError(f"adaptation needs at least 2 frames (some held out for the guard), got "
                             f"{self.n_frames}; collect more frames (--frames)")
        n_held = int(np.clip(round(self.n_frames * holdout), 1, self.n_frames - 1))
        cut = self.n_frames - n_held
        return self.take(slice(0, cut)), self.take(slice(cut, None))

    def links(self, tx: int, rows: np.ndarray, cols: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Pilot LS of stream ``tx`` at ``rows`` x ``cols`` for every (frame, rx) link, normalised to a
        unit-power link: (ls complex64 [N * n_rx, len(rows), len(cols)], noise_var [N * n_rx])."""
        a = self.spec.tx_amplitude
        pv = self.spec.pilot_values(tx)[rows[:, None], cols[None, :]]
        ls = self.Y[..., rows[:, None], cols[None, :]] / pv / a
        return (ls.reshape(-1, rows.size, cols.size).astype(np.complex64),
                np.repeat(self.noise_var, self.n_rx) / a ** 2)


def from_profile(scenario, snr_db: float, n_frames: int, spec: FrameSpec | str = "nr72", n_rx: int = 1,
                 seed: int = 0, known_noise_var: bool = True) -> PilotObservations:
    """Simulated frames of a ChannelConfig / ChannelMix at ``snr_db`` (random data on the data REs),
    drawn from a random stream of their own (``ADAPT_PURPOSE``): never the evaluation frames."""
    from ..estimation import estimate_noise_var
    from ..models.data import purpose_rng
    from ..models.evaluate import draw_scenario, received, scenario_label
    from ..sim.awgn import noise_var_for_snr

    spec = FrameSpec.preset(spec) if isinstance(spec, str) else spec
    rng = purpose_rng(seed, ADAPT_PURPOSE)
    H, _ = draw_scenario(spec, scenario, n_frames, n_rx, rng)
    nv = float(noise_var_for_snr(snr_db))
    Y = received(spec, H, nv, rng)
    nvs = np.full(n_frames, nv) if known_noise_var else estimate_noise_var(Y, spec)
    src = {"kind": "simulated", "scenario": scenario_label(scenario), "snr_db": float(snr_db),
           "seed": int(seed), "rng_purpose": ADAPT_PURPOSE, "n_rx": n_rx,
           "noise_var": "known" if known_noise_var else "estimated from the pilots"}
    return PilotObservations(spec, Y, nvs, src)


def from_recording(path, n_frames: int | None = None, preset: str | None = None,
                   progress: Callable[[int], None] | None = None) -> PilotObservations:
    """The first ``n_frames`` frames (None: all) of a SigMF recording, found and demodulated by
    the receiver's synchronizer; noise variance per frame from its preamble. Frames flagged
    non-finite are skipped. ``progress(n)`` is called with each batch of new frames."""
    from ..io.recording import open_recording
    from ..ofdm.sync import FrameSynchronizer
    from ..runtime.checksums import sha256_file

    rec = open_recording(path, preset=preset)
    spec = FrameSpec.preset(preset) if preset else rec.spec
    if spec is None:
        raise ValueError(f"{path}: the recording names no frame preset (gdm:frame_spec); pass --preset")
    if rec.spec is not None and preset:
        spec = spec.replace(n_tx=rec.spec.n_tx)
    sync = FrameSynchronizer(spec, rec.num_channels)
    grids, nvs, skipped = [], [], 0
    want = n_frames if n_frames is not None else np.inf

    def take(frames):
        nonlocal skipped
        new = 0
        for f in frames:
            if len(grids) >= want:
                break
            if f.nonfinite or not np.isfinite(f.noise_var) or f.noise_var <= 0:
                skipped += 1
                continue
            grids.append(f.grid[:, :, spec.occupied_bins])
            nvs.append(f.noise_var)
            new += 1
        if progress and new:
            progress(new)

    for chunk in rec.chunks():
        sync.push(chunk)
        take(sync.pop_frames())
        if len(grids) >= want:
            break
    else:
        take(sync.flush())
    if not grids:
        raise ValueError(f"{path}: no frames found in the recording (wrong preset, or no gr-gdm "
                         "waveform in it?)")
    data = Path(rec.base).with_suffix(".sigmf-data")
    src = {"kind": "recording", "path": str(rec.base), "data_sha256": sha256_file(data),
           "frames_used": len(grids), "frames_skipped_nonfinite": skipped, "n_rx": rec.num_channels,
           "sample_rate": rec.sample_rate, "center_freq": rec.center_freq}
    return PilotObservations(spec, np.stack(grids), np.asarray(nvs), src)


def from_grids(Y: np.ndarray, noise_var: np.ndarray, spec: FrameSpec, source: dict | None = None) -> PilotObservations:
    """Grids a receiver collected while running (the channel_estimator block's adapt mode)."""
    return PilotObservations(spec, Y, noise_var, source or {"kind": "stream"})
