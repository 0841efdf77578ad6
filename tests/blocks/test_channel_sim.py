import numpy as np
import pmt
import pytest
from gnuradio import blocks, gr

from gnuradio import gdm


def _run(n_tx, n_rx, snr, x, **kw):
    tb = gr.top_block()
    srcs = [blocks.vector_source_c(x[i].tolist(), False) for i in range(n_tx)]
    ch = gdm.channel_sim("nr72", n_tx, n_rx, snr_db=snr, **kw)
    sinks = [blocks.vector_sink_c() for _ in range(n_rx)]
    for i, s in enumerate(srcs):
        tb.connect(s, (ch, i))
    for i, s in enumerate(sinks):
        tb.connect((ch, i), s)
    return tb, ch, sinks


def test_matches_the_core_and_snr_is_settable():
    rng = np.random.default_rng(0)
    x = (rng.standard_normal((2, 20000)) + 1j * rng.standard_normal((2, 20000))).astype(np.complex64) / np.sqrt(2)
    tb, ch, sinks = _run(2, 3, None, x, profile="TDL-B", delay_spread=100e-9, doppler=30.0, seed=5)
    tb.run()
    from gnuradio.gdm.sim.channel import StreamChannel
    ref = StreamChannel(2, 3, 1.92e6, "TDL-B", 100e-9, 30.0, None, seed=5).process(x)
    assert np.allclose(np.stack([np.asarray(s.data()) for s in sinks]), ref, atol=1e-4)
    # noise only, SNR changed before running: noise power follows
    tb, ch, sinks = _run(1, 1, 30.0, np.zeros((1, 40000), np.complex64))
    ch.set_snr_db(10.0)
    tb.run()
    assert np.isclose(np.mean(np.abs(np.asarray(sinks[0].data())) ** 2), 0.1, rtol=0.05)


def test_truth_message_for_each_tagged_frame(collector):
    tb = gr.top_block()
    tx = gdm.ofdm_tx("nr72", 1, n_frames=3)
    ch = gdm.channel_sim("nr72", 1, 2, snr_db=20.0)
    col = collector()
    tb.connect(tx, ch)
    for r in range(2):
        tb.connect((ch, r), blocks.null_sink(gr.sizeof_gr_complex))
    tb.msg_connect((ch, "truth"), (col, "in"))
    tb.run()
    msgs = [pmt.to_python(m) for m in col.drained()]
    assert [m["seq"] for m in msgs] == [0, 1, 2]
    assert msgs[1]["arrival"] == 2160 + 8 and msgs[0]["H"].size == 2 * 14 * 72


def test_bad_arguments():
    with pytest.raises(ValueError, match="valid profiles: TDL-A"):
        gdm.channel_sim(profile="EVA")
    with pytest.raises(ValueError, match="n_rx and n_tx must be >= 1"):
        gdm.channel_sim(n_rx=0)


def test_impairments_are_parameters_and_settable():
    ch = gdm.channel_sim("nr72", 1, 2, snr_db=None, pa="rapp", pa_backoff_db=3.0, adc_bits=6)
    assert ch.imp.pa == "rapp" and ch.imp.adc_bits == 6
    ch.set_pa_backoff_db(9.0)
    ch.set_phase_noise("wiener")
    assert ch.imp.pa_backoff_db == 9.0 and ch.imp.phase_noise == "wiener"
    assert len(ch.ch._rx_chain) == 2  # phase noise + ADC
    with pytest.raises(ValueError, match="valid: none, wiener, mask"):
        ch.set_phase_noise("cosmic")
    assert ch.imp.phase_noise == "wiener"


def test_link_degrades_with_strong_impairments():
    from gnuradio.gdm.link import LinkConfig, simulate
    clean = simulate(LinkConfig(snr_db=30, frames=20), ["ls_interp"])["ls_interp"]
    bad = simulate(LinkConfig(snr_db=30, frames=20, impairments={"pa": "rapp", "pa_backoff_db": -3.0,
                                                                 "phase_noise": "wiener", "pn_linewidth_hz": 2000.0}),
                   ["ls_interp"])["ls_interp"]
    assert bad["evm_db"] > clean["evm_db"] + 5
