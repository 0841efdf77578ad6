"""Malformed frames into the frame decoder: garbage bits, headers with wrong lengths, sequence
numbers and CRCs, damaged payloads and CRC-32s (modulated and decoded like received frames), and
any equalized symbols (zeros, huge, NaN/Inf). The decoder never raises, never returns a payload
longer than a frame holds, rejects every damaged frame with a reason and accepts only frames whose
payload is intact."""
import struct
import zlib

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from fuzzbook import examples
from gnuradio.gdm import FrameSpec
from gnuradio.gdm.ofdm import framing, qam
from gnuradio.gdm.ofdm.modem import build_grid
from gnuradio.gdm.ofdm.transceiver import decode_batch, encode_bits

SPEC = FrameSpec.preset("nr72")
N_INFO = SPEC.info_bits_per_frame
CAP = framing.max_payload_bytes(N_INFO)
SCRAMBLE = framing._scrambler(N_INFO)


def frame_bytes(payload: bytes, seq: int) -> bytearray:
    """Unscrambled frame bytes (header | payload | CRC-32 | pad) as pack_frame builds them."""
    return bytearray(np.packbits(framing.pack_frame(payload, seq, N_INFO) ^ SCRAMBLE).tobytes())


def grid_of(raw: bytes) -> np.ndarray:
    """Frame bytes -> the equalized grid a perfect receiver would see [n_tx, n_sym, n_occ]."""
    bits = np.unpackbits(np.frombuffer(bytes(raw), np.uint8))[:N_INFO] ^ SCRAMBLE
    sym = qam.bits_to_symbols(encode_bits(bits, SPEC), SPEC.modulation)
    return build_grid(sym.reshape(SPEC.n_data, SPEC.n_tx).T[None], SPEC)[0]


def set_header(raw: bytearray, length: int, seq: int, crc_ok: bool = True) -> None:
    hdr = struct.pack("<HH", length, seq)
    crc = framing._crc16(hdr) ^ (0 if crc_ok else 0x1)
    raw[:6] = hdr + struct.pack("<H", crc)


mutation = st.one_of(
    st.tuples(st.just("intact"), st.just(0)),
    st.tuples(st.just("length"), st.integers(0, 65535)),     # any length, valid header CRC
    st.tuples(st.just("header_crc"), st.integers(0, 65535)),  # header CRC wrong
    st.tuples(st.just("seq"), st.integers(0, 65535)),        # another sequence number, valid CRC
    st.tuples(st.just("payload"), st.integers(1, 64)),       # flip bits in the payload
    st.tuples(st.just("crc32"), st.integers(0, 31)),         # flip a bit of the CRC-32
    st.tuples(st.just("header_bytes"), st.integers(0, 2**48 - 1)),  # random header bytes
)


@examples(10)
@given(st.lists(st.tuples(mutation, st.integers(0, CAP), st.integers(0, 2**31 - 1)), min_size=1, max_size=6))
def test_malformed_headers_and_lengths_are_rejected_with_a_reason(fuzz, frames):
    with fuzz.case("frame headers / payload lengths", "frames into the decoder: items = frames; accepted = "
                   "CRC ok (each checked intact); rejected = header or CRC failure with a reason") as rec:
        grids, expect = [], []
        for (kind, v), n, seed in frames:
            rng = np.random.default_rng(seed)
            payload = rng.integers(0, 256, n, np.uint8).tobytes()
            seq = int(rng.integers(0, 65536))
            raw = frame_bytes(payload, seq)
            intact = kind in ("intact", "seq") or (kind == "length" and v == n)
            if kind == "length":
                set_header(raw, v, seq)
            elif kind == "header_crc":
                set_header(raw, n, seq, crc_ok=False)
            elif kind == "seq":
                set_header(raw, n, v)
                seq = v
            elif kind == "payload" and n:
                for b in rng.integers(0, 8 * n, v):
                    raw[6 + b // 8] ^= 1 << (b % 8)
            elif kind == "crc32":
                raw[6 + n + v // 8] ^= 1 << (v % 8)
            elif kind == "header_bytes":
                raw[:6] = v.to_bytes(6, "little")
                hl, hs, hc = struct.unpack("<HHH", raw[:6])
                intact = framing._crc16(raw[:4]) == hc and hl == n and hs == seq
            intact = intact or (kind == "payload" and n == 0)
            grids.append(grid_of(raw))
            expect.append((intact, payload, seq))
        X = np.stack(grids)
        out = decode_batch(X, np.full(X.shape, 1e-3, np.float32), SPEC)
        assert len(out) == len(frames)
        for d, (intact, payload, seq) in zip(out, expect):
            assert d.payload is None or len(d.payload) <= CAP
            if intact:
                assert d.crc_ok and d.payload == payload and d.seq == seq, d.reason
            else:
                assert not d.crc_ok and d.reason, (d.reason, d.seq)
        rec.add(items=len(out), accepted=sum(d.crc_ok for d in out), rejected=sum(not d.crc_ok for d in out))


@examples(15)
@given(st.binary(min_size=0, max_size=600))
def test_unpack_never_raises_on_garbage(fuzz, raw):
    with fuzz.case("frame bits: random bytes", "frames into the decoder: items = frames; accepted = "
                   "CRC ok (each checked intact); rejected = header or CRC failure with a reason") as rec:
        bits = np.unpackbits(np.frombuffer(raw, np.uint8))
        u = framing.unpack_frame(bits)
        assert u.crc_ok in (True, False) and (u.payload is None or len(u.payload) <= len(raw))
        assert u.crc_ok or u.reason
        if u.crc_ok:  # only possible if the bytes happen to hold a valid frame
            assert zlib.crc32(u.payload) == struct.unpack("<I", np.packbits(bits ^ framing._scrambler(bits.size))
                                                          .tobytes()[6 + len(u.payload):10 + len(u.payload)])[0]
        rec.add(items=1, accepted=int(u.crc_ok), rejected=int(not u.crc_ok))


@examples(10)
@given(st.integers(0, 2**31 - 1), st.sampled_from([0.0, 1e-12, 1.0, 1e12, 1e30, np.nan, np.inf]),
       st.integers(1, 5))
def test_decoder_takes_any_symbols(fuzz, seed, scale, batch):
    with fuzz.case("equalized symbols: zeros / huge / NaN / Inf", "frames into the decoder: items = frames; "
                   "accepted = CRC ok (each checked intact); rejected = header or CRC failure with a reason") as rec:
        rng = np.random.default_rng(seed)
        shape = (batch, 1, SPEC.n_sym, SPEC.n_occ)
        with np.errstate(over="ignore", invalid="ignore"):
            x = ((rng.standard_normal(shape) + 1j * rng.standard_normal(shape)) * scale).astype(np.complex64)
            nv = np.abs(rng.standard_normal(shape)).astype(np.float32) * (scale if np.isfinite(scale) else 1)
        out = decode_batch(x, nv, SPEC)
        assert len(out) == batch and not any(d.crc_ok for d in out) and all(d.reason for d in out)
        rec.add(items=batch, rejected=batch)
