"""The committed recording of GNU Radio's stock digital.ofdm_tx decodes with gr-gdm at least as
well as with GNU Radio's own digital.ofdm_rx (issue #5)."""
from pathlib import Path

from gnuradio.gdm.blocks.sim_link import StockReplayLink, stock_ofdm_rx_reference
from gnuradio.gdm.io.golden import stock_payloads

BASE = Path(__file__).resolve().parents[2] / "recordings" / "stock_ofdm_tx_wifi64"


def test_gdm_decodes_at_least_what_stock_decodes():
    assert BASE.with_suffix(".sigmf-data").stat().st_size <= 2 * 2**20
    sent = set(stock_payloads())
    ours = StockReplayLink(str(BASE)).run_and_collect()
    ref = stock_ofdm_rx_reference(str(BASE))
    assert all(p in sent for p in ours["payloads"])  # good CRC means the right bytes
    assert ours["frames_ok"] >= ref["frames_ok"] and ours["frames_ok"] >= 110, (ours["frames_ok"], ref["frames_ok"])
