"""Malformed SigMF recordings: damaged or hostile metadata (wrong types, missing keys, frame specs,
link parameters, payload references, captures, dataset paths out of the folder, broken JSON) and
truncated data. Opening one either works, within the folder and the data file's size, or is
refused with a RecordingError naming the field; building the replay receiver on an accepted one
raises nothing but a ValueError with a message (what `gr-gdm replay` prints)."""
import json
import os

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from fuzzbook import examples
from gnuradio.gdm import FrameSpec
from gnuradio.gdm.io.recording import RecordingError, open_recording, write_meta

SPEC = FrameSpec.preset("nr72")
NOTE = ("files: items = recordings; accepted = opened (and the replay receiver built); rejected = "
        "refused with a RecordingError / ValueError naming the field")

# no subnormals: onnxruntime sets flush-to-zero on the thread that runs a model, after which
# hypothesis cannot draw them
json_value = st.recursive(
    st.none() | st.booleans() | st.integers(-2**70, 2**70) | st.floats(allow_nan=True, allow_subnormal=False) | st.text(max_size=8),
    lambda c: st.lists(c, max_size=3) | st.dictionaries(st.text(max_size=6), c, max_size=3), max_leaves=6)
paths = st.sampled_from(["r.sigmf-data", "../r.sigmf-data", "/etc/passwd", "sub/../../x", "./r.sigmf-data",
                         "", "a\x00b", "..", "r.sigmf-data/../../../etc/hostname"])
frame_spec_edit = st.tuples(st.sampled_from(sorted(SPEC.to_dict())), json_value)
global_edit = st.one_of(
    st.tuples(st.sampled_from(["core:sample_rate", "core:num_channels", "core:datatype", "gdm:n_rx",
                               "core:version", "gdm:preset", "core:metadata_only"]), json_value),
    st.tuples(st.just("core:dataset"), paths | json_value),
    st.tuples(st.just("gdm:frame_spec"), json_value | st.lists(frame_spec_edit, min_size=1, max_size=3)),
    st.tuples(st.just("gdm:link"), json_value | st.dictionaries(
        st.sampled_from(["preset", "n_tx", "modulation", "fec", "equalizer", "profile", "doppler", "snr_db",
                         "frames", "impairments"]), json_value, max_size=3)),
    st.tuples(st.just("gdm:reference"), json_value | st.fixed_dictionaries(
        {"seed": json_value | st.integers(0, 10), "n_bytes": json_value | st.integers(0, 10**6),
         "frames": json_value | st.integers(0, 10**9)})),
)
top_edit = st.tuples(st.sampled_from(["captures", "annotations", "global"]), json_value)


@examples(20)
@given(st.lists(global_edit, max_size=4), st.lists(top_edit, max_size=1), st.integers(0, 64),
       st.sampled_from(["json", "truncated json", "not json"]))
def test_recording_metadata_errors_are_recording_errors(tmp_path_factory, fuzz, edits, top, cut, form):
    from gnuradio.gdm.blocks.sim_link import ReplayLink

    with fuzz.case("SigMF metadata", NOTE) as rec:
        d = tmp_path_factory.mktemp("rec")
        base = d / "r"
        np.zeros((50, 2), np.complex64).tofile(base.with_suffix(".sigmf-data"))
        write_meta(base, sample_rate=SPEC.sample_rate, num_channels=2, n_samples=50, spec=SPEC)
        m = json.loads(base.with_suffix(".sigmf-meta").read_text())
        for k, v in edits:
            if k == "gdm:frame_spec" and isinstance(v, list) and all(isinstance(e, tuple) for e in v):
                fs = SPEC.to_dict()
                fs.update(dict(v))
                v = json.dumps(fs)
            if v is None:
                m["global"].pop(k, None)
            else:
                m["global"][k] = v
        for k, v in top:
            m[k] = v
        text = json.dumps(m)
        if form == "truncated json":
            text = text[: len(text) // 2]
        elif form == "not json":
            text = "\x00\xff" + text[::-1]
        base.with_suffix(".sigmf-meta").write_text(text, errors="surrogateescape")
        data = base.with_suffix(".sigmf-data")
        data.write_bytes(data.read_bytes()[: max(0, data.stat().st_size - cut)])
        try:
            r = open_recording(base)
        except RecordingError as e:
            assert str(e)
            rec.add(items=1, rejected=1)
            return
        ds = m["global"].get("core:dataset")
        target = d / ds if isinstance(ds, str) else data
        assert os.path.commonpath([str(d), os.path.abspath(target)]) == str(d)  # never outside the folder
        assert r.n_samples * r.num_channels * 8 <= os.path.getsize(target)
        r.read()
        try:
            ReplayLink(str(base), estimator="ls")
        except ValueError as e:  # RecordingError or a block's parameter check, with a message
            assert str(e)
            rec.add(items=1, rejected=1)
            return
        rec.add(items=1, accepted=1)
