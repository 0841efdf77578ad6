import json

import numpy as np
import pytest

from gnuradio.gdm import FrameSpec
from gnuradio.gdm.io.recording import RecordingError, open_recording, write_meta

SPEC = FrameSpec.preset("nr72")


def _make(tmp_path, n_ch=2, n=100, **kw):
    x = (np.random.default_rng(0).standard_normal((n_ch, n)) + 1j).astype(np.complex64)
    base = tmp_path / "rec"
    x.T.copy().tofile(base.with_suffix(".sigmf-data"))
    write_meta(base, sample_rate=kw.pop("sample_rate", SPEC.sample_rate), num_channels=n_ch, n_samples=n,
               spec=SPEC, center_freq=2.45e9, annotations=[{"sample_start": 5, "sample_count": 50,
                                                           "core:label": "seq 0"}], **kw)
    return base, x


def test_roundtrip_validates_with_sigmf(tmp_path):
    import sigmf
    base, x = _make(tmp_path)
    r = open_recording(base, preset="nr72", n_rx=2)
    assert r.num_channels == 2 and r.n_samples == 100 and not r.truncated and r.center_freq == 2.45e9
    assert np.allclose(r.read(), x) and np.allclose(np.concatenate(list(r.chunks(33)), 1), x)
    f = sigmf.sigmffile.fromfile(str(base))
    assert f.read_samples().shape == (100, 2)
    assert r.annotations[0]["core:label"] == "seq 0"


def test_truncated_data_reads_whole_samples_with_warning(tmp_path, caplog):
    base, x = _make(tmp_path)
    data = base.with_suffix(".sigmf-data")
    data.write_bytes(data.read_bytes()[:-20])  # 1.25 multi-channel samples cut off
    r = open_recording(base)
    assert r.truncated and r.n_samples == 98 and "truncated" in caplog.text
    assert np.allclose(r.read(), x[:, :98])


@pytest.mark.parametrize("edit,msg", [
    (lambda g: g.pop("core:sample_rate"), "core:sample_rate is missing"),
    (lambda g: g.update({"core:num_channels": 3}), "contradictory channel count"),
    (lambda g: g.update({"core:sample_rate": 1e6}), "does not match preset 'nr72'"),
    (lambda g: g.update({"core:datatype": "cu8"}), "core:datatype"),
])
def test_bad_metadata_is_explained(tmp_path, edit, msg):
    base, _ = _make(tmp_path)
    meta_p = base.with_suffix(".sigmf-meta")
    m = json.loads(meta_p.read_text())
    edit(m["global"])
    meta_p.write_text(json.dumps(m))
    with pytest.raises(RecordingError, match=msg):
        open_recording(base)


def test_missing_files_and_corrupt_json(tmp_path):
    with pytest.raises(RecordingError, match="no SigMF metadata file"):
        open_recording(tmp_path / "nothing")
    base, _ = _make(tmp_path)
    base.with_suffix(".sigmf-meta").write_text("{not json")
    with pytest.raises(RecordingError, match="not valid JSON"):
        open_recording(base)
    base, _ = _make(tmp_path)
    with pytest.raises(RecordingError, match="receiver expects n_rx=4"):
        open_recording(base, n_rx=4)


def _edit(base, **glob):
    meta_p = base.with_suffix(".sigmf-meta")
    m = json.loads(meta_p.read_text())
    m["global"].update(glob)
    meta_p.write_text(json.dumps(m))


@pytest.mark.parametrize("name", ["../outside.sigmf-data", "/etc/hostname", "sub/../../outside.sigmf-data"])
def test_dataset_path_from_metadata_cannot_leave_the_folder(tmp_path, name):
    rec = tmp_path / "rec_dir"
    rec.mkdir()
    base, _ = _make(rec)
    (tmp_path / "outside.sigmf-data").write_bytes(b"\0" * 1600)  # a file the metadata points at
    _edit(base, **{"core:dataset": name})
    with pytest.raises(RecordingError, match="outside the recording's folder"):
        open_recording(base)


def test_dataset_name_inside_the_folder_is_used(tmp_path):
    base, x = _make(tmp_path)
    base.with_suffix(".sigmf-data").rename(tmp_path / "samples.bin")
    _edit(base, **{"core:dataset": "samples.bin"})
    assert np.allclose(open_recording(base).read(), x)
    _edit(base, **{"core:metadata_only": True})
    with pytest.raises(RecordingError, match="metadata_only"):
        open_recording(base)


@pytest.mark.parametrize("ref,msg", [
    ({"seed": 0, "n_bytes": 10, "frames": 10**12}, "gdm:reference.frames"),
    ({"seed": 0, "n_bytes": 10**9, "frames": 5}, "gdm:reference.n_bytes"),
    ({"seed": "0", "n_bytes": 10, "frames": 5}, "gdm:reference.seed"),
    ([1, 2], "gdm:reference must be"),
])
def test_payload_reference_is_bounded(tmp_path, ref, msg):
    base, _ = _make(tmp_path)
    _edit(base, **{"gdm:reference": ref})
    with pytest.raises(RecordingError, match=msg):
        open_recording(base)


def test_captures_of_the_wrong_shape_are_explained(tmp_path):
    base, _ = _make(tmp_path)
    meta_p = base.with_suffix(".sigmf-meta")
    m = json.loads(meta_p.read_text())
    m["captures"] = 5
    meta_p.write_text(json.dumps(m))
    with pytest.raises(RecordingError, match="'captures' must be a list of objects"):
        open_recording(base)


def test_replay_refuses_link_parameters_of_the_wrong_type(tmp_path):
    from gnuradio.gdm.blocks.sim_link import ReplayLink

    base, _ = _make(tmp_path)
    _edit(base, **{"gdm:link": {"n_tx": "two"}})
    with pytest.raises(RecordingError, match="n_tx has the wrong type"):
        ReplayLink(str(base))
