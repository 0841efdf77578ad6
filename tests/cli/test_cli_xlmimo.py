"""`gr-gdm eval --scenario xlmimo...` and `gr-gdm bench --xlmimo`: outputs and refusals."""
import csv
import json
import subprocess
import sys

from gnuradio.gdm.cli.main import main


def _cli(*args):
    return subprocess.run([sys.executable, "-m", "gnuradio.gdm", *args], capture_output=True, text=True, timeout=600)


def test_eval_xlmimo_writes_csv_png_and_tables(tmp_path, capsys):
    out = tmp_path / "xl.csv"
    common = ["eval", "--scenario", "xlmimo", "--scenario", "xlmimo:40:150", "--pilots", "4,16", "--snrs", "20",
              "--frames", "1", "--csv", str(out)]
    assert main([*common, "--estimators", "ls"]) == 0
    first = out.read_text().splitlines()
    assert main([*common, "--estimators", "genie", "--append"]) == 0   # one estimator at a time, same seeds
    stdout = capsys.readouterr().out
    rows = list(csv.DictReader(out.open()))
    assert set(first) < set(out.read_text().splitlines())           # the LS rows are kept as they were
    assert list(rows[0])[:6] == ["scenario", "estimator", "snr_db", "metric", "value", "n_frames"]
    got = {(r["scenario"], r["estimator"], r["pilot_overhead"], r["metric"]) for r in rows}
    assert ("xlmimo", "genie", "64", "nmse_db") in got and ("xlmimo:40:150", "genie", "256", "nmse_db") in got
    assert ("xlmimo", "ls", "64", "nmse_db") not in got            # LS needs P N_RF >= N
    assert ("xlmimo", "ls", "256", "ms_per_estimate") in got
    nm = {(r["scenario"], r["estimator"], r["pilot_overhead"]): float(r["value"]) for r in rows
          if r["metric"] == "nmse_db"}
    assert nm[("xlmimo", "genie", "256")] < nm[("xlmimo", "ls", "256")]
    assert out.with_suffix(".png").stat().st_size > 1000
    assert "| ls |" in stdout and "xlmimo:40:150, SNR 20 dB" in stdout


def test_eval_xlmimo_refusals(capsys):
    assert main(["eval", "--scenario", "xlmimo", "--estimators", "omp", "--csv", "/dev/null"]) == 2
    assert "valid: diffusion, sigw, somp, swomp, ls, genie" in capsys.readouterr().err
    assert main(["eval", "--scenario", "xlmimo:40", "--estimators", "ls", "--csv", "/dev/null"]) == 2
    assert "xlmimo:R_MIN:R_MAX" in capsys.readouterr().err
    assert main(["eval", "--scenario", "xlmimo", "--scenario", "TDL-C", "--csv", "/dev/null"]) == 2
    assert "cannot be mixed" in capsys.readouterr().err
    assert main(["eval", "--scenario", "xlmimo", "--prior", "/nonexistent.onnx", "--estimators", "diffusion",
                 "--csv", "/dev/null"]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_bench_xlmimo_json(capsys):
    assert main(["bench", "--xlmimo", "--estimators", "ls,genie", "--json"]) == 2
    assert "valid: diffusion, sigw, somp, swomp, ls" in capsys.readouterr().err
    p = _cli("bench", "--xlmimo", "--estimators", "ls", "--pilots", "4", "--json")
    assert p.returncode == 0, p.stderr
    rows = [json.loads(line) for line in p.stdout.splitlines()]
    assert [r["estimator"] for r in rows] == ["ls"]
    for r in rows:
        for k in ("ms_per_estimate", "estimates_per_s", "latency_ms_p50", "latency_ms_p99", "peak_rss_mb"):
            assert r[k] > 0, (k, r)
    assert rows[0]["n_pilots"] == 16                                  # LS at the smallest P with P N_RF >= N


def test_train_and_export_kind_xlmimo(tmp_path):
    """The prior's trainer and exporter behind `gr-gdm train/export --kind xlmimo` (tiny array)."""
    from gnuradio.gdm.runtime.checksums import read_sums, sha256_file
    from gnuradio.gdm.xlmimo import export
    ck, onnx = tmp_path / "p.pt", tmp_path / "m" / "p.onnx"
    cfg = '{"n_ant": 32, "n_subcarriers": 2, "n_rf": 4, "n_users": 2, "n_paths": 1, "r_range_m": [1, 3]}'
    assert main(["train", "--kind", "xlmimo", "--max-steps", "3", "--ch", "8,8", "--kernel", "3",
                 "--cfg", cfg, "--out", str(ck)]) == 0
    assert main(["export", "--kind", "xlmimo", "--ckpt", str(ck), "--out", str(onnx)]) == 0
    md = export.read_metadata(onnx)
    assert md["gdm_kind"] == "xlmimo_prior" and json.loads(md["test_point"])["n_pilots"] == 8
    assert read_sums(onnx.parent / "SHA256SUMS") == {"p.onnx": sha256_file(onnx)}
