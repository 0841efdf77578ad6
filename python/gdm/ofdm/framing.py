"""Frame payload format: header + payload + CRC-32, scrambled and padded to the frame capacity.

Layout in bytes: ``len:u16 | seq:u16 | hdr_crc:u16 | payload[len] | crc32(payload):u32 | pad``.
The header has its own CRC-16 so a corrupt length never makes the decoder read out of bounds;
the payload CRC is the standard CRC-32 (zlib, the same polynomial as gr-digital's crc32_bb).
All bits are XOR-ed with a fixed PN sequence so all-zero payloads still give random symbols.
"""
from __future__ import annotations

import binascii
import dataclasses
import struct
import zlib
from functools import lru_cache

import numpy as np

HEADER_BYTES = 6
CRC_BYTES = 4
OVERHEAD_BYTES = HEADER_BYTES + CRC_BYTES


def max_payload_bytes(n_bits: int) -> int:
    """Payload capacity of a frame carrying n_bits information bits."""
    return max(0, n_bits // 8 - OVERHEAD_BYTES)


@lru_cache(maxsize=8)
def _scrambler(n_bits: int) -> np.ndarray:
    return np.random.default_rng(0x5C4A).integers(0, 2, n_bits, dtype=np.uint8)


def _crc16(data: bytes) -> int:
    return binascii.crc_hqx(data, 0xFFFF)


def pack_frame(payload: bytes, seq: int, n_bits: int) -> np.ndarray:
    """uint8 information bits [n_bits] of one frame."""
    cap = max_payload_bytes(n_bits)
    if len(payload) > cap:
        raise ValueError(f"payload of {len(payload)} bytes exceeds the frame capacity of {cap} bytes")
    hdr = struct.pack("<HH", len(payload), seq & 0xFFFF)
    body = hdr + struct.pack("<H", _crc16(hdr)) + payload + struct.pack("<I", zlib.crc32(payload))
    bits = np.unpackbits(np.frombuffer(body, np.uint8))
    out = np.zeros(n_bits, np.uint8)
    out[: bits.size] = bits
    return out ^ _scrambler(n_bits)


@dataclasses.dataclass
class Unpacked:
    header_ok: bool
    crc_ok: bool
    seq: int | None
    payload: bytes | None
    reason: str = ""


def unpack_frame(bits: np.ndarray) -> Unpacked:
    """Inverse of pack_frame for hard bits; never raises on corrupt input."""
    bits = np.asarray(bits, np.uint8).reshape(-1)
    raw = np.packbits(bits ^ _scrambler(bits.size)).tobytes()
    if len(raw) < OVERHEAD_BYTES:
        return Unpacked(False, False, None, None, "frame shorter than header + CRC")
    length, seq, hcrc = struct.unpack("<HHH", raw[:HEADER_BYTES])
    if _crc16(raw[:4]) != hcrc:
        return Unpacked(False, False, None, None, "header CRC mismatch")
    if length > len(raw) - OVERHEAD_BYTES:
        # A fixed text: reasons travel as PMT symbols, which GNU Radio interns for good.
        return Unpacked(False, False, seq, None, "header length exceeds frame capacity")
    payload = raw[HEADER_BYTES: HEADER_BYTES + length]
    (crc,) = struct.unpack("<I", raw[HEADER_BYTES + length: HEADER_BYTES + length + CRC_BYTES])
    ok = crc == zlib.crc32(payload)
    return Unpacked(True, ok, seq, payload, "" if ok else "payload CRC mismatch")


def payload_bits_span(n_payload: int) -> slice:
    """Bit positions of the payload inside a frame (for BER on known payloads)."""
    return slice(HEADER_BYTES * 8, (HEADER_BYTES + n_payload) * 8)
