import json

import numpy as np
import pytest
from gnuradio import blocks, gr

from gnuradio import gdm
from gnuradio.gdm.blocks.sim_link import ReplayLink, SimLink
from gnuradio.gdm.io.recording import RecordingError, open_recording
from gnuradio.gdm.link import LinkConfig


def test_record_then_replay_is_bit_exact(tmp_path):
    cfg = LinkConfig(n_rx=2, snr_db=12.0, frames=25, estimator="lmmse", profile="TDL-C", delay_spread=300e-9,
                     doppler=50.0)
    live = SimLink(cfg, record=str(tmp_path / "rec"), center_freq=2.45e9).run_and_collect()
    rec = open_recording(tmp_path / "rec", preset="nr72", n_rx=2)
    assert rec.n_samples == 26 * 2160 and rec.center_freq == 2.45e9
    anns = rec.annotations
    assert len(anns) == live["frames_detected"]
    assert sum(a["gdm:crc_ok"] for a in anns) == live["frames_ok"]
    rep = ReplayLink(str(tmp_path / "rec")).run_and_collect()
    assert rep["payloads"] == live["payloads"] and len(rep["payloads"]) == live["frames_ok"] > 0
    assert rep["frames_sent"] == 25 and rep["frames_ok"] == live["frames_ok"] and rep["per"] == live["per"]


def test_truncated_recording_decodes_frames_before_the_damage(tmp_path):
    cfg = LinkConfig(n_rx=2, snr_db=30.0, frames=10)
    SimLink(cfg, record=str(tmp_path / "rec")).run_and_collect()
    data = tmp_path / "rec.sigmf-data"
    raw = data.read_bytes()
    data.write_bytes(raw[: int(len(raw) * 0.55) + 3])  # cut mid-frame, mid-sample
    rep = ReplayLink(str(tmp_path / "rec")).run_and_collect()
    assert 4 <= rep["frames_ok"] <= 6 and rep["frames_lost"] == 10 - rep["frames_ok"]


def test_contradictory_metadata_refused_at_construction(tmp_path):
    SimLink(LinkConfig(n_rx=2, snr_db=30.0, frames=2), record=str(tmp_path / "rec")).run_and_collect()
    meta = tmp_path / "rec.sigmf-meta"
    m = json.loads(meta.read_text())
    m["global"]["core:num_channels"] = 4
    meta.write_text(json.dumps(m))
    with pytest.raises(RecordingError, match="contradictory channel count"):
        gdm.sigmf_source(str(tmp_path / "rec"))


def test_source_deinterleaves_channels(tmp_path):
    x = (np.arange(30) + 1j * np.arange(30)).astype(np.complex64).reshape(3, 10)
    tb = gr.top_block()
    srcs = [blocks.vector_source_c(x[i].tolist(), False) for i in range(3)]
    snk = gdm.sigmf_sink(str(tmp_path / "r"), 3, 1.92e6, 915e6, "nr72", hw="test")
    for i, s in enumerate(srcs):
        tb.connect(s, (snk, i))
    tb.run()
    tb = gr.top_block()
    src = gdm.sigmf_source(str(tmp_path / "r"))
    outs = [blocks.vector_sink_c() for _ in range(3)]
    for i, o in enumerate(outs):
        tb.connect((src, i), o)
    tb.run()
    assert np.allclose(np.stack([o.data() for o in outs]), x)
