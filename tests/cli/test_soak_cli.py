"""`gr-gdm soak` smoke run: a persistent flowgraph with a transmitter that never stops, periodic
reports, a clean stop, and the final account (every lost frame reported or explained, RSS)."""
import json

from gnuradio.gdm.cli.main import main


def test_soak_runs_reports_and_accounts_for_every_frame(capsys):
    rc = main(["soak", "--minutes", "0.15", "--estimator", "ls_interp", "--interval", "3", "--warmup", "3",
               "--json"])
    cap = capsys.readouterr()
    assert rc == 0, cap.err
    out = json.loads(cap.out)
    assert "gr-gdm soak: 1x2 ls_interp 25 dB" in cap.err and "soak 0.15 min" in cap.err
    assert len(out["reports"]) >= 2 and out["reports"][-1]["frames_sent"] > out["reports"][0]["frames_sent"]
    assert all(r["queued_msgs"] >= 0 and r["py_objects"] > 0 for r in out["reports"]) and "queued msgs" in cap.err
    heap = out["reports"][-1]["heap_mb"]  # glibc: C heap in use and free, to tell a leak from fragmentation
    assert heap is None or (heap["in_use"] > 0 and heap["free"] >= 0 and "C heap in use" in cap.err)
    assert out["frames_sent"] > 30 and out["wall_s"] >= 9
    # after the clean stop nothing is in flight: every frame is ok, reported failed, or missing
    assert out["frames_lost"] == out["frames_sent"] - out["frames_ok"]
    assert out["frames_lost"] == out["lost_reported_by_decoder"] + out["lost_never_detected"]
    assert out["unexplained"] == 0 and out["per"] <= 0.02, out
    assert 0 < out["rss_start_mb"] <= out["rss_peak_mb"] and out["rss_end_mb"] > 0


def test_soak_refuses_bad_arguments(capsys):
    assert main(["soak", "--minutes", "0"]) == 2
    assert "minutes must be > 0" in capsys.readouterr().err
