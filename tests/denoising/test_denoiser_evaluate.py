"""The BER sweep's bookkeeping: SNR at the target BER, best classical receiver, gains; and a
small real sweep (clean channel, two SNRs) with the numbers where they belong."""
import math

import numpy as np

from gnuradio.gdm.denoising.evaluate import frame_metrics, summarize, sweep
from gnuradio.gdm.metrics.evaluate import snr_at as _snr_at
from gnuradio.gdm.link import LinkConfig, Receiver


def snr_at(points):
    rows = [dict(scenario="s", estimator="e", snr_db=s, metric="ber", value=v) for s, v in points]
    return _snr_at(rows, "ber", 1e-2)["s", "e"]


def test_snr_at_interpolates_log_ber():
    assert abs(snr_at([(4, 1e-1), (6, 1e-3)]) - 5.0) < 1e-9
    assert abs(snr_at([(4, 2e-2), (5, 1e-2 / 2), (6, 1e-4)]) - (4 + math.log10(2) / math.log10(4))) < 1e-9
    assert snr_at([(4, 1e-1), (6, 5e-2)]) is None


def test_summarize_gains_against_the_best_classical():
    rows = []
    for name, (a, b) in {"plain": (1e-1, 5e-3), "cpe": (5e-2, 1e-3), "denoiser": (1e-2 * 2, 1e-4)}.items():
        rows += [dict(scenario="pn", estimator=name, snr_db=s, metric="ber", value=v, n_frames=10)
                 for s, v in ((10, a), (12, b))]
    s = summarize(rows)["pn"]
    assert s["best_classical"] == "cpe"
    assert s["gain_db_denoiser_vs_best_classical"] == round(snr_at([(10, 5e-2), (12, 1e-3)]) - snr_at([(10, 2e-2), (12, 1e-4)]), 2)
    assert s["gain_db_denoiser_vs_plain"] > s["gain_db_denoiser_vs_best_classical"] > 0


def test_small_sweep_counts_every_frame():
    rows = sweep("clean", {}, [4.0, 30.0], runs=2, frames=8, base=LinkConfig(n_rx=2), receivers={
        "plain": Receiver("ls_interp"), "cpe": Receiver("ls_interp", "cpe")}, denoisers={}, seed=1)
    ber = {(r["estimator"], r["snr_db"]): r["value"] for r in rows if r["metric"] == "ber"}
    assert ber["plain", 30.0] == 0 and ber["plain", 4.0] > 1e-3
    assert {r["n_frames"] for r in rows} == {16}


def test_frame_metrics_see_a_rotation():
    from gnuradio.gdm import FrameSpec
    from gnuradio.gdm.ofdm import qam

    spec = FrameSpec.preset("nr72")
    rng = np.random.default_rng(0)
    x = qam.constellation("16qam")[rng.integers(0, 16, (4, 14, 72))]
    y = x + 0.05 * (rng.standard_normal(x.shape) + 1j * rng.standard_normal(x.shape))
    w = np.full(x.shape, 0.005)
    good, bad = frame_metrics(y, w, x, spec), frame_metrics(y * np.exp(0.3j), w, x, spec)
    assert good["raw_ber"] < 1e-3 < bad["raw_ber"] and good["bce"] < bad["bce"]
