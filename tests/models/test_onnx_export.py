"""Export: opset 17, checker passes, onnxruntime == torch within 1e-4, metadata complete."""
import json

import onnx

from gnuradio.gdm.frame import FrameSpec
from gnuradio.gdm.models.export import OPSET, parity, read_metadata
from gnuradio.gdm.models.tiny import tiny_model

REQUIRED = ["gdm_kind", "frame_preset", "frame_spec", "inputs", "outputs", "noise_schedule",
            "training_profiles", "training_snr_db", "training_seed", "dataset_size", "heldout_nmse_db",
            "torch_version", "onnx_version", "conditioning", "antennas"]


def test_export_checks_and_matches_torch():
    ck, path = tiny_model()
    onnx.checker.check_model(str(path))
    model = onnx.load(str(path))
    assert any(o.domain in ("", "ai.onnx") and o.version == OPSET for o in model.opset_import)
    ops = {n.op_type for n in model.graph.node}
    assert "GroupNormalization" not in ops
    assert {i.name for i in model.graph.input} >= {"x", "sigma", "cond", "glob"}
    assert parity(ck, path, batch=5) < 1e-4


def test_metadata_describes_frame_shapes_and_training():
    _, path = tiny_model()
    meta = read_metadata(path)
    missing = [k for k in REQUIRED if k not in meta]
    assert not missing, missing
    assert meta["gdm_kind"] == "estimator"
    assert FrameSpec.from_json(meta["frame_spec"]).n_occ == 72
    assert json.loads(meta["inputs"])["x"] == ["B", 2, 14, 72]


def test_bank_top_sets_the_inference_conditioning(tmp_path):
    import pytest

    from gnuradio.gdm.models.export import export_onnx
    from gnuradio.gdm.models.train import model_from_checkpoint

    ck, _ = tiny_model()
    trained = model_from_checkpoint(ck)[1].bank_top
    bank = json.loads(read_metadata(export_onnx(ck, tmp_path / "t.onnx", bank_top=trained // 2))["conditioning"])["bank"]
    assert (bank["top"], bank["top_trained"]) == (trained // 2, trained)
    bank = json.loads(read_metadata(export_onnx(ck, tmp_path / "d.onnx"))["conditioning"])["bank"]
    assert bank["top"] == bank["top_trained"] == trained  # default: as trained
    with pytest.raises(ValueError, match="bank_top must be in"):
        export_onnx(ck, tmp_path / "x.onnx", bank_top=trained + 1)
