import numpy as np

from gnuradio.gdm import FrameSpec
from gnuradio.gdm.metrics.link import LinkScorer
from gnuradio.gdm.ofdm import framing
from gnuradio.gdm.ofdm.transceiver import encode_bits

SPEC = FrameSpec.preset("nr72")


def _report(seq, payload, flip=0, idx=0):
    bits = framing.pack_frame(payload, seq, SPEC.info_bits_per_frame)
    raw = encode_bits(bits, SPEC).copy()
    bits = bits.copy()
    bits[:flip] ^= 1
    return {"index": idx, "sample_offset": 1000 * seq, "cfo_hz": 0.0, "seq": seq, "header_ok": flip == 0,
            "crc_ok": flip == 0, "evm_db": -20.0, "bits": np.packbits(bits), "raw_bits": np.packbits(raw)}


def test_per_ber_nmse_and_lost_frames():
    sc = LinkScorer(SPEC)
    H = np.ones((1, 1, 14, 72), np.complex64)
    for s in range(10):
        sc.add_tx(s, bytes([s]) * 20)
        sc.add_truth(s, 1000 * s, 0.0, H)
    for s in range(8):  # frames 8, 9 never arrive
        sc.add_csi(s, H * (1.1 if s == 0 else 1.0))
        sc.add_rx(_report(s, bytes([s]) * 20, flip=5 if s == 3 else 0, idx=s))
    out = sc.summary()
    assert out["frames_sent"] == 10 and out["frames_ok"] == 7 and out["frames_lost"] == 3
    assert np.isclose(out["per"], 0.3)
    assert out["ber"] == 5 / (8 * SPEC.info_bits_per_frame)
    assert out["raw_ber"] == 0
    assert np.isclose(out["nmse_db"], 10 * np.log10(0.01 / 8))
    assert out["unmatched"] == 0


def test_frames_matched_by_arrival_even_with_broken_header():
    sc = LinkScorer(SPEC)
    sc.add_tx(5, b"x" * 10)
    sc.add_truth(5, 5000, 0.0, np.ones((1, 1, 14, 72), np.complex64))
    rep = _report(5, b"x" * 10, flip=40)
    rep.update(seq=None, sample_offset=5001)
    sc.add_rx(rep)
    out = sc.summary()
    assert out["unmatched"] == 0 and out["bits"] > 0 and out["frames_ok"] == 0


def test_loss_from_sequence_gaps_and_restarts_without_tx_messages():
    sc = LinkScorer(SPEC)
    for i, seq in enumerate([0, 1, 2, 5, 6, 0, 1, 3]):  # 2 lost, restart, 1 lost
        sc.add_rx({"index": i, "seq": seq, "header_ok": True, "crc_ok": True})
    out = sc.summary()
    assert out["frames_sent"] is None and out["frames_lost"] == 3 and out["tx_restarts"] == 1


def test_gap_in_the_samples_keeps_arrival_matching_and_missed_frames_are_listed():
    sc = LinkScorer(SPEC)
    H = np.ones((1, 1, 14, 72), np.complex64)
    for s in range(6):
        sc.add_tx(s, bytes([s]) * 20)
        sc.add_truth(s, 1000 * s, 0.0, H)
    sc.add_gap(2500, 1000)  # the source dropped samples 2500..3499 of the transmitter's stream
    for s in (0, 1, 2, 4, 5):  # frame 3 fell into the gap; 2 was cut (bad header)
        rep = _report(s, bytes([s]) * 20, flip=40 if s == 2 else 0, idx=s)
        rep["sample_offset"] = 1000 * s - (1000 if s >= 3 else 0)  # receiver offsets after the gap
        if s == 2:
            rep["seq"] = None
        sc.add_csi(s, H)
        sc.add_rx(rep)
    out = sc.summary()
    # NMSE only for frames with no gap inside their 2160 samples: 0, 4 and 5 (not 1 and 2)
    assert out["frames_ok"] == 4 and out["unmatched"] == 0 and out["nmse_frames"] == 3, out
    assert out["gaps"] == 1 and out["samples_dropped"] == 1000
    assert sc.missed_seqs() == [3]


def test_a_good_header_overrides_a_wrong_arrival_match_and_seq_wraps():
    sc = LinkScorer(SPEC)
    H = np.ones((1, 1, 14, 72), np.complex64)
    for s in range(65530, 65540):  # past the 16-bit header sequence number
        sc.add_tx(s, bytes([s % 251]) * 20)
        sc.add_truth(s, 1000 * s, 0.0, H)
    rep = _report(65538 % 65536, bytes([65538 % 251]) * 20, idx=1)
    rep["sample_offset"] = 1000 * 65531  # the arrival of another frame
    sc.add_rx(rep)
    out = sc.summary()
    assert out["frames_ok"] == 1 and out["bits"] > 0 and out["ber"] == 0
    assert 65538 not in sc.missed_seqs() and 65531 in sc.missed_seqs()
    assert out["nmse_frames"] == 0  # matched by header only: no truth alignment, no NMSE


def test_missed_frames_carry_their_channel_power():
    sc = LinkScorer(SPEC)
    for s, g in enumerate((1.0, 0.001, 1.0)):  # frame 1 in a 30 dB fade, never detected
        sc.add_tx(s, bytes([s]) * 20)
        sc.add_truth(s, 3000 * s, 0.0, np.full((2, 1, 14, 72), np.sqrt(g), np.complex64))
    for s in (0, 2):
        rep = _report(s, bytes([s]) * 20, idx=s)
        rep["sample_offset"] = 3000 * s
        sc.add_rx(rep)
    sc.add_tx(3, bytes(20))  # its truth never came
    gains = sc.missed_gain_db()
    assert set(gains) == {1, 3} and abs(gains[1] + 30) < 1e-3 and gains[3] is None


def test_reported_frames_leave_no_channel_power_behind():
    # A link running for days must hold gains only for frames in flight or never detected.
    sc = LinkScorer(SPEC, lag=0)
    H = np.ones((2, 1, 14, 72), np.complex64)
    for s in range(300):
        sc.add_tx(s, bytes([s % 251]) * 20)
        sc.add_truth(s, 3000 * s, 0.0, H)
        if s != 7:
            rep = _report(s, bytes([s % 251]) * 20, idx=s)
            rep["sample_offset"] = 3000 * s
            sc.add_rx(rep)
    assert set(sc.gain_db) == {7} and set(sc.missed_gain_db()) == {7}
