"""Regenerates the committed golden recordings (deterministic):

    python -m gnuradio.gdm.io.golden [OUT_DIR]      # default: recordings/

- sim_1x2_nr72_15dB: the simulated 1x2 link at 15 dB (TDL-C 300 ns, 50 Hz), 50 frames, recorded by
  the live flowgraph with one annotation per decoded frame (same as `gr-gdm record`).
- stock_ofdm_tx_wifi64: 120 packets of 96 random bytes from GNU Radio's stock digital.ofdm_tx
  (fft 64, cp 16, BPSK), back to back, through GNU Radio's channels.channel_model (AWGN at 12 dB
  per sample, CFO 0.08 subcarrier) — a transmitter and a channel we did not write.
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from .recording import write_meta

STOCK_PACKETS, STOCK_LEN, STOCK_SNR_DB, STOCK_CFO = 120, 96, 12.0, 0.08


def stock_payloads(n: int = STOCK_PACKETS, length: int = STOCK_LEN, seed: int = 7) -> list[bytes]:
    rng = np.random.default_rng(seed)
    return [rng.integers(0, 256, length, np.uint8).tobytes() for _ in range(n)]


def stock_recording(out: Path) -> Path:
    from gnuradio import blocks, channels, digital, gr

    payloads = stock_payloads()
    data = np.frombuffer(b"".join(payloads), np.uint8).tolist()

    def tx_samples(noise: float, cfo: float) -> np.ndarray:
        tb = gr.top_block()
        src = blocks.vector_source_b(data, False)
        s2t = blocks.stream_to_tagged_stream(gr.sizeof_char, 1, STOCK_LEN, "packet_len")
        tx = digital.ofdm_tx(fft_len=64, cp_len=16, packet_length_tag_key="packet_len", rolloff=0)
        ch = channels.channel_model(noise_voltage=noise, frequency_offset=cfo / 64, epsilon=1.0,
                                    taps=[1.0 + 0j], noise_seed=11)
        snk = blocks.vector_sink_c()
        tb.connect(src, s2t, tx, ch, snk)
        tb.run()
        return np.asarray(snk.data(), np.complex64)

    p = float(np.mean(np.abs(tx_samples(0.0, 0.0)) ** 2))
    y = tx_samples(float(np.sqrt(p * 10 ** (-STOCK_SNR_DB / 10))), STOCK_CFO)
    y = np.concatenate([np.zeros(500, np.complex64), y, np.zeros(500, np.complex64)])
    base = out / "stock_ofdm_tx_wifi64"
    y.astype("<c8").tofile(base.with_suffix(".sigmf-data"))
    write_meta(base, sample_rate=1e6, num_channels=1, n_samples=y.size, spec=None,
               hw="GNU Radio 3.10 digital.ofdm_tx + channels.channel_model (simulation)",
               description=f"stock digital.ofdm_tx, {STOCK_PACKETS} back-to-back BPSK packets of {STOCK_LEN} "
                           f"bytes, AWGN {STOCK_SNR_DB:g} dB per sample, CFO {STOCK_CFO} subcarrier",
               extra={"gdm:waveform": "stock_ofdm", "gdm:stock": {"fft_len": 64, "cp_len": 16,
                                                                   "payload_mod": "bpsk",
                                                                   "packets": STOCK_PACKETS,
                                                                   "packet_len": STOCK_LEN, "seed": 7}})
    return base


def sim_recording(out: Path) -> Path:
    from ..blocks.sim_link import SimLink
    from ..link import LinkConfig

    base = out / "sim_1x2_nr72_15dB"
    cfg = LinkConfig(n_rx=2, snr_db=15.0, frames=50, estimator="lmmse", profile="TDL-C",
                     delay_spread=300e-9, doppler=50.0)
    SimLink(cfg, record=str(base), center_freq=2.45e9).run_and_collect()
    return base


def main(argv=None):
    out = Path((argv or sys.argv[1:] or ["recordings"])[0])
    out.mkdir(parents=True, exist_ok=True)
    for f in (sim_recording, stock_recording):
        print("wrote", f(out))


if __name__ == "__main__":
    main()
