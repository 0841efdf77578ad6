import numpy as np
import pytest
from gnuradio import blocks, gr

from gnuradio import gdm
from gnuradio.gdm import FrameSpec
from gnuradio.gdm.ofdm.equalizer import equalize

from test_channel_estimator import _grids
from blockutil import tag, vec_source


@pytest.mark.parametrize("n_tx,method", [(1, "mrc"), (2, "zf"), (2, "lmmse")])
def test_matches_core(n_tx, method):
    spec = FrameSpec.preset("nr72", n_tx=n_tx)
    B, n_rx, nv = 3, 2, 0.05
    H, Y, full = _grids(spec, n_rx, B)
    Hf = np.zeros((B, spec.n_sym, n_rx, n_tx, spec.fft_len), np.complex64)
    Hf[..., spec.occupied_bins] = H.transpose(0, 3, 1, 2, 4)
    tb = gr.top_block()
    eq = gdm.mimo_equalizer("nr72", n_rx, n_tx, method)
    for r in range(n_rx):
        tb.connect(vec_source(full[:, r], spec.fft_len), (eq, r))
    tags = [tag(b * spec.n_sym, "gdm_noise_var", nv) for b in range(B)]
    tb.connect(vec_source(Hf, n_rx * n_tx * spec.fft_len, tags), (eq, n_rx))
    outs = [blocks.vector_sink_c(spec.n_occ) for _ in range(n_tx)]
    nvs = blocks.vector_sink_f(n_tx * spec.n_occ)
    for t, o in enumerate(outs):
        tb.connect((eq, t), o)
    tb.connect((eq, n_tx), nvs)
    tb.run()
    X, V = equalize(Y, H, nv, method)
    got = np.stack([np.asarray(o.data()).reshape(B, spec.n_sym, spec.n_occ) for o in outs], 1)
    assert np.allclose(got, X, atol=1e-3)
    gv = np.asarray(nvs.data()).reshape(B, spec.n_sym, n_tx, spec.n_occ).transpose(0, 2, 1, 3)
    assert np.allclose(gv, V, rtol=1e-3)


def test_bad_configuration():
    with pytest.raises(ValueError, match="mrc needs n_tx = 1"):
        gdm.mimo_equalizer(n_rx=2, n_tx=2, method="mrc")
    with pytest.raises(ValueError, match="need n_rx >= n_tx"):
        gdm.mimo_equalizer(n_rx=1, n_tx=2, method="zf")


def test_switching_to_mrc_with_two_streams_is_refused():
    eq = gdm.mimo_equalizer(n_rx=2, n_tx=2, method="lmmse")
    with pytest.raises(ValueError, match="mrc needs n_tx = 1"):
        eq.set_method("mrc")
    assert eq.method == "lmmse"
