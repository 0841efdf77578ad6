import numpy as np
import pmt
import pytest
from gnuradio import blocks, channels, digital, gr

from gnuradio.gdm.blocks.stock_ofdm_rx import stock_ofdm_rx
from gnuradio.gdm.ofdm import stock


def payloads_of(msgs):
    return [bytes(pmt.u8vector_elements(pmt.cdr(m))) for m in msgs]


def test_live_stock_ofdm_tx_to_gdm_receiver(collector):
    """digital.ofdm_tx -> channel_model (AWGN, CFO) -> gdm stock_ofdm_rx, in one flowgraph."""
    rng = np.random.default_rng(0)
    n, plen = 60, 64
    data = rng.integers(0, 256, n * plen, np.uint8)
    tb = gr.top_block()
    src = blocks.vector_source_b(data.tolist(), False)
    s2t = blocks.stream_to_tagged_stream(gr.sizeof_char, 1, plen, "packet_len")
    tx = digital.ofdm_tx(fft_len=64, cp_len=16, packet_length_tag_key="packet_len", rolloff=0,
                         scramble_bits=False)
    # ofdm_tx's mean sample power is ~52 (unnormalised IFFT of 52 unit carriers): SNR 20 dB
    # with noise_voltage 0.72; CFO 0.1 subcarrier.
    ch = channels.channel_model(noise_voltage=0.72, frequency_offset=0.1 / 64, epsilon=1.0,
                                taps=[1.0 + 0j], noise_seed=1)
    rx = stock_ofdm_rx(n_rx=1, sample_rate=64e3)
    pdus = collector()
    tb.connect(src, s2t, tx, ch, rx)
    tb.msg_connect((rx, "pdus"), (pdus, "in"))
    tb.run()
    msgs = pdus.drained()
    assert payloads_of(msgs) == [bytes(r) for r in data.reshape(n, plen)]
    meta = [pmt.to_python(pmt.car(m)) for m in msgs]
    assert [m["header_number"] for m in meta] == list(range(n))
    assert all(m["crc_ok"] for m in meta)
    assert all(abs(m["cfo_hz"] - 100.0) < 10 for m in meta)  # 0.1 subcarrier of 1 kHz
    s = rx.stats()
    assert s["packets_ok"] == s["pdus"] == n and s["header_crc_failures"] == 0


def test_two_antennas_qpsk_and_garbage(collector):
    rng = np.random.default_rng(1)
    payloads = [rng.integers(0, 256, int(k), np.uint8).tobytes() for k in rng.integers(1, 200, 12)]
    fmt = stock.StockFormat(payload_mod="qpsk")
    x = stock.modulate(payloads, fmt)
    x = x / np.sqrt(np.mean(np.abs(x) ** 2))
    noise = (rng.standard_normal(20000) + 1j * rng.standard_normal(20000)) * 0.3
    h = np.array([[0.8 + 0.3j], [0.2 - 0.9j]])
    sig = np.concatenate([noise, x, noise[:3000]])
    y = h * sig[None] + 0.05 * (rng.standard_normal((2, sig.size)) + 1j * rng.standard_normal((2, sig.size)))
    tb = gr.top_block()
    rx = stock_ofdm_rx(n_rx=2, payload_mod="qpsk")
    pdus = collector()
    for a in range(2):
        tb.connect(blocks.vector_source_c(y[a].astype(np.complex64).tolist(), False), (rx, a))
    tb.msg_connect((rx, "pdus"), (pdus, "in"))
    tb.run()
    msgs = pdus.drained()
    assert payloads_of(msgs) == payloads
    offs = [pmt.to_python(pmt.car(m))["sample_offset"] for m in msgs]
    assert offs[0] == 20000
    assert rx.stats()["packets_ok"] == len(payloads)


def test_noise_only_and_nonfinite_input(collector):
    rng = np.random.default_rng(2)
    y = (rng.standard_normal(30000) + 1j * rng.standard_normal(30000)).astype(np.complex64)
    y[100:200] = np.nan
    tb = gr.top_block()
    rx = stock_ofdm_rx()
    pdus = collector()
    tb.connect(blocks.vector_source_c(y.tolist(), False), rx)
    tb.msg_connect((rx, "pdus"), (pdus, "in"))
    tb.run()
    assert pdus.drained() == []
    s = rx.stats()
    assert s["pdus"] == 0 and s["nonfinite_samples"] == 100


def test_bad_arguments():
    with pytest.raises(ValueError):
        stock_ofdm_rx(n_rx=0)
    with pytest.raises(ValueError):
        stock_ofdm_rx(payload_mod="64qam")
