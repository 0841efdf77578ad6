"""Property tests (hypothesis): whatever arrives, the receiver cores neither crash nor hang nor
grow without bound, and every rejected frame is counted. `make test` runs a short profile; the
long run (README) is `HYPOTHESIS_PROFILE=long .venv/bin/python -m pytest tests/fuzz`."""
import os
import json

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gnuradio.gdm import FrameSpec
from gnuradio.gdm.io.recording import RecordingError, open_recording, write_meta
from gnuradio.gdm.ofdm import framing
from gnuradio.gdm.ofdm.sync import FrameSynchronizer
from gnuradio.gdm.ofdm.transceiver import decode_batch, random_payload, transmit

SPEC = FrameSpec.preset("nr72")
FRAMES, _, _ = transmit([random_payload(i, 50) for i in range(3)], range(3), SPEC)

settings.register_profile("ci", max_examples=25, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
settings.register_profile("long", max_examples=3000, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))

segment = st.one_of(
    st.tuples(st.just("noise"), st.integers(1, 6000), st.floats(1e-6, 1e6)),
    st.tuples(st.just("zeros"), st.integers(1, 6000), st.just(0.0)),
    st.tuples(st.just("frame"), st.integers(0, 2), st.floats(1e-3, 1e3)),
    st.tuples(st.just("cut"), st.integers(1, SPEC.frame_len - 1), st.floats(1e-3, 1e3)),
    st.tuples(st.just("preamble"), st.integers(0, 0), st.floats(1e-3, 1e3)),
    st.tuples(st.just("nan"), st.integers(1, 500), st.sampled_from([np.nan, np.inf, -np.inf])),
    st.tuples(st.just("huge"), st.integers(1, 3000), st.just(1e30)),
)


def _render(segs, rng):
    out = []
    for kind, n, a in segs:
        if kind in ("noise", "huge"):
            out.append((rng.standard_normal(n) + 1j * rng.standard_normal(n)) * a)
        elif kind == "zeros":
            out.append(np.zeros(n))
        elif kind == "frame":
            out.append(FRAMES[0, n * SPEC.frame_len:(n + 1) * SPEC.frame_len] * a)
        elif kind == "cut":
            out.append(FRAMES[0, :n] * a)
        elif kind == "preamble":
            out.append(FRAMES[0, :SPEC.symbol_len] * a)
        else:
            out.append(np.full(n, a, complex))
    x = np.concatenate(out) if out else np.zeros(1)
    return np.stack([x, x * 0.5]).astype(np.complex64)


@given(st.lists(segment, max_size=8), st.integers(1, 5000), st.integers(0, 2**31 - 1))
def test_sync_survives_any_stream(segs, chunk, seed):
    y = _render(segs, np.random.default_rng(seed))
    s = FrameSynchronizer(SPEC, 2)
    frames = []
    for i in range(0, y.shape[1], chunk):
        s.push(y[:, i:i + chunk])
        frames += s.pop_frames()
        assert s._buf.shape[1] <= chunk + 4 * SPEC.frame_len + 8192  # bounded buffer
    frames += s.flush()
    for f in frames:
        assert np.isfinite(f.grid).all() and f.grid.shape == (2, SPEC.n_sym, SPEC.fft_len)
    invalid = sum(n for k, n, _ in segs if k in ("nan", "huge"))
    if invalid == 0:
        assert not any(f.nonfinite for f in frames)
    assert s.nonfinite_samples == invalid


@given(st.binary(min_size=0, max_size=600))
def test_unpack_never_raises_on_garbage(raw):
    bits = np.unpackbits(np.frombuffer(raw, np.uint8))
    u = framing.unpack_frame(bits)
    assert u.crc_ok in (True, False) and (u.payload is None or len(u.payload) <= len(raw))


@given(st.integers(0, 2**31 - 1), st.sampled_from([0.0, 1e-12, 1.0, 1e12, np.nan, np.inf]))
def test_decoder_takes_any_symbols(seed, scale):
    rng = np.random.default_rng(seed)
    shape = (3, 1, SPEC.n_sym, SPEC.n_occ)
    x = ((rng.standard_normal(shape) + 1j * rng.standard_normal(shape)) * scale).astype(np.complex64)
    nv = np.abs(rng.standard_normal(shape)).astype(np.float32) * (scale if np.isfinite(scale) else 1)
    out = decode_batch(x, nv, SPEC)
    assert len(out) == 3 and not any(d.crc_ok for d in out)


meta_edit = st.one_of(
    st.tuples(st.sampled_from(["core:sample_rate", "core:num_channels", "core:datatype", "gdm:n_rx",
                               "gdm:frame_spec", "core:version"]),
              st.one_of(st.none(), st.integers(-5, 10**7), st.floats(allow_nan=True), st.text(max_size=5),
                        st.lists(st.integers(), max_size=2))),
)


@given(st.lists(meta_edit, max_size=4), st.integers(0, 64))
def test_recording_metadata_errors_are_recording_errors(tmp_path_factory, edits, cut):
    d = tmp_path_factory.mktemp("rec")
    base = d / "r"
    np.zeros((50, 2), np.complex64).tofile(base.with_suffix(".sigmf-data"))
    write_meta(base, sample_rate=SPEC.sample_rate, num_channels=2, n_samples=50, spec=SPEC)
    m = json.loads(base.with_suffix(".sigmf-meta").read_text())
    for k, v in edits:
        if v is None:
            m["global"].pop(k, None)
        else:
            m["global"][k] = v
    base.with_suffix(".sigmf-meta").write_text(json.dumps(m))
    data = base.with_suffix(".sigmf-data")
    data.write_bytes(data.read_bytes()[: max(0, data.stat().st_size - cut)])
    try:
        r = open_recording(base)
    except RecordingError:
        return
    assert r.n_samples * r.num_channels * 8 <= data.stat().st_size
    r.read()
