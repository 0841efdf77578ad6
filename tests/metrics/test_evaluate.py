"""metrics.evaluate helpers."""
import numpy as np


def test_snr_at_interpolates_in_log_and_reports_unreached():
    from gnuradio.gdm.metrics.evaluate import snr_at

    rows = [dict(scenario="s", estimator=e, snr_db=s, metric="per", value=v)
            for e, pts in {"a": [(0, 1.0), (2, 0.2), (4, 0.05)], "b": [(0, 0.9), (2, 0.5), (4, 0.3)]}.items()
            for s, v in pts]
    at = snr_at(rows, "per", 0.1)
    assert abs(at["s", "a"] - (2 + 2 * np.log(2) / np.log(4))) < 1e-9  # log-linear between 0.2 and 0.05
    assert at["s", "b"] is None
