"""`gr-gdm train` / `gr-gdm export` reach the model trainer with its own options."""
import json

import onnx

from gnuradio.gdm.cli.main import main


def test_train_then_export_through_the_cli(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["train", "--kind", "estimator", "--out-dir", str(out), "--steps", "2", "--batch", "4",
                 "--widths", "8,8,8", "--arch", "unet", "--bank-n-ds", "3", "--bank-n-fd", "2", "--bank-top", "4",
                 "--val-every", "2", "--val-frames", "4", "--ckpt-every", "2", "--progress", "false"]) == 0
    ck = capsys.readouterr().out.strip().splitlines()[-1]
    onnx_path = tmp_path / "m" / "est.onnx"
    onnx_path.parent.mkdir()
    assert main(["export", "--checkpoint", ck, "--out", str(onnx_path)]) == 0
    assert "max |diff|" in capsys.readouterr().out
    meta = {p.key: p.value for p in onnx.load(str(onnx_path)).metadata_props}
    assert json.loads(meta["frame_spec"])["fft_len"] == 128 and meta["gdm_kind"] == "estimator"
    assert (tmp_path / "m" / "SHA256SUMS").read_text().strip().endswith("est.onnx")


def test_unknown_kind_is_refused(capsys):
    import pytest
    with pytest.raises(SystemExit):
        main(["train", "--kind", "nonsense"])
    assert "invalid choice" in capsys.readouterr().err


def test_denoiser_train_then_export_through_the_cli(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["train", "--kind", "denoiser", "--out-dir", str(out), "--steps", "1", "--batch", "4",
                 "--width", "8", "--blocks", "1", "--per-scenario", "4", "--n-rx", "2", "--n-rx-p", "1.0",
                 "--snr-db", "10,20", "--val-frames", "4", "--val-every", "1", "--progress", "false"]) == 0
    ck = capsys.readouterr().out.strip().splitlines()[-1]
    onnx_path = tmp_path / "m" / "dn.onnx"
    assert main(["export", "--kind", "denoiser", "--checkpoint", ck, "--out", str(onnx_path)]) == 0
    meta = {p.key: p.value for p in onnx.load(str(onnx_path)).metadata_props}
    assert meta["gdm_kind"] == "denoiser" and json.loads(meta["training_config"])["width"] == 8
    assert (tmp_path / "m" / "SHA256SUMS").read_text().strip().endswith("dn.onnx")
