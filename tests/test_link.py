import pytest

from gnuradio.gdm.link import LinkConfig, simulate


def test_numpy_link_decodes_and_orders_estimators():
    r = simulate(LinkConfig(snr_db=12, frames=60, profile="TDL-C", delay_spread=300e-9, doppler=50),
                 ["ls", "ls_interp", "lmmse"])
    assert r["lmmse"]["frames_detected"] >= 58
    assert r["lmmse"]["nmse_db"] < r["ls_interp"]["nmse_db"] < r["ls"]["nmse_db"]
    assert r["lmmse"]["per"] <= r["ls"]["per"]
    assert r["lmmse"]["frames_ok"] >= 50


@pytest.mark.parametrize("n_rx,n_tx", [(2, 2), (4, 1)])
def test_numpy_link_mimo_high_snr(n_rx, n_tx):
    r = simulate(LinkConfig(n_rx=n_rx, n_tx=n_tx, snr_db=30, frames=20, gap=300), ["ls_interp"])["ls_interp"]
    assert r["frames_ok"] == 20 and r["ber"] == 0
