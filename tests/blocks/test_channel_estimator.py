import numpy as np
import pmt
import pytest
from gnuradio import blocks, gr

from gnuradio import gdm
from gnuradio.gdm import FrameSpec, estimation
from gnuradio.gdm.sim.grid import ChannelConfig, grid_channels
from gnuradio.gdm.metrics.evaluate import received_grid

from blockutil import tag, vec_source


def _grids(spec, n_rx, B=5, snr=15, seed=0):
    rng = np.random.default_rng(seed)
    H = grid_channels(spec, ChannelConfig("TDL-B", 100e-9, 20), B, n_rx=n_rx, rng=rng)
    Y = received_grid(H, spec, snr, rng)  # [B, rx, S, K]
    full = np.zeros((B, n_rx, spec.n_sym, spec.fft_len), np.complex64)
    full[..., spec.occupied_bins] = Y
    return H, Y, full


@pytest.mark.parametrize("n_tx,method", [(1, "ls_interp"), (2, "lmmse")])
def test_output_equals_core_estimate_with_tags(n_tx, method):
    spec = FrameSpec.preset("nr72", n_tx=n_tx)
    n_rx, B = 2, 5
    H, Y, full = _grids(spec, n_rx, B)
    nv = 10 ** (-15 / 10)
    tb = gr.top_block()
    est = gdm.channel_estimator("nr72", n_rx, n_tx, method)
    snk = blocks.vector_sink_c(n_rx * n_tx * spec.fft_len)
    for r in range(n_rx):
        tags = [tag(b * spec.n_sym, "gdm_frame", {"index": b, "noise_var": nv}) for b in range(B)] if r == 0 else []
        tb.connect(vec_source(full[:, r], spec.fft_len, tags), (est, r))
    tb.connect(est, snk)
    tb.run()
    out = np.asarray(snk.data()).reshape(B, spec.n_sym, n_rx, n_tx, spec.fft_len)[..., spec.occupied_bins]
    ref = estimation.make(method, spec, n_rx).estimate(Y, nv)
    assert np.allclose(out.transpose(0, 2, 3, 1, 4), ref, atol=1e-4)
    keys = [pmt.symbol_to_string(t.key) for t in snk.tags()]
    assert keys.count("gdm_frame") == B and keys.count("gdm_noise_var") == B


def test_method_switch_and_bad_names():
    est = gdm.channel_estimator("nr72", 1, 1, "ls")
    est.set_method("lmmse")
    assert est.method == "lmmse"
    with pytest.raises(ValueError, match="valid methods: .*diffusion.*lmmse"):
        est.set_method("wiener")
    assert est.method == "lmmse"  # a failed switch keeps the working estimator
    with pytest.raises(ValueError, match="valid methods"):
        gdm.channel_estimator(method="magic")


def test_flagged_frames_are_not_estimated():
    spec = FrameSpec.preset("nr72")
    _, _, full = _grids(spec, 1, 3)
    tb = gr.top_block()
    est = gdm.channel_estimator("nr72", 1, 1, "ls")
    snk = blocks.vector_sink_c(spec.fft_len)
    tags = [tag(b * spec.n_sym, "gdm_frame", {"index": b, "noise_var": 0.1, "nonfinite": b == 1}) for b in range(3)]
    tb.connect(vec_source(full[:, 0], spec.fft_len, tags), est, snk)
    tb.run()
    out = np.asarray(snk.data()).reshape(3, spec.n_sym, -1)
    assert np.abs(out[1]).max() == 0 and np.abs(out[0]).max() > 0
    assert est.stats()["flagged"] == 1
