import numpy as np

from gnuradio.gdm.ofdm import framing


def test_roundtrip_and_crc_detects_errors():
    bits = framing.pack_frame(b"hello gr-gdm", 7, 1728)
    u = framing.unpack_frame(bits)
    assert u.header_ok and u.crc_ok and u.seq == 7 and u.payload == b"hello gr-gdm"
    bad = bits.copy()
    bad[framing.payload_bits_span(12)][3] ^= 1
    bad2 = framing.unpack_frame(bad)
    assert bad2.header_ok and not bad2.crc_ok


def test_corrupt_header_never_raises():
    rng = np.random.default_rng(0)
    for _ in range(200):
        u = framing.unpack_frame(rng.integers(0, 2, 1728))
        assert not u.crc_ok or u.payload is not None
    assert not framing.unpack_frame(np.zeros(16, np.uint8)).header_ok


def test_capacity_is_enforced():
    cap = framing.max_payload_bytes(1728)
    framing.pack_frame(bytes(cap), 0, 1728)
    try:
        framing.pack_frame(bytes(cap + 1), 0, 1728)
    except ValueError as e:
        assert "capacity" in str(e)
    else:
        raise AssertionError("oversized payload accepted")
