"""Bits <-> frames: the TX chain (framing, QAM, grid, OFDM) and the decoding chain after
equalization (soft demap, hard decision, CRC). Streams are layer-interleaved: data symbol i of a
frame goes out of stream i % n_tx."""
from __future__ import annotations

import dataclasses

import numpy as np

from ..frame import FrameSpec
from . import framing, qam
from .modem import build_grid, extract_data, modulate


def random_payload(seq: int, n_bytes: int, seed: int = 0) -> bytes:
    """Deterministic pseudo-random payload of a frame, so a receiver can regenerate it."""
    return np.random.default_rng([seed, seq & 0xFFFF]).integers(0, 256, n_bytes, np.uint8).tobytes()


def frame_symbols(payload: bytes, seq: int, spec: FrameSpec) -> tuple[np.ndarray, np.ndarray]:
    """-> (bits [bits_per_frame], data symbols [n_tx, n_data])."""
    bits = framing.pack_frame(payload, seq, spec.bits_per_frame)
    sym = qam.bits_to_symbols(bits, spec.modulation)
    return bits, sym.reshape(spec.n_data, spec.n_tx).T


def transmit(payloads: list[bytes], seqs, spec: FrameSpec):
    """-> (samples [n_tx, B*frame_len], grids [B, n_tx, n_sym, n_occ], bits [B, bits_per_frame])."""
    bits, data = zip(*(frame_symbols(p, s, spec) for p, s in zip(payloads, seqs)))
    grids = build_grid(np.stack(data), spec)
    return modulate(grids, spec), grids, np.stack(bits)


@dataclasses.dataclass
class DecodedFrame:
    header_ok: bool
    crc_ok: bool
    seq: int | None
    payload: bytes | None
    bits: np.ndarray  # hard bits [bits_per_frame]
    llr: np.ndarray  # [bits_per_frame]
    evm_db: float
    reason: str = ""


def decode(x_hat: np.ndarray, noise_var: np.ndarray, spec: FrameSpec) -> DecodedFrame:
    """x_hat, noise_var [n_tx, n_sym, n_occ] of one equalized frame -> DecodedFrame."""
    xd = extract_data(x_hat, spec).T.reshape(-1)  # layer de-interleave
    nv = extract_data(noise_var, spec).T.reshape(-1)
    llr = qam.soft_demap(xd, nv, spec.modulation).reshape(-1)
    finite = np.isfinite(xd).all()
    bits = (llr < 0).astype(np.uint8)
    pts, _ = qam.hard_decision(np.nan_to_num(xd), spec.modulation)
    evm = float(10 * np.log10(max(np.mean(np.abs(np.nan_to_num(xd) - pts) ** 2), 1e-30)))
    if not finite:
        return DecodedFrame(False, False, None, None, bits, llr, evm, "non-finite equalized symbols")
    u = framing.unpack_frame(bits)
    return DecodedFrame(u.header_ok, u.crc_ok, u.seq, u.payload, bits, llr, evm, u.reason)
