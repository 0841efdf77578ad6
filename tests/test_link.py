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


def test_receiver_variants_share_the_received_samples():
    from gnuradio.gdm.link import Receiver

    cfg = LinkConfig(snr_db=12, frames=40, impairments={"phase_noise": "wiener", "pn_linewidth_hz": 150.0})
    rx = {"plain": Receiver("lmmse"), "cpe": Receiver("lmmse", "cpe"), "cpe+iq": Receiver("lmmse", "cpe", True)}
    r = simulate(cfg, [], receivers=rx)
    again = simulate(cfg, ["lmmse"])["lmmse"]  # the config's own receiver: plain, no IQ compensation
    assert r["plain"]["raw_ber"] == again["raw_ber"] and r["plain"]["receiver"] == "lmmse"
    assert r["cpe"]["receiver"] == "lmmse+cpe" and r["cpe+iq"]["receiver"] == "lmmse+iq+cpe"
    assert r["cpe"]["raw_ber"] < 0.8 * r["plain"]["raw_ber"]  # phase noise: CPE correction pays
    assert r["plain"]["frames_sent"] == r["cpe"]["frames_sent"] == 40
