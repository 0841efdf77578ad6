import json
import subprocess
import sys

import pytest

from gnuradio.gdm.cli.main import main


def _cli(*args):
    return subprocess.run([sys.executable, "-m", "gnuradio.gdm", *args], capture_output=True, text=True, timeout=600)


def test_run_json_has_the_documented_keys():
    p = _cli("run", "--antennas", "1x2", "--snr", "25", "--estimator", "lmmse", "--frames", "20", "--json")
    assert p.returncode == 0, p.stderr
    out = json.loads(p.stdout)
    for k in ("frames_sent", "frames_ok", "frames_lost", "per", "ber", "evm_db", "nmse_db", "estimator",
              "antennas", "snr_db"):
        assert k in out
    assert out["frames_sent"] == 20 and out["frames_ok"] >= 19 and out["antennas"] == "1x2"


def test_eval_writes_csv_and_png(tmp_path):
    csv = tmp_path / "e.csv"
    p = _cli("eval", "--estimators", "ls,lmmse", "--snrs", "0,20", "--frames", "50", "--csv", str(csv),
             "--link", "--link-frames", "10", "--link-snrs", "20")
    assert p.returncode == 0, p.stderr
    lines = csv.read_text().splitlines()
    assert lines[0] == "scenario,estimator,snr_db,metric,value,n_frames"
    assert any(",lmmse,20.0,nmse_db," in l for l in lines) and any(",per," in l for l in lines)
    assert csv.with_suffix(".png").stat().st_size > 1000


def test_info_and_bad_arguments(capsys):
    assert main(["info", "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert "nr72" in info["presets"] and "lmmse" in info["estimators"] and "channel_estimator" in info["blocks"]
    assert main(["eval", "--estimators", "nope", "--csv", "/dev/null"]) == 2
    assert "valid estimators" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["run", "--antennas", "2x1"])


def test_run_with_impairments_and_denoiser(capsys):
    assert main(["run", "--snr", "15", "--frames", "12", "--estimator", "lmmse", "--phase-noise", "wiener",
                 "--pn-linewidth-hz", "150", "--denoiser", "cpe", "--iq-compensation", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["frames_sent"] == 12 and out["denoiser"]["method"] == "cpe" and out["iq_compensation"] is True
    assert main(["run", "--frames", "2", "--denoiser", "magic"]) == 2
    assert "unknown denoiser 'magic'; valid: none, cpe, diffusion, pa_cancel" in capsys.readouterr().err
    assert main(["run", "--frames", "2", "--pa", "rapp", "--adc-bits", "40"]) == 2
    assert "ADC bits must be in [1, 16]" in capsys.readouterr().err
