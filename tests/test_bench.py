"""`gr-gdm bench`: both receive flowgraphs and the stock reference timed in one run, every frame
decoded, the figures the speed issue asks for present."""
import json

from gnuradio.gdm.cli.main import main


def test_bench_times_both_receivers_beside_stock(capsys):
    assert main(["bench", "--antennas", "1x2", "--estimators", "ls", "--frames", "12", "--repeat", "2", "--json"]) == 0
    cap = capsys.readouterr()
    rows = [json.loads(line) for line in cap.out.splitlines()]
    assert [r["config"] for r in rows] == ["stock digital.ofdm_rx (wifi-like 64/16, BPSK)", "gr-gdm nr72 1x2 ls",
                                           "gr-gdm nr72 1x2 ls one-block"]
    for r in rows[1:]:
        assert r["frames_ok"] == r["frames"] == 12, r  # nothing lost at the end of the stream
        assert r["ratio_to_stock"] > 0 and r["cpu_ms_per_frame"] > 0 and r["peak_rss_mb"] > 0
        assert "payload_bytes_at_sink" in r
    # the chain's payloads reach the C++ byte sink (the one-block receiver's last batches are
    # published after its thread ended, when that sink has ended too: counted by frames_ok)
    assert rows[1]["payload_bytes_at_sink"] > 0
    assert rows[0]["cpu_ms_per_frame"] > 0
    assert all(len(r["runs_samples_per_s"]) == 2 for r in rows)  # --repeat: every run listed
    for r in rows[1:]:  # each timed run paired with a stock run in the same process
        assert len(r["runs_ratio_to_stock"]) == len(r["runs_stock_samples_per_s"]) == 2
        assert min(r["runs_ratio_to_stock"]) <= r["ratio_to_stock"] <= max(r["runs_ratio_to_stock"])
        assert r["ratio_to_stock_row"] > 0
    assert "latency_ms_p50" in rows[1] and "one-block" in cap.err


def test_bench_refuses_an_unknown_receiver(capsys):
    assert main(["bench", "--receivers", "blocks,fast", "--frames", "4"]) == 2
    assert "unknown receivers ['fast']" in capsys.readouterr().err
