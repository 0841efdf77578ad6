"""The fault table, small: with each injected fault the link keeps running, and every lost frame
is reported by the decoder or explained by the fault (frames a sample gap hit)."""
import pytest

from gnuradio.gdm.blocks.fault_runs import FAULTS, fault_table, markdown
from gnuradio.gdm.link import LinkConfig


@pytest.fixture(scope="module")
def rows():
    return {r["fault"]: r for r in fault_table(LinkConfig(estimator="ls_interp", snr_db=25, frames=80), stall_s=0.5)}


def test_every_fault_keeps_the_link_running_and_loses_nothing_unexplained(rows):
    assert set(rows) == set(FAULTS)
    for r in rows.values():
        assert r["still_running"] and r["unexplained"] == 0, r
        assert r["frames_lost"] == r["lost_reported_by_decoder"] + r["lost_never_detected"]
    assert "| sample gaps | yes |" in markdown(list(rows.values()))


def test_what_each_fault_did(rows):
    assert rows["none"]["frames_lost"] == 0
    for f in ("estimator raises", "estimator returns NaN"):  # fallback estimates decode at 25 dB
        r = rows[f]
        assert r["raised"] + r["nan_results"] > 0 and r["fallback_frames"] > 0 and r["frames_lost"] == 0, r
    g = rows["sample gaps"]
    assert g["gaps"] >= 2 and g["frames_lost"] > 0 and g["explained_by_fault"] == g["lost_never_detected"], g
    assert g["frames_lost"] <= g["frames_hit"], g  # nothing lost beyond the frames the gaps touched
    for f in ("stream sink blocks", "payload sink blocks"):  # back-pressure / queued messages: no loss
        assert rows[f]["stalled_s"] >= 0.5 and rows[f]["frames_lost"] == 0, rows[f]
    assert rows["payload sink blocks"]["payloads_delivered"] == rows["payload sink blocks"]["frames_ok"]
