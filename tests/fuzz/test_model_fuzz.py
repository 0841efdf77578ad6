"""Malformed ONNX models: metadata with missing keys, broken JSON, wrong types and out-of-range
values (at the top level and inside frame_spec, antennas, conditioning with an adapted model's
site hypotheses, noise_schedule), and
damaged file bytes. Loading refuses with a ModelError subclass that names the problem, never
another exception; a checksummed file with any byte changed is refused; metadata that passes
sizes a bank within the documented limits."""
import json
import shutil

import numpy as np
import onnx
from hypothesis import given
from hypothesis import strategies as st

from fuzzbook import examples
from gnuradio.gdm import FrameSpec, estimation
from gnuradio.gdm.estimation.diffusion import adaptation_from_metadata, conditioning_from_metadata
from gnuradio.gdm.runtime import ModelError, OnnxModel, shipped_model, validate_metadata
from gnuradio.gdm.runtime.session import ChecksumMismatch

SPEC = FrameSpec.preset("nr72")
SHIPPED = shipped_model()
PROTO = onnx.load(str(SHIPPED))
META = {p.key: p.value for p in PROTO.metadata_props}
NESTED = ("frame_spec", "antennas", "conditioning", "noise_schedule")
NOTE = ("models: items = models; accepted = loaded (metadata fits the receiver); rejected = refused "
        "with a ModelError subclass naming the problem")

# no subnormals: onnxruntime sets flush-to-zero on the thread that runs a model, after which
# hypothesis cannot draw them
json_value = st.recursive(
    st.none() | st.booleans() | st.integers(-2**70, 2**70) | st.floats(allow_nan=True, allow_subnormal=False) | st.text(max_size=8),
    lambda c: st.lists(c, max_size=3) | st.dictionaries(st.text(max_size=6), c, max_size=3), max_leaves=6)


def _paths(obj, prefix=()):
    """Every key path of a nested JSON object (dicts only)."""
    if isinstance(obj, dict):
        for k, v in obj.items():
            yield prefix + (k,)
            yield from _paths(v, prefix + (k,))


KEYS = sorted(set(META) | {"adaptation"})  # adaptation: written by gr-gdm adapt
NESTED_PATHS = [(k, p) for k in NESTED for p in _paths(json.loads(META[k]))]

number = st.floats(-1e6, 1e6) | st.floats(0, 1e-5) | json_value
site = st.fixed_dictionaries({
    "delay_profiles": st.lists(st.fixed_dictionaries({"delays_s": st.lists(number, max_size=4),
                                                      "powers": st.lists(number, max_size=4)}), max_size=3),
    "dopplers": st.lists(st.fixed_dictionaries({"doppler_hz": number, "shift_hz": number}), max_size=3),
    "log_prior": json_value | st.lists(number, max_size=5)}) | json_value

edit = st.one_of(
    st.tuples(st.just("nested"), st.just(("conditioning", ("bank", "site"))), site),  # adapted models
    st.tuples(st.just("drop"), st.sampled_from(KEYS), st.none()),
    st.tuples(st.just("text"), st.sampled_from(KEYS), st.text(max_size=20)),
    st.tuples(st.just("json"), st.sampled_from(KEYS), json_value),
    st.tuples(st.just("nested"), st.sampled_from(NESTED_PATHS), json_value | st.just("<drop>")),
    st.tuples(st.just("deep"), st.sampled_from(NESTED), st.integers(1, 100000)),
)


def mutate(edits) -> dict:
    meta = dict(META)
    for kind, key, v in edits:
        if kind == "drop":
            meta.pop(key, None)
        elif kind == "text":
            meta[key] = v
        elif kind == "json":
            meta[key] = json.dumps(v)
        elif kind == "deep":  # nesting deep enough to break a recursive parser
            meta[key] = "[" * v + "]" * v
        else:
            top, path = key
            try:
                obj = json.loads(meta.get(top, "{}"))
                node = obj
                for p in path[:-1]:
                    node = node[p]
                if v == "<drop>":
                    del node[path[-1]]
                else:
                    node[path[-1]] = v
                meta[top] = json.dumps(obj)
            except (ValueError, KeyError, TypeError, IndexError, RecursionError):
                pass  # an earlier edit already broke this key
    return meta


@examples(40)
@given(st.lists(edit, min_size=1, max_size=4))
def test_metadata_errors_are_model_errors(fuzz, edits):
    with fuzz.case("ONNX metadata", NOTE) as rec:
        meta = mutate(edits)
        try:
            validate_metadata(meta, SPEC, n_rx=2, n_tx=1, kind="estimator", path="fuzzed.onnx")
            grid, top, scale = conditioning_from_metadata(meta, "fuzzed.onnx")
            adapted = adaptation_from_metadata(meta, "fuzzed.onnx")
        except ModelError as e:
            assert "fuzzed.onnx" in str(e)
            rec.add(items=1, rejected=1)
            return
        assert 1 <= grid.n_ds <= 64 and 1 <= grid.n_fd <= 64 and 1 <= top <= grid.n_t * grid.n_f
        assert len(grid.site_f) <= 256 and len(grid.site_t) <= 256 and (adapted is None or isinstance(adapted, dict))
        assert 0 < scale <= 1e3
        rec.add(items=1, accepted=1)


@examples(3)
@given(st.lists(edit, min_size=1, max_size=2))
def test_model_file_with_fuzzed_metadata_loads_or_refuses(tmp_path_factory, fuzz, edits):
    """The same through a real file and the diffusion estimator's constructor."""
    with fuzz.case("ONNX metadata", NOTE) as rec:
        model = onnx.ModelProto()
        model.CopyFrom(PROTO)
        del model.metadata_props[:]
        for k, v in mutate(edits).items():
            model.metadata_props.add(key=k, value=v)
        path = tmp_path_factory.mktemp("model") / "m.onnx"
        onnx.save(model, str(path))
        try:
            est = estimation.make("diffusion", SPEC, 2, model=path, checksum=False, device="cpu")
        except ModelError as e:
            assert str(path) in str(e)
            rec.add(items=1, rejected=1)
            return
        assert est.model.sha256 is None
        rec.add(items=1, accepted=1)


@examples(15)
@given(st.sampled_from(["truncate", "flip", "overwrite"]), st.integers(0, 2**31 - 1), st.booleans())
def test_damaged_model_bytes(tmp_path_factory, fuzz, how, seed, checked):
    with fuzz.case("ONNX file bytes", NOTE + "; a checksummed file with changed bytes is always refused") as rec:
        rng = np.random.default_rng(seed)
        raw = bytearray(SHIPPED.read_bytes())
        if how == "truncate":
            raw = raw[:int(rng.integers(0, len(raw)))]
        elif how == "flip":
            for i in rng.integers(0, len(raw), int(rng.integers(1, 20))):
                raw[i] ^= int(rng.integers(1, 256))
        else:
            at = int(rng.integers(0, len(raw)))
            raw[at:at + 1000] = rng.integers(0, 256, 1000, np.uint8).tobytes()
        d = tmp_path_factory.mktemp("model")
        path = d / SHIPPED.name
        path.write_bytes(bytes(raw))
        if checked:  # the shipped SHA256SUMS beside it: any change is caught
            shutil.copy(SHIPPED.parent / "SHA256SUMS", d / "SHA256SUMS")
        try:
            m = OnnxModel(path, device="cpu", spec=SPEC, n_rx=2, n_tx=1, checksum=None if checked else False)
        except ModelError as e:
            assert str(e)
            assert not checked or isinstance(e, ChecksumMismatch) or bytes(raw) == SHIPPED.read_bytes()
            rec.add(items=1, rejected=1)
            return
        assert not checked or bytes(raw) == SHIPPED.read_bytes()
        x = np.zeros((1, 2, SPEC.n_sym, SPEC.n_occ), np.float32)
        try:  # damaged weights may give garbage (the estimator falls back on non-finite output)
            m.run(x=x, sigma=np.ones(1), cond=np.zeros((1, 8, SPEC.n_sym, SPEC.n_occ)), glob=np.zeros((1, 5)))
        except Exception as e:  # noqa: BLE001 - onnxruntime's own errors on a damaged graph
            assert "onnxruntime" in type(e).__module__, e
        rec.add(items=1, accepted=1)

