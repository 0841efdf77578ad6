"""Model loading refuses clearly: missing file, checksum mismatch, non-ONNX bytes, metadata that
does not fit the receiver, a CUDA request without CUDA."""
import shutil

import numpy as np
import onnx
import pytest

from gnuradio.gdm.frame import FrameSpec
from gnuradio.gdm.models.export import set_metadata
from gnuradio.gdm.models.tiny import tiny_model
from gnuradio.gdm.runtime import (ChecksumMismatch, MetadataMismatch, ModelError, ModelFileMissing,
                                  NotOnnxModel, OnnxModel, select_providers, sha256_file, write_sums)

NR72 = FrameSpec.preset("nr72")


@pytest.fixture
def model_dir(tmp_path):
    _, path = tiny_model()
    shutil.copy(path, tmp_path / "m.onnx")
    write_sums(tmp_path)
    return tmp_path


def test_loads_with_verified_checksum_on_cpu(model_dir):
    m = OnnxModel(model_dir / "m.onnx", device="cpu", spec=NR72, n_rx=2, n_tx=2)
    assert m.sha256 == sha256_file(model_dir / "m.onnx")
    assert m.device == "cpu"
    out = m.run(x=np.zeros((1, 2, 14, 72)), sigma=np.ones(1), cond=np.zeros((1, 8, 14, 72)),
                glob=np.zeros((1, 5)))
    assert out.shape == (1, 2, 14, 72)


def test_missing_file(tmp_path):
    with pytest.raises(ModelFileMissing, match="does not exist"):
        OnnxModel(tmp_path / "nope.onnx")


def test_checksum_mismatch_from_sums_file_and_from_argument(model_dir):
    (model_dir / "SHA256SUMS").write_text("0" * 64 + "  m.onnx\n")
    with pytest.raises(ChecksumMismatch, match="checksum mismatch"):
        OnnxModel(model_dir / "m.onnx")
    with pytest.raises(ChecksumMismatch):
        OnnxModel(model_dir / "m.onnx", checksum="ab" * 32)
    OnnxModel(model_dir / "m.onnx", checksum=False)  # explicitly unchecked still loads


def test_non_onnx_bytes(tmp_path):
    p = tmp_path / "junk.onnx"
    p.write_bytes(b"this is not a model\x00\xff" * 50)
    with pytest.raises(NotOnnxModel, match="not an ONNX model"):
        OnnxModel(p)


def test_metadata_mismatch_says_what_differs(model_dir):
    wifi = FrameSpec.preset("wifi64")
    with pytest.raises(MetadataMismatch) as e:
        OnnxModel(model_dir / "m.onnx", spec=wifi)
    assert "n_sym: model 14, here 12" in str(e.value) and "fft_len" in str(e.value)
    with pytest.raises(MetadataMismatch, match="n_tx: model supports"):
        OnnxModel(model_dir / "m.onnx", spec=NR72, n_tx=4)
    m = onnx.load(str(model_dir / "m.onnx"))
    set_metadata(m, {"gdm_kind": "denoiser"})
    onnx.save(m, str(model_dir / "d.onnx"))
    with pytest.raises(MetadataMismatch, match="kind"):
        OnnxModel(model_dir / "d.onnx", spec=NR72)


def test_cuda_request_without_cuda_is_refused_or_served():
    import onnxruntime as ort
    if "CUDAExecutionProvider" in ort.get_available_providers():
        assert select_providers("cuda")[1] == "cuda"
    else:
        with pytest.raises(ModelError, match="no CUDA execution provider"):
            select_providers("cuda")
        assert select_providers("auto")[1] == "cpu"
    with pytest.raises(ValueError):
        select_providers("tpu")


def test_loading_a_model_leaves_the_floating_point_state_alone(model_dir):
    OnnxModel(model_dir / "m.onnx", device="cpu", spec=NR72).run(
        x=np.zeros((1, 2, 14, 72)), sigma=np.ones(1), cond=np.zeros((1, 8, 14, 72)), glob=np.zeros((1, 5)))
    assert np.float64(5e-324) * 1.0 > 0  # subnormals still exist (no flush-to-zero left behind)


@pytest.mark.parametrize("key,value,msg", [
    ("antennas", "[1]", "'antennas' must be a JSON dict"),
    ("antennas", '{"n_tx": 1}', "antennas.n_tx must be a list of integers"),
    ("antennas", "not json", "'antennas' is not valid JSON"),
    ("frame_spec", "[1]", "'frame_spec' must be a JSON dict"),
    ("frame_spec", '{"occupied": {"a": 1}}', "frame occupied"),
])
def test_malformed_metadata_is_a_metadata_mismatch(model_dir, key, value, msg):
    m = onnx.load(str(model_dir / "m.onnx"))
    set_metadata(m, {key: value})
    onnx.save(m, str(model_dir / "bad.onnx"))
    with pytest.raises(MetadataMismatch, match=msg):
        OnnxModel(model_dir / "bad.onnx", spec=NR72, n_rx=2, n_tx=1, checksum=False)


def test_model_with_external_data_is_refused(model_dir):
    m = onnx.load(str(model_dir / "m.onnx"))
    onnx.save(m, str(model_dir / "ext.onnx"), save_as_external_data=True, all_tensors_to_one_file=True,
              location="weights.bin", size_threshold=0)
    with pytest.raises(NotOnnxModel, match="external files"):
        OnnxModel(model_dir / "ext.onnx", checksum=False)


def test_unlisted_model_loads_with_its_digest_logged(model_dir, caplog):
    (model_dir / "user").mkdir()
    user = model_dir / "user" / "user.onnx"
    shutil.copy(model_dir / "m.onnx", user)  # no SHA256SUMS beside it
    m = OnnxModel(user, spec=NR72)
    assert m.sha256 is None
    assert "no checksum to verify against" in caplog.text and sha256_file(user) in caplog.text
