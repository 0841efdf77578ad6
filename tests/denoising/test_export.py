"""ONNX export of the denoiser: onnxruntime matches torch, metadata says what the model is,
SHA256SUMS gets the file's line and keeps the others."""
import json
import shutil

import onnx

from gnuradio.gdm.denoising.export import main, parity, read_metadata
from gnuradio.gdm.denoising.tiny import tiny_model
from gnuradio.gdm.runtime import read_sums, sha256_file


def test_parity_and_metadata():
    ck, path = tiny_model()
    assert parity(ck, path) < 1e-4
    meta = read_metadata(path)
    assert meta["gdm_kind"] == "denoiser" and meta["frame_preset"] == "nr72"
    assert json.loads(meta["modulations"]) == ["qpsk", "16qam", "64qam"]
    assert json.loads(meta["antennas"])["n_tx"] == [1] and meta["preprocess"] == "cpe_track"
    assert json.loads(meta["inputs"])["cond"][1] == 13
    model = onnx.load(str(path))
    assert model.opset_import[0].version == 17
    assert not any(n.op_type == "GroupNormalization" for n in model.graph.node)


def test_export_cli_updates_sums_and_keeps_other_lines(tmp_path, capsys):
    ck, _ = tiny_model()
    (tmp_path / "other.onnx").write_bytes(b"x")
    (tmp_path / "SHA256SUMS").write_text(f"{sha256_file(tmp_path / 'other.onnx')}  other.onnx\n")
    out = tmp_path / "dn.onnx"
    main(["--checkpoint", str(ck), "--out", str(out), "--command", "gr-gdm train --kind denoiser"])
    assert "max |diff|" in capsys.readouterr().out
    sums = read_sums(tmp_path / "SHA256SUMS")
    assert sums == {"other.onnx": sha256_file(tmp_path / "other.onnx"), "dn.onnx": sha256_file(out)}
    assert read_metadata(out)["training_command"] == "gr-gdm train --kind denoiser"


def test_export_refuses_an_estimator_checkpoint(tmp_path):
    import pytest

    from gnuradio.gdm.models.tiny import tiny_model as est_tiny

    with pytest.raises(SystemExit, match="not a symbol-denoiser checkpoint"):
        main(["--checkpoint", str(est_tiny()[0]), "--out", str(tmp_path / "x.onnx")])
    shutil.rmtree(tmp_path, ignore_errors=True)
