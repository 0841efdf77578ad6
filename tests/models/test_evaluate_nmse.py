"""Evaluation rows, the per-frame genie, scenario parsing and the benchmark rows."""
import numpy as np

from gnuradio.gdm import FrameSpec, estimation
from gnuradio.gdm.models.evaluate import PerFrameGenie, benchmark, evaluate_nmse, parse_scenario
from gnuradio.gdm.models.tiny import tiny_model
from gnuradio.gdm.sim.grid import ChannelConfig, ChannelMix, grid_channels

SPEC = FrameSpec.preset("nr72")


def test_rows_have_the_csv_columns_and_sane_ordering():
    rows = evaluate_nmse(["ls_interp", "genie"], ChannelConfig("TDL-B", 100e-9, 30.0), snrs=(0, 20),
                         n_frames=30, progress=False)
    assert len(rows) == 4
    assert set(rows[0]) == {"scenario", "estimator", "snr_db", "metric", "value", "n_frames"}
    v = {(r["estimator"], r["snr_db"]): r["value"] for r in rows}
    assert v["genie", 0.0] < v["ls_interp", 0.0] - 5  # genie smooths, interp does not
    assert v["genie", 20.0] < v["genie", 0.0] - 8


def test_per_frame_genie_equals_the_registered_genie_for_one_config():
    cfg = ChannelConfig("TDL-D", 200e-9, 150.0)  # LOS tap included
    rng = np.random.default_rng(3)
    H = grid_channels(SPEC, cfg, 5, rng=rng)
    Y = (H[:, :, 0] * SPEC.pilot_values(0) + 0.1).astype(np.complex64)
    a = PerFrameGenie(SPEC, 1).estimate(Y, 0.05, [cfg] * 5)
    b = estimation.make("genie", SPEC, config=cfg).estimate(Y, 0.05)
    np.testing.assert_allclose(a, b, atol=2e-4)


def test_heldout_frames_differ_from_training_frames():
    from gnuradio.gdm.models.data import EVAL_PURPOSE, TRAIN_PURPOSE, link_channels, purpose_rng
    a = link_channels(SPEC, ChannelMix(), 4, purpose_rng(1, TRAIN_PURPOSE))
    b = link_channels(SPEC, ChannelMix(), 4, purpose_rng(1, EVAL_PURPOSE))
    assert not np.allclose(a, b)


def test_parse_scenario():
    assert parse_scenario("mix") == ChannelMix()
    assert parse_scenario("mix:jitter=1").timing_jitter == 1.0
    assert parse_scenario("TDL-E,2e-6,800") == ChannelConfig("TDL-E", 2e-6, 800.0)


def test_benchmark_rows():
    rows = benchmark(steps_list=(0, 1), n_frames=4, batch=2, options={"model": tiny_model()[1]}, progress=False)
    assert [r["steps"] for r in rows] == [0, 1]
    assert all(r["frames_per_s"] > 0 and r["latency_ms_p99"] >= r["latency_ms_p50"] for r in rows)
