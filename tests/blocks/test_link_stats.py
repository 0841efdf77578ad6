import numpy as np
from gnuradio import gr

from gnuradio import gdm
from gnuradio.gdm.blocks.sim_link import SimLink
from gnuradio.gdm.link import LinkConfig


def test_counts_via_messages_even_when_queued_at_shutdown():
    ls = gdm.link_stats("nr72", 1)
    from gnuradio.gdm.blocks._common import to_pmt
    import pmt
    ls._tx(to_pmt({"seq": 0, "payload": b"ab"}))
    ls.to_basic_block()._post(pmt.intern("tx"), to_pmt({"seq": 1, "payload": b"cd"}))  # queued, not handled
    s = ls.stats()
    assert s["frames_sent"] == 2 and s["frames_ok"] == 0 and s["per"] == 1.0


def test_sim_link_end_to_end_1x2_and_2x2():
    for n_rx, n_tx in ((2, 1), (2, 2)):
        s = SimLink(LinkConfig(n_rx=n_rx, n_tx=n_tx, snr_db=28, frames=40, estimator="lmmse")).run_and_collect()
        assert s["frames_sent"] == 40 and s["frames_ok"] >= 39, s
        assert s["nmse_frames"] >= 39 and s["nmse_db"] < -20
        assert s["frames_lost"] == 40 - s["frames_ok"]


def test_sim_link_with_iq_compensation_and_symbol_denoiser():
    from gnuradio.gdm.link import simulate

    imp = {"phase_noise": "wiener", "pn_linewidth_hz": 150.0, "iq_gain_db": 1.0, "iq_phase_deg": 5.0}
    cfg = LinkConfig(snr_db=14, frames=40, estimator="lmmse", impairments=imp, denoiser="cpe", iq_compensation=True)
    s = SimLink(cfg).run_and_collect()
    assert s["denoiser"]["frames"] == 40 and s["denoiser"]["method"] == "cpe" and s["iq_compensation"]
    plain = SimLink(LinkConfig(**{**cfg.__dict__, "denoiser": "none"})).run_and_collect()
    assert plain["denoiser"] is None
    assert s["raw_ber"] < 0.8 * plain["raw_ber"]  # the CPE block acts in the flowgraph
    ref = simulate(cfg, ["lmmse"])["lmmse"]  # the numpy link with the same receiver
    assert abs(s["raw_ber"] - ref["raw_ber"]) < 0.25 * ref["raw_ber"], (s["raw_ber"], ref["raw_ber"])
