"""GNU Radio's stock OFDM loopback (digital.ofdm_tx -> AWGN -> digital.ofdm_rx) on N back-to-back
packets: the reference that gr-gdm's own link is compared with in the same run."""
from __future__ import annotations

import time

import numpy as np
from gnuradio import blocks, channels, digital, gr


def _tx_power(packet_len: int, seed: int) -> tuple[float, float]:
    """Mean sample power and samples per packet of the stock transmitter."""
    tb = gr.top_block()
    data = np.random.default_rng(seed).integers(0, 256, packet_len * 20, np.uint8).tolist()
    src = blocks.vector_source_b(data, False)
    s2t = blocks.stream_to_tagged_stream(gr.sizeof_char, 1, packet_len, "packet_len")
    tx = digital.ofdm_tx(fft_len=64, cp_len=16, packet_length_tag_key="packet_len", rolloff=0, scramble_bits=False)
    snk = blocks.vector_sink_c()
    tb.connect(src, s2t, tx, snk)
    tb.run()
    x = np.asarray(snk.data())
    return float(np.mean(np.abs(x) ** 2)), x.size / 20


def stock_loopback(n_packets: int, packet_len: int = 96, snr_db: float = 25.0, seed: int = 0) -> dict:
    """Packets of random bytes, back to back; SNR is per time-domain sample (signal power from a
    pilot run). Returns sent / received-with-good-CRC counts and the wall time."""
    p, per_packet = _tx_power(packet_len, seed)
    tb = gr.top_block("stock_ofdm_loopback")
    data = np.random.default_rng(seed).integers(0, 256, packet_len * n_packets, np.uint8).tolist()
    src = blocks.vector_source_b(data, False)
    s2t = blocks.stream_to_tagged_stream(gr.sizeof_char, 1, packet_len, "packet_len")
    tx = digital.ofdm_tx(fft_len=64, cp_len=16, packet_length_tag_key="packet_len", rolloff=0, scramble_bits=False)
    ch = channels.channel_model(noise_voltage=float(np.sqrt(p * 10 ** (-snr_db / 10))), frequency_offset=0.0,
                                epsilon=1.0, taps=[1.0 + 0j], noise_seed=seed + 1)
    rx = digital.ofdm_rx(fft_len=64, cp_len=16, packet_length_tag_key="length", scramble_bits=False)
    snk = blocks.vector_sink_b()
    tb.connect(src, s2t, tx, ch, rx, snk)
    t0 = time.monotonic()
    tb.run()
    wall = time.monotonic() - t0
    got = np.asarray(snk.data(), np.uint8)
    # ofdm_rx passes only packets whose CRC-32 checks; count them by payload bytes.
    sent = {bytes(r) for r in np.asarray(data, np.uint8).reshape(n_packets, packet_len)}
    ok = sum(bytes(got[i:i + packet_len]) in sent for i in range(0, got.size - packet_len + 1, packet_len))
    return {"packets_sent": n_packets, "packets_ok": ok, "packets_lost": n_packets - ok,
            "per": 1 - ok / n_packets, "wall_s": wall, "samples": int(per_packet * n_packets),
            "samples_per_s": per_packet * n_packets / wall}
