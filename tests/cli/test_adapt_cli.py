"""`gr-gdm adapt`: from a recording and from a simulated profile, JSON output, the adapted model
usable by the estimator, exit status 3 and nothing written when the guard rejects."""
import json
from pathlib import Path

from gnuradio.gdm import FrameSpec, estimation
from gnuradio.gdm.cli.main import main

REC = Path(__file__).resolve().parents[2] / "recordings" / "sim_1x2_nr72_15dB"


def test_adapt_from_a_recording(tmp_path, capsys):
    out = tmp_path / "rec.onnx"
    assert main(["adapt", "--from", str(REC), "--frames", "40", "--out", str(out), "--json"]) == 0
    res = json.loads(capsys.readouterr().out)
    assert res["accepted"] and res["model"] == str(out) and res["frames_adapt"] + res["frames_heldout"] == 40
    assert res["source"]["kind"] == "recording" and len(res["source"]["data_sha256"]) == 64
    est = estimation.make("diffusion", FrameSpec.preset("nr72"), 2, model=out)
    assert est.adapted["data"]["path"].endswith("sim_1x2_nr72_15dB")
    # the recording is TDL-C 300 ns / 50 Hz: the fitted site says so
    assert 150 < res["site"]["rms_delay_spread_ns"] < 600 and res["site"]["doppler_hz"] < 150


def test_adapt_from_a_profile_and_a_rejection(tmp_path, capsys):
    out = tmp_path / "p.onnx"
    assert main(["adapt", "--from", "TDL-C:2000:0", "--frames", "24", "--snr", "20", "--out", str(out)]) == 0
    assert out.exists() and capsys.readouterr().out.strip() == str(out)
    # demanding a 40 dB improvement: the guard must refuse, nothing is written
    bad = tmp_path / "bad.onnx"
    assert main(["adapt", "--from", "TDL-C:2000:0", "--frames", "24", "--snr", "20", "--margin", "40",
                 "--out", str(bad)]) == 3
    cap = capsys.readouterr()
    assert not bad.exists() and cap.out.strip() == "rejected" and "REJECTED" in cap.err
    assert main(["adapt", "--from", "no/such/recording.sigmf-meta"]) == 2
    assert "no such recording" in capsys.readouterr().err
