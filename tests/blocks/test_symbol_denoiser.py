"""symbol_denoiser between equalizer and decoder: the block equals the core (tiny model trained
in the test session), every frame comes out (no partial batch lost), tags are copied, an
inference failure gives tagged and counted plain-demapping frames, nonfinite frames pass, bad
model files stop it at construction, and the method switches while running."""
import numpy as np
import pmt
import pytest
from gnuradio import blocks, gr

from gnuradio import gdm
from gnuradio.gdm import FrameSpec, denoising
from gnuradio.gdm.denoising.tiny import tiny_model
from gnuradio.gdm.runtime import MetadataMismatch, ModelFileMissing

from blockutil import tag, vec_source

SPEC = FrameSpec.preset("nr72")
S, K = SPEC.n_sym, SPEC.n_occ


@pytest.fixture(scope="module")
def tiny():
    return tiny_model()[1]


def _frames(B, seed=0):
    rng = np.random.default_rng(seed)
    from gnuradio.gdm.ofdm import qam

    x = qam.constellation("16qam")[rng.integers(0, 16, (B, 1, S, K))]
    y = (x * np.exp(0.2j) + 0.1 * (rng.standard_normal(x.shape) + 1j * rng.standard_normal(x.shape))).astype(np.complex64)
    return y, np.full(y.shape, 0.02, np.float32)


def _run(dn, X, V, frame_tags=None):
    B = X.shape[0]
    tb = gr.top_block()
    tags = frame_tags if frame_tags is not None else [tag(b * S, "gdm_frame", {"index": b}) for b in range(B)]
    tb.connect(vec_source(X[:, 0], K, tags), (dn, 0))
    tb.connect(vec_source(V[:, 0], K), (dn, 1))
    sx, sv = blocks.vector_sink_c(K), blocks.vector_sink_f(K)
    tb.connect((dn, 0), sx)
    tb.connect((dn, 1), sv)
    tb.run()
    return (np.asarray(sx.data()).reshape(-1, 1, S, K), np.asarray(sv.data()).reshape(-1, 1, S, K),
            sx.tags(), sv.tags())


def test_block_matches_core_and_loses_no_frame(tiny):
    B = 37  # not a multiple of the 32-frame batch the buffers are sized for
    X, V = _frames(B)
    dn = gdm.symbol_denoiser("nr72", 1, "16qam", "diffusion", model=str(tiny), device="cpu")
    gx, gv, tx, tv = _run(dn, X, V)
    assert gx.shape[0] == B and gv.shape[0] == B
    ref_x, ref_v = denoising.make("diffusion", SPEC, model=tiny, device="cpu").denoise(X, V)
    np.testing.assert_allclose(gx, ref_x, atol=1e-4)
    np.testing.assert_allclose(gv, ref_v, rtol=1e-4)
    for tags in (tx, tv):
        frames = [t for t in tags if pmt.symbol_to_string(t.key) == "gdm_frame"]
        assert [t.offset for t in frames] == [b * S for b in range(B)]
    assert dn.stats() == {"frames": B, "fallback": 0, "flagged": 0, "method": "diffusion"}


def test_inference_failure_is_tagged_counted_and_plain(tiny, caplog):
    X, V = _frames(4)
    dn = gdm.symbol_denoiser("nr72", 1, "16qam", "diffusion", model=str(tiny))

    def broken(**kw):
        raise RuntimeError("device lost")

    dn._cache["diffusion"].model.run = broken
    gx, gv, tx, _ = _run(dn, X, V)
    np.testing.assert_array_equal(gx, X)
    np.testing.assert_array_equal(gv, V)
    fb = [t for t in tx if pmt.symbol_to_string(t.key) == "gdm_dn_fallback"]
    assert len(fb) == 4 and {pmt.symbol_to_string(t.value) for t in fb} == {"plain"}
    assert dn.stats()["fallback"] == 4 and "inference failed" in caplog.text
    dn._cache["diffusion"].denoise = lambda X, V: (_ for _ in ()).throw(MemoryError("out of memory"))
    gx, _, tx, _ = _run(dn, X, V)
    np.testing.assert_array_equal(gx, X)
    assert dn.stats()["fallback"] == 8 and "MemoryError" in caplog.text


def test_nonfinite_frames_pass_through_for_the_decoder():
    X, V = _frames(3)
    X[1, 0, 5, 5] = np.nan
    tags = [tag(b * S, "gdm_frame", {"index": b, "nonfinite": b == 1}) for b in range(3)]
    dn = gdm.symbol_denoiser("nr72", 1, "16qam", "cpe")
    gx, _, _, _ = _run(dn, X, V, tags)
    assert np.isnan(gx[1, 0, 5, 5]) and np.isfinite(gx[[0, 2]]).all()
    assert dn.stats()["flagged"] == 1


def test_construction_refuses_bad_models_and_methods(tiny, tmp_path):
    with pytest.raises(ModelFileMissing, match="does not exist"):
        gdm.symbol_denoiser("nr72", 1, "16qam", "diffusion", model=str(tmp_path / "none.onnx"))
    with pytest.raises(MetadataMismatch, match="modulation"):
        gdm.symbol_denoiser("nr72", 1, "bpsk", "diffusion", model=str(tiny))
    with pytest.raises(ValueError, match="unknown method 'magic'; valid methods: none, cpe, diffusion, pa_cancel"):
        gdm.symbol_denoiser("nr72", 1, "16qam", "magic")


def test_method_switches_while_running(tiny):
    dn = gdm.symbol_denoiser("nr72", 1, "16qam", "none", model=str(tiny))
    X, V = _frames(2)
    gx, _, _, _ = _run(dn, X, V)
    np.testing.assert_array_equal(gx, X)
    dn.set_method("cpe")
    assert dn.method == "cpe"
    with pytest.raises(ValueError, match="unknown method"):
        dn.set_method("bogus")
    assert dn.method == "cpe"


def test_pa_cancel_runs_in_the_block():
    """The canceller is a block method like the others: every frame out, as the core gives it
    (its PA fit pools the frames of a work() call, so batches may differ slightly)."""
    B = 6
    X, V = _frames(B, seed=3)
    gx, gv, _, _ = _run(gdm.symbol_denoiser("nr72", 1, "16qam", "pa_cancel"), X, V)
    ref_x, ref_v = denoising.make("pa_cancel", SPEC).denoise(X, V)
    assert gx.shape == X.shape and np.isfinite(gx).all() and np.isfinite(gv).all()
    np.testing.assert_allclose(gx, ref_x, atol=0.02)
    np.testing.assert_allclose(gv, ref_v, rtol=0.05)
