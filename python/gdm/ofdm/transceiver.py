"""Bits <-> frames: the TX chain (framing, QAM, grid, OFDM) and the decoding chain after
equalization (soft demap, hard decision, CRC). Streams are layer-interleaved: data symbol i of a
frame goes out of stream i % n_tx."""
from __future__ import annotations

import dataclasses

import numpy as np

from ..frame import FrameSpec
from . import fec, framing, qam
from .modem import build_grid, extract_data, modulate


def random_payload(seq: int, n_bytes: int, seed: int = 0) -> bytes:
    """Deterministic pseudo-random payload of a frame, so a receiver can regenerate it."""
    return np.random.default_rng([seed, seq & 0xFFFF]).integers(0, 256, n_bytes, np.uint8).tobytes()


def encode_bits(info: np.ndarray, spec: FrameSpec) -> np.ndarray:
    """info bits [..., info_bits_per_frame] -> channel bits [..., bits_per_frame]."""
    return info if spec.fec == "none" else fec.code(spec.bits_per_frame).encode(info)


def frame_symbols(payload: bytes, seq: int, spec: FrameSpec) -> tuple[np.ndarray, np.ndarray]:
    """-> (info bits [info_bits_per_frame], data symbols [n_tx, n_data])."""
    bits = framing.pack_frame(payload, seq, spec.info_bits_per_frame)
    sym = qam.bits_to_symbols(encode_bits(bits, spec), spec.modulation)
    return bits, sym.reshape(spec.n_data, spec.n_tx).T


def transmit(payloads: list[bytes], seqs, spec: FrameSpec):
    """-> (samples [n_tx, B*frame_len], grids [B, n_tx, n_sym, n_occ], info bits [B, info_bits])."""
    bits, data = zip(*(frame_symbols(p, s, spec) for p, s in zip(payloads, seqs)))
    grids = build_grid(np.stack(data), spec)
    return modulate(grids, spec), grids, np.stack(bits)


@dataclasses.dataclass
class DecodedFrame:
    header_ok: bool
    crc_ok: bool
    seq: int | None
    payload: bytes | None
    bits: np.ndarray  # decoded info bits [info_bits_per_frame]
    raw_bits: np.ndarray  # hard channel-bit decisions before FEC [bits_per_frame]
    evm_db: float
    reason: str = ""


def decode_batch(x_hat: np.ndarray, noise_var: np.ndarray, spec: FrameSpec) -> list[DecodedFrame]:
    """x_hat, noise_var [B, n_tx, n_sym, n_occ] of equalized frames -> one DecodedFrame each.
    Soft demapping, FEC decoding (batched over frames), header and CRC check."""
    B = x_hat.shape[0]
    xd = extract_data(x_hat, spec).transpose(0, 2, 1).reshape(B, -1)  # layer de-interleave
    nv = extract_data(noise_var, spec).transpose(0, 2, 1).reshape(B, -1)
    finite = np.isfinite(xd).all(axis=1) & np.isfinite(nv).all(axis=1)
    xd = np.where(finite[:, None], xd, 0)
    llr = qam.soft_demap(xd, nv, spec.modulation).reshape(B, -1)
    raw = (llr < 0).astype(np.uint8)
    info = raw if spec.fec == "none" else fec.code(spec.bits_per_frame).decode(llr)[0]
    err = xd - qam.nearest_points(xd, spec.modulation)
    with np.errstate(over="ignore"):  # symbols near float32 max: EVM +inf is the right answer
        evm = 10 * np.log10(np.maximum(np.mean(err.real ** 2 + err.imag ** 2, axis=1), 1e-30))
    out = []
    for b in range(B):
        if not finite[b]:
            out.append(DecodedFrame(False, False, None, None, info[b], raw[b], float(evm[b]),
                                    "non-finite equalized symbols"))
            continue
        u = framing.unpack_frame(info[b])
        out.append(DecodedFrame(u.header_ok, u.crc_ok, u.seq, u.payload, info[b], raw[b], float(evm[b]), u.reason))
    return out


def decode(x_hat: np.ndarray, noise_var: np.ndarray, spec: FrameSpec) -> DecodedFrame:
    """One equalized frame [n_tx, n_sym, n_occ] -> DecodedFrame."""
    return decode_batch(x_hat[None], noise_var[None], spec)[0]
