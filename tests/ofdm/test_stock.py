"""Interop with GNU Radio's stock OFDM transmitter: the numpy receiver of gnuradio.gdm.ofdm.stock
against recordings of digital.ofdm_tx, and against digital.ofdm_rx on the same samples."""
from __future__ import annotations

import numpy as np
import pytest

from gnuradio.gdm.ofdm import stock
from gnuradio.gdm.sim.channel import StreamChannel

gr_digital = pytest.importorskip("gnuradio.digital")
from gnuradio import blocks, gr  # noqa: E402
import pmt  # noqa: E402

BPS = {"bpsk": 1, "qpsk": 2, "8psk": 3}


def stock_tx(payloads, payload_mod="bpsk", scramble_bits=False) -> np.ndarray:
    """Stock digital.ofdm_tx (defaults, rolloff 0) on variable-length packets, back to back."""
    tags, off = [], 0
    for p in payloads:
        t = gr.tag_t()
        t.offset, t.key, t.value = off, pmt.intern("packet_len"), pmt.from_long(len(p))
        tags.append(t)
        off += len(p)
    tb = gr.top_block()
    src = blocks.vector_source_b(list(b"".join(payloads)), False, 1, tags)
    tx = gr_digital.ofdm_tx(fft_len=64, cp_len=16, packet_length_tag_key="packet_len",
                            bps_payload=BPS[payload_mod], rolloff=0, scramble_bits=scramble_bits)
    snk = blocks.vector_sink_c()
    tb.connect(src, tx, snk)
    tb.run()
    return np.asarray(snk.data(), np.complex64)


def stock_rx_count(x: np.ndarray, payloads, payload_mod="bpsk") -> int:
    """Packets stock digital.ofdm_rx decodes (it outputs only CRC-good ones) from samples x."""
    tb = gr.top_block()
    src = blocks.vector_source_c(x.astype(np.complex64).tolist(), False)
    rx = gr_digital.ofdm_rx(fft_len=64, cp_len=16, packet_length_tag_key="length",
                            bps_payload=BPS[payload_mod], scramble_bits=False)
    snk = blocks.vector_sink_b()
    tb.connect(src, rx, snk)
    tb.run()
    got, sent = bytes(np.asarray(snk.data(), np.uint8)), set(payloads)
    spans = sorted((t.offset, pmt.to_long(t.value)) for t in snk.tags() if pmt.symbol_to_string(t.key) == "length")
    return sum(got[o:o + n] in sent for o, n in spans)


def gdm_rx(x: np.ndarray, chunk: int = 4096, **kw):
    x = np.atleast_2d(x)
    rx = stock.StockOfdmReceiver(n_rx=x.shape[0], **kw)
    out = []
    for i in range(0, x.shape[1], chunk):
        rx.push(x[:, i:i + chunk])
        out += rx.pop_packets()
    return out + rx.flush(), rx


def awgn(x, snr_db, rng, cfo=0.0):
    """SNR per time-domain sample (signal power measured), CFO in subcarrier spacings."""
    nv = np.mean(np.abs(x) ** 2) * 10 ** (-snr_db / 10)
    y = x * np.exp(2j * np.pi * cfo * np.arange(x.size) / 64)
    return (y + np.sqrt(nv / 2) * (rng.standard_normal(x.size) + 1j * rng.standard_normal(x.size))).astype(np.complex64)


def random_payloads(rng, n, lo=1, hi=250):
    return [rng.integers(0, 256, int(k), np.uint8).tobytes() for k in rng.integers(lo, hi + 1, n)]


# ---- format ----------------------------------------------------------------------------------
def test_sync_words_match_ofdm_txrx():
    from gnuradio.digital import ofdm_txrx as ot
    args = (64, ot._def_occupied_carriers, ot._def_pilot_carriers)
    assert np.allclose(stock.sync_word1(), ot._make_sync_word1(*args))
    assert np.allclose(stock.sync_word2(), ot._make_sync_word2(*args))
    assert stock.DEF_PILOT_SYMBOLS == ot._def_pilot_symbols
    assert stock.DEF_OCCUPIED == tuple(tuple(c) for c in ot._def_occupied_carriers)
    for mod, bps in BPS.items():
        pts = np.asarray({1: gr_digital.constellation_bpsk, 2: gr_digital.constellation_qpsk,
                          3: gr_digital.constellation_8psk}[bps]().points())
        assert np.allclose(stock.CONSTELLATIONS[mod], pts, atol=1e-6)


def test_header_roundtrip_and_crc8():
    for length, number in [(5, 0), (100, 1), (4095, 4095), (1234, 77)]:
        bits = stock.header_bits(length, number)
        assert bits.size == 48 and not bits[32:].any()
        assert stock.parse_header(bits) == (length, number)
        for i in (0, 13, 30):
            bad = bits.copy()
            bad[i] ^= 1
            assert stock.parse_header(bad) is None


@pytest.mark.parametrize("mod", ["bpsk", "qpsk", "8psk"])
@pytest.mark.parametrize("scramble", [False, True])
def test_noise_free_exact_payloads_from_stock_tx(mod, scramble):
    rng = np.random.default_rng(1)
    payloads = [rng.integers(0, 256, n, np.uint8).tobytes() for n in (1, 10, 44, 45, 96, 200, 250)]
    x = stock_tx(payloads, mod, scramble)
    fmt = stock.StockFormat(payload_mod=mod, scramble_bits=scramble)
    # The numpy replica of the transmitter is sample-exact: the format is understood.
    assert np.abs(x - stock.modulate(payloads, fmt)).max() < 1e-4 * np.abs(x).max()
    out, rx = gdm_rx(x, payload_mod=mod, scramble_bits=scramble)
    assert [p["payload"] for p in out] == payloads
    assert all(p["crc_ok"] for p in out)
    assert [p["header_number"] for p in out] == list(range(len(payloads)))
    starts = np.cumsum([0] + [80 * (3 + fmt.payload_symbols(len(p) + 4)) for p in payloads])
    assert [p["sample_offset"] for p in out] == starts[:-1].tolist()
    assert rx.stats()["packets_ok"] == len(payloads)
    assert rx.stats()["header_crc_failures"] == rx.stats()["payload_crc_failures"] == 0


# ---- the acceptance test: back-to-back bursts, same samples as stock ofdm_rx -----------------
@pytest.mark.parametrize("snr_db,cfo,mod", [(20.0, 0.1, "bpsk"), (25.0, -0.05, "bpsk"), (22.0, 0.1, "qpsk")])
def test_back_to_back_at_least_as_many_as_stock_rx(snr_db, cfo, mod):
    rng = np.random.default_rng(int(snr_db))
    n = 300 if mod == "bpsk" else 150
    payloads = [rng.integers(0, 256, 96, np.uint8).tobytes() for _ in range(n)]
    x = stock_tx(payloads, mod)
    y = np.concatenate([np.zeros(300, np.complex64), awgn(x, snr_db, rng, cfo), np.zeros(300, np.complex64)])
    n_stock = stock_rx_count(y, payloads, mod)
    out, rx = gdm_rx(y, payload_mod=mod)
    sent = set(payloads)
    n_gdm = sum(p["crc_ok"] and p["payload"] in sent for p in out)
    print(f"{mod} {snr_db} dB cfo {cfo}: gr-gdm {n_gdm}, stock ofdm_rx {n_stock} of {n}")
    assert n_gdm >= n_stock
    assert n_gdm >= n - 1
    assert [p["header_number"] for p in out] == list(range(n))
    c = [p["cfo_subcarriers"] for p in out]
    assert abs(np.median(c) - cfo) < 0.01


@pytest.mark.parametrize("cfo", [-0.4, 0.4])
def test_cfo_range_and_gaps(cfo):
    rng = np.random.default_rng(3)
    payloads = random_payloads(rng, 25)
    parts, starts, pos = [], [], 0
    for p in payloads:
        gap = np.zeros(int(rng.integers(0, 400)), np.complex64)
        b = stock.modulate([p])
        parts += [gap, b]
        starts.append(pos + gap.size)
        pos += gap.size + b.size
    y = awgn(np.concatenate(parts), 12.0, rng, cfo)
    out, _ = gdm_rx(y, chunk=777)
    assert [p["payload"] for p in out if p["crc_ok"]] == payloads
    assert [p["sample_offset"] for p in out] == starts
    assert all(abs(p["cfo_subcarriers"] - cfo) < 0.01 for p in out)


def test_chunking_does_not_change_results():
    rng = np.random.default_rng(4)
    payloads = random_payloads(rng, 20)
    y = awgn(stock.modulate(payloads), 15.0, rng, 0.2)
    ref, _ = gdm_rx(y, chunk=y.size)
    for chunk in (61, 1000):
        out, _ = gdm_rx(y, chunk=chunk)
        assert [(p["sample_offset"], p["payload"]) for p in out] == [(p["sample_offset"], p["payload"]) for p in ref]
    assert [p["payload"] for p in ref] == payloads


def test_snr_estimate():
    rng = np.random.default_rng(5)
    payloads = random_payloads(rng, 20, 50, 100)
    x = stock.modulate(payloads)
    for snr in (10.0, 20.0):
        out, _ = gdm_rx(awgn(x, snr, rng))
        per_re = snr + 10 * np.log10(64 / 52)  # the 52 active carriers hold all the power
        assert abs(np.mean([p["snr_db"] for p in out]) - per_re) < 1.5


# ---- multipath, two antennas -----------------------------------------------------------------
def test_multipath_1x2_mrc():
    rng = np.random.default_rng(6)
    payloads = [rng.integers(0, 256, 96, np.uint8).tobytes() for _ in range(100)]
    x = stock_tx(payloads)
    x = x / np.sqrt(np.mean(np.abs(x) ** 2))
    fs = 20e6  # TDL-A 30 ns: taps up to ~6 samples, inside the 16-sample CP
    ch = StreamChannel(1, 2, fs, "TDL-A", 30e-9, snr_db=20.0, cfo_hz=0.1 * fs / 64, seed=3)
    y = ch.process(np.concatenate([x, np.zeros(500, np.complex64)])[None])
    sent = set(payloads)
    out2, rx2 = gdm_rx(y)
    out1, _ = gdm_rx(y[:1])
    n2 = sum(p["crc_ok"] and p["payload"] in sent for p in out2)
    n1 = sum(p["crc_ok"] and p["payload"] in sent for p in out1)
    n_stock = stock_rx_count(y[0], payloads)
    print(f"TDL-A 1x2: gr-gdm MRC {n2}, gr-gdm antenna 0 {n1}, stock ofdm_rx antenna 0 {n_stock}")
    assert n2 >= 98
    assert n2 >= n1 >= n_stock
    assert rx2.stats()["bursts_detected"] == 100


# ---- garbage ---------------------------------------------------------------------------------
def test_garbage_yields_nothing():
    rng = np.random.default_rng(7)
    N = 60000
    cases = {
        "noise": rng.standard_normal(N) + 1j * rng.standard_normal(N),
        "zeros": np.zeros(N),
        "dc": np.full(N, 1 + 1j) + 0.01 * rng.standard_normal(N),
        "tone": np.exp(2j * np.pi * 3 / 64 * np.arange(N)),
        "huge": rng.standard_normal(N) * 1e30,
        "nan": np.where(rng.random(N) < 0.01, np.nan, rng.standard_normal(N)),
        "inf": np.full(N, np.inf + 0j),
        "random_ofdm": np.fft.ifft(rng.choice([-1.0, 1.0], (N // 64, 64)), axis=1).reshape(-1),
    }
    stats = {}
    for name, y in cases.items():
        out, rx = gdm_rx(np.asarray(y, np.complex128), chunk=5000)
        assert out == [], name
        stats[name] = rx.stats()
        assert stats[name]["packets_ok"] == 0, name
    assert stats["inf"]["nonfinite_samples"] == N


def test_nonfinite_inside_a_burst_drops_only_that_burst():
    payloads = [bytes([i]) * 60 for i in range(5)]
    y = stock.modulate(payloads)
    burst = y.size // 5
    y[2 * burst + 500] = np.nan  # inside the third burst
    out, rx = gdm_rx(y)
    assert [p["payload"] for p in out] == payloads[:2] + payloads[3:]
    assert rx.stats()["bursts_dropped_nonfinite"] == 1


def test_bad_arguments():
    for kw in (dict(n_rx=0), dict(payload_mod="16qam"), dict(threshold=1.5), dict(fft_len=63),
               dict(cp_len=64)):
        with pytest.raises(ValueError):
            stock.StockOfdmReceiver(**kw)
    with pytest.raises(ValueError):
        stock.StockOfdmReceiver(n_rx=2).push(np.zeros((3, 10)))
