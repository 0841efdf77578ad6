"""channel_estimator(method='diffusion'): a tiny model trained in the test session runs through
the block like the core; bad model files stop the block at construction with the reason; an
inference failure gives tagged, counted fallback frames and the flowgraph keeps running."""
import shutil

import numpy as np
import pmt
import pytest
from gnuradio import blocks, gr

from gnuradio import gdm
from gnuradio.gdm import FrameSpec, estimation
from gnuradio.gdm.models.tiny import tiny_model
from gnuradio.gdm.runtime import ChecksumMismatch, MetadataMismatch, ModelFileMissing, NotOnnxModel, write_sums

from blockutil import tag, vec_source
from test_channel_estimator import _grids

SPEC = FrameSpec.preset("nr72")


@pytest.fixture(scope="module")
def tiny():
    return tiny_model()[1]


def _run(est, full, n_rx, nv, B):
    tb = gr.top_block()
    snk = blocks.vector_sink_c(n_rx * SPEC.fft_len)
    for r in range(n_rx):
        tags = [tag(b * SPEC.n_sym, "gdm_frame", {"index": b, "noise_var": nv}) for b in range(B)] if r == 0 else []
        tb.connect(vec_source(full[:, r], SPEC.fft_len, tags), (est, r))
    tb.connect(est, snk)
    tb.run()
    out = np.asarray(snk.data()).reshape(B, SPEC.n_sym, n_rx, 1, SPEC.fft_len)[..., SPEC.occupied_bins]
    return out.transpose(0, 2, 3, 1, 4), snk.tags()


def test_block_matches_core_with_tiny_model(tiny):
    B, n_rx, nv = 6, 2, 10 ** (-1.5)
    H, Y, full = _grids(SPEC, n_rx, B)
    est = gdm.channel_estimator("nr72", n_rx, 1, "diffusion", model=str(tiny), device="cpu")
    out, tags = _run(est, full, n_rx, nv, B)
    ref = estimation.make("diffusion", SPEC, n_rx, model=tiny, device="cpu").estimate(Y, nv)
    np.testing.assert_allclose(out, ref, atol=1e-4)
    assert est.stats()["fallback"] == 0
    assert not [t for t in tags if pmt.symbol_to_string(t.key) == "gdm_est_fallback"]


def test_inference_failure_falls_back_tagged_and_counted(tiny, caplog):
    B, n_rx, nv = 4, 1, 0.05
    H, Y, full = _grids(SPEC, n_rx, B)
    est = gdm.channel_estimator("nr72", n_rx, 1, "diffusion", model=str(tiny))
    core = est._cache["diffusion"]

    def broken(**kw):
        raise RuntimeError("device lost")

    core.model.run = broken
    out, tags = _run(est, full, n_rx, nv, B)
    fb = [t for t in tags if pmt.symbol_to_string(t.key) == "gdm_est_fallback"]
    assert len(fb) == B and est.stats()["fallback"] == B
    assert {pmt.symbol_to_string(t.value) for t in fb} == {"gmm_lmmse"}
    assert np.isfinite(out).all() and "diffusion inference failed" in caplog.text
    # a whole-call failure (not only the network) falls back to LS + interpolation
    core.estimate = lambda Y, nv=None: (_ for _ in ()).throw(MemoryError("out of memory"))
    out, tags = _run(est, full, n_rx, nv, B)
    ref = estimation.make("ls_interp", SPEC, n_rx).estimate(Y, nv)
    np.testing.assert_allclose(out, ref, atol=1e-5)
    assert est.stats()["fallback"] == 2 * B


def test_bad_model_files_are_refused_at_construction(tiny, tmp_path):
    with pytest.raises(ModelFileMissing, match="does not exist"):
        gdm.channel_estimator("nr72", 2, 1, "diffusion", model=str(tmp_path / "missing.onnx"))
    shutil.copy(tiny, tmp_path / "m.onnx")
    write_sums(tmp_path)
    (tmp_path / "m.onnx").write_bytes((tmp_path / "m.onnx").read_bytes() + b"\0")
    with pytest.raises(ChecksumMismatch, match="checksum mismatch"):
        gdm.channel_estimator("nr72", 2, 1, "diffusion", model=str(tmp_path / "m.onnx"))
    (tmp_path / "junk.onnx").write_bytes(b"\x08\x01junk" * 40)
    with pytest.raises(NotOnnxModel, match="not an ONNX model"):
        gdm.channel_estimator("nr72", 2, 1, "diffusion", model=str(tmp_path / "junk.onnx"))
    with pytest.raises(MetadataMismatch, match="n_sym: model 14, here 12"):
        gdm.channel_estimator("wifi64", 2, 1, "diffusion", model=str(tiny))


def test_shipped_model_is_the_default():
    est = gdm.channel_estimator("nr72", 2, 1, "diffusion")
    core = est._cache["diffusion"]
    assert core.model.path.name == "gdm_chanest_nr72.onnx" and core.model.sha256
