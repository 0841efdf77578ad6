"""The receive chain after sync on a batch of frames: channel estimate -> equalizer -> soft
demapper, FEC and CRC. One function so a single block (or the numpy link) can run the whole
chain per batch instead of paying per-block overhead for every stage."""
from __future__ import annotations

import dataclasses

import numpy as np

from ..frame import FrameSpec
from .equalizer import equalize
from .modem import occupied
from .sync import SyncFrame
from .transceiver import DecodedFrame, decode_batch


@dataclasses.dataclass
class ReceivedFrame:
    frame: SyncFrame
    H: np.ndarray | None  # [n_rx, n_tx, n_sym, n_occ]; None for a frame flagged non-finite
    fallback: str  # '' or the estimator that replaced the method's own estimate
    decoded: DecodedFrame | None  # None for a frame flagged non-finite (not decoded)


def receive(frames: list[SyncFrame], spec: FrameSpec, estimate, equalizer: str = "lmmse") -> list[ReceivedFrame]:
    """``estimate(Y [B, n_rx, S, K], nv [B]) -> (H [B, n_rx, n_tx, S, K], labels [B])`` (e.g.
    estimation.fallback.estimate_or_fallback bound to an estimator). Frames the synchronizer
    flagged non-finite are neither estimated nor decoded."""
    if not frames:
        return []
    good = [f for f in frames if not f.nonfinite]
    results = {}
    if good:
        Y = occupied(np.stack([f.grid for f in good]), spec)
        nv = np.array([f.noise_var for f in good])
        H, labels = estimate(Y, nv)
        X, V = equalize(Y, H, nv, equalizer)
        for f, h, lab, d in zip(good, H, labels, decode_batch(X, V, spec)):
            results[id(f)] = ReceivedFrame(f, h, str(lab), d)
    return [results.get(id(f)) or ReceivedFrame(f, None, "", None) for f in frames]
