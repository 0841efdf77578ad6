"""Streaming core (what the xlmimo_estimator block calls) and evaluation rows."""
import csv

import numpy as np
import pytest

from gnuradio.gdm import xlmimo
from gnuradio.gdm.sim import nearfield as nf
from gnuradio.gdm.xlmimo import baselines, evaluate

CFG = nf.NearFieldConfig(n_ant=64, n_subcarriers=2, n_rf=8, n_users=2, n_paths=2, r_range_m=(1.0, 3.0))


def test_core_flat_layout_matches_direct_call():
    rng = np.random.default_rng(0)
    up = nf.uplink_pilots(rng, CFG, n_pilots=3, snr_db=20, n_frames=1)
    H, W, Y = up.per_user()
    core = xlmimo.EstimatorCore("somp", n_pilots=3, cfg=CFG, combiners=up.W[0], noise_var=up.noise_var)
    assert core.vlen_in == 3 * 8 * 2 and core.vlen_out == 64 * 2
    out = core.process(Y.reshape(Y.shape[0], -1))
    ref = baselines.somp(Y, W, up.noise_var, CFG)
    assert out.shape == (2, 128)
    assert np.allclose(out, ref.reshape(2, -1))
    # per-frame combiners passed with the batch give the same result
    assert np.allclose(core.process(Y.reshape(2, -1), combiners=W), out)


def test_core_refuses_bad_input():
    core = xlmimo.EstimatorCore("swomp", n_pilots=2, cfg=CFG)
    with pytest.raises(ValueError, match="no combiner"):
        core.process(np.zeros(core.vlen_in, np.complex64))
    with pytest.raises(ValueError, match="combiners must have"):
        core.set_combiners(np.zeros((3, 8, 64)))
    core.set_combiners(np.ones((2, 8, 64)) / 8)
    with pytest.raises(ValueError, match="length 32"):
        core.process(np.zeros(31, np.complex64))
    with pytest.raises(ValueError, match="LS needs"):
        core.set_method("ls")
    with pytest.raises(ValueError, match="unknown estimator"):
        xlmimo.make("nope", CFG)
    assert set(xlmimo.names()) == {"diffusion", "sigw", "somp", "swomp", "ls"}


def test_evaluate_rows_csv_and_png(tmp_path):
    rows = evaluate.evaluate(CFG, scenario="tiny", estimators=("swomp", "ls", "genie"),
                             pilots=(4, 8), snrs=(20.0,), n_frames=1, progress=False)
    by = {(r["estimator"], r["pilot_overhead"]): r["value"] for r in rows if r["metric"] == "nmse_db"}
    ms = {(r["estimator"], r["pilot_overhead"]): r["value"] for r in rows if r["metric"] == "ms_per_estimate"}
    assert ("ls", 32) not in by and ("ls", 64) in by           # LS only where P N_RF >= N
    assert by[("genie", 64)] < by[("ls", 64)]                  # the true-path bound is the lowest
    assert set(ms) == set(by) and all(v > 0 for v in ms.values())
    assert all(r["n_frames"] == 1 and r["scenario"] == "tiny" for r in rows)
    evaluate.write_csv(rows, tmp_path / "x.csv")
    with open(tmp_path / "x.csv") as fh:
        got = list(csv.DictReader(fh))
    assert list(got[0]) == list(evaluate.CSV_COLUMNS) and len(got) == len(rows)
    evaluate.plot(rows, tmp_path / "x.png", n_ant=CFG.n_ant)
    assert (tmp_path / "x.png").stat().st_size > 1000
    assert "| swomp |" in evaluate.table(rows, 20.0)


def test_core_validates_the_prior_file(tmp_path):
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper
    g = helper.make_graph([helper.make_node("Identity", ["x"], ["h0"])], "g",
                          [helper.make_tensor_value_info("x", TensorProto.FLOAT, None)],
                          [helper.make_tensor_value_info("h0", TensorProto.FLOAT, None)])
    m = helper.make_model(g)
    p = m.metadata_props.add()
    p.key, p.value = "gdm_kind", "denoiser"
    onnx.save(m, tmp_path / "wrong.onnx")
    with pytest.raises(ValueError, match="gdm_kind"):
        xlmimo.EstimatorCore("diffusion", n_pilots=2, cfg=CFG, prior=str(tmp_path / "wrong.onnx"))
