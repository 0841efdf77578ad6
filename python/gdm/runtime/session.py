"""onnxruntime sessions for gr-gdm models: file and checksum checks, metadata validation against
the caller's FrameSpec and antenna count, execution-provider choice and thread settings.

Every refusal is a ``ModelError`` subclass whose message says what is wrong and what to do:
``ModelFileMissing`` (also a FileNotFoundError), ``ChecksumMismatch``, ``NotOnnxModel``,
``MetadataMismatch``.
"""
from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np

from ..frame import FrameSpec
from ..paths import model_dirs
from . import checksums
from .batching import run_batched

log = logging.getLogger("gnuradio.gdm.runtime")

DEFAULT_ESTIMATOR_MODEL = "gdm_chanest_nr72.onnx"
DEFAULT_DENOISER_MODEL = "gdm_denoiser_nr72.onnx"
DEFAULT_MODELS = {"estimator": DEFAULT_ESTIMATOR_MODEL, "denoiser": DEFAULT_DENOISER_MODEL}
# FrameSpec fields a model's statistics depend on (modulation and pilot seed do not: LS divides
# the pilots out).
SPEC_FIELDS = ("fft_len", "cp_len", "sample_rate", "occupied", "n_sym", "pilot_symbols", "pilot_carriers")


class ModelError(RuntimeError):
    pass


class ModelFileMissing(ModelError, FileNotFoundError):
    pass


class ChecksumMismatch(ModelError, checksums.ChecksumMismatch):
    pass


class NotOnnxModel(ModelError):
    pass


class MetadataMismatch(ModelError):
    pass


def shipped_model(name: str = DEFAULT_ESTIMATOR_MODEL) -> Path:
    for d in model_dirs():
        if (d / name).is_file():
            return d / name
    raise ModelFileMissing(f"shipped model {name!r} not found in {', '.join(map(str, model_dirs()))}; "
                           "set GDM_MODEL_DIR or pass model=<path>")


def select_providers(device: str) -> tuple[list, str]:
    """(providers for InferenceSession, device actually used) for device auto|cpu|cuda."""
    import onnxruntime as ort

    device = (device or "auto").lower()
    if device not in ("auto", "cpu", "cuda"):
        raise ValueError(f"device must be auto, cpu or cuda, got {device!r}")
    have = ort.get_available_providers()
    if device in ("auto", "cuda") and "CUDAExecutionProvider" in have:
        return ["CUDAExecutionProvider", "CPUExecutionProvider"], "cuda"
    if device == "cuda":
        raise ModelError(f"device='cuda' asked for, but this onnxruntime has no CUDA execution provider "
                         f"(available: {', '.join(have)}); install onnxruntime-gpu or use device='cpu'")
    return ["CPUExecutionProvider"], "cpu"


def _load_proto(path: Path):
    import onnx

    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception as e:  # noqa: BLE001 - any parse failure means "not an ONNX model"
        raise NotOnnxModel(f"{path} is not an ONNX model ({type(e).__name__}: {e})") from e
    if model.ir_version <= 0 or not model.graph.node:
        raise NotOnnxModel(f"{path} is not an ONNX model (no graph in it); point model= at an .onnx "
                           "file written by `gr-gdm export`")
    linked = [t.name for t in _tensors(model.graph) if t.data_location == onnx.TensorProto.EXTERNAL]
    if linked:
        # External data names other files; a model must not make the receiver read files chosen
        # by whoever wrote it. gr-gdm models are small enough to hold their weights inline.
        raise NotOnnxModel(f"{path} keeps tensors in external files ({', '.join(linked[:3])}); gr-gdm loads "
                           "self-contained models only: save it with onnx.save(model, path, "
                           "save_as_external_data=False)")
    return model


def _tensors(graph):
    """Every TensorProto of a graph: initializers and node attributes, subgraphs included."""
    yield from graph.initializer
    for node in graph.node:
        for a in node.attribute:
            if a.HasField("t"):
                yield a.t
            yield from a.tensors
            if a.HasField("g"):
                yield from _tensors(a.g)
            for g in a.graphs:
                yield from _tensors(g)


def meta_json(meta: dict, key: str, want: type | tuple, path="model", default=None):
    """The JSON value of metadata ``key``, checked to be of type ``want``; ``default`` when the
    key is absent and a default is given. Anything else is a MetadataMismatch naming the key."""
    raw = meta.get(key)
    if raw is None:
        if default is not None:
            return default
        raise MetadataMismatch(f"{path}: metadata {key!r} is missing; re-export the model with `gr-gdm export`")
    try:
        value = json.loads(raw)
    except (TypeError, ValueError, RecursionError) as e:
        raise MetadataMismatch(f"{path}: metadata {key!r} is not valid JSON ({type(e).__name__}); the file "
                               "is damaged or was not written by `gr-gdm export`") from None
    wants = want if isinstance(want, tuple) else (want,)
    if not isinstance(value, wants) or (isinstance(value, bool) and bool not in wants and object not in wants):
        names = "/".join(t.__name__ for t in wants)
        raise MetadataMismatch(f"{path}: metadata {key!r} must be a JSON {names}, got {type(value).__name__}; "
                               "re-export the model with `gr-gdm export`")
    return value


def spec_differences(model_spec: dict, spec: FrameSpec) -> list[str]:
    want = spec.to_dict()
    diffs = []
    norm = (lambda v: list(v) if isinstance(v, (list, tuple)) else v)
    for f in SPEC_FIELDS:
        a, b = norm(model_spec.get(f)), norm(want.get(f))
        if a != b:
            show = (lambda v: f"{len(v)} carriers {v[0]}..{v[-1]}" if f == "occupied" and isinstance(v, list) and v
                    else repr(v)[:80])
            diffs.append(f"frame {f}: model {show(a)}, here {show(b)}")
    return diffs


def _int_list(v) -> bool:
    return isinstance(v, list) and all(isinstance(i, int) and not isinstance(i, bool) for i in v)


def validate_metadata(meta: dict[str, str], spec: FrameSpec | None = None, n_rx: int | None = None,
                      n_tx: int | None = None, kind: str = "estimator", path="model") -> None:
    """Raise MetadataMismatch listing every difference between a model's metadata and the caller
    (and naming any metadata field that is missing, not JSON or of the wrong type)."""
    problems = []
    if "gdm_kind" not in meta:
        raise MetadataMismatch(f"{path} has no gr-gdm metadata (gdm_kind missing); export it with "
                               "`gr-gdm export` so frame and antenna checks are possible")
    if meta["gdm_kind"] != kind:
        problems.append(f"kind: model is a {str(meta['gdm_kind'])[:40]!r} model, this needs a {kind!r} model")
    if spec is not None:
        try:
            mspec = meta_json(meta, "frame_spec", dict, path)
        except MetadataMismatch as e:
            problems.append(str(e))
        else:
            problems += spec_differences(mspec, spec) if mspec else ["frame_spec is empty in the model metadata"]
    if n_tx is not None or n_rx is not None:
        ants = meta_json(meta, "antennas", dict, path, default={})
        ok_tx, ok_rx = ants.get("n_tx", [1]), ants.get("n_rx", "any")
        if not _int_list(ok_tx):
            problems.append(f"metadata antennas.n_tx must be a list of integers, got {str(ok_tx)[:40]}")
        elif n_tx is not None and n_tx not in ok_tx:
            problems.append(f"n_tx: model supports {ok_tx}, here {n_tx}")
        if ok_rx != "any" and not _int_list(ok_rx):
            problems.append(f"metadata antennas.n_rx must be \"any\" or a list of integers, got {str(ok_rx)[:40]}")
        elif n_rx is not None and ok_rx != "any" and n_rx not in ok_rx:
            problems.append(f"n_rx: model supports {ok_rx}, here {n_rx}")
    if problems:
        raise MetadataMismatch(f"{path} does not fit this receiver: " + "; ".join(problems))


class OnnxModel:
    """A checked onnxruntime session.

    ``OnnxModel(path=None, device="auto", threads=1, checksum=None, spec=None, n_rx=None,
    n_tx=None, kind="estimator")``: ``path`` None = the shipped model of that kind; ``checksum`` None =
    verify against the SHA256SUMS beside the file when it lists it (always so for shipped models),
    a hex string = verify against it, False = skip. ``.device`` says which provider runs it.
    """

    def __init__(self, path=None, device: str = "auto", threads: int = 1, checksum=None,
                 spec: FrameSpec | None = None, n_rx: int | None = None, n_tx: int | None = None,
                 kind: str = "estimator", batch_size: int = 32):
        import onnxruntime as ort

        shipped = path is None
        self.path = shipped_model(DEFAULT_MODELS.get(kind, DEFAULT_ESTIMATOR_MODEL)) if shipped else Path(path)
        if not self.path.is_file():
            raise ModelFileMissing(f"model file {self.path} does not exist; pass model=<path to .onnx> "
                                   "or model=None for the shipped default")
        self.sha256 = None
        if checksum is not False:
            try:
                self.sha256 = checksums.verify(self.path, checksum if isinstance(checksum, str) else None)
            except checksums.ChecksumMismatch as e:
                raise ChecksumMismatch(str(e)) from None
            if shipped and self.sha256 is None:
                raise ChecksumMismatch(f"shipped model {self.path} is not listed in "
                                       f"{self.path.parent / checksums.SUMS_NAME}")
            if self.sha256 is None:
                log.warning("model %s has no checksum to verify against (not in a %s beside it); its "
                            "SHA-256 is %s: `gr-gdm export` lists it, or pass checksum=<hex> to pin it",
                            self.path, checksums.SUMS_NAME, checksums.sha256_file(self.path))
        proto = _load_proto(self.path)
        self.metadata = {p.key: p.value for p in proto.metadata_props}
        validate_metadata(self.metadata, spec, n_rx, n_tx, kind, self.path)
        providers, self.device = select_providers(device)
        so = ort.SessionOptions()
        so.intra_op_num_threads = max(1, int(threads))
        so.inter_op_num_threads = 1
        so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        so.add_session_config_entry("session.intra_op.allow_spinning", "0")
        # no "session.set_denormal_as_zero": it switches flush-to-zero on for the calling thread
        # (the flowgraph's main thread), changing every later float computation of the process
        try:
            self.session = ort.InferenceSession(proto.SerializeToString(), so, providers=providers)
        except Exception as e:  # noqa: BLE001
            raise NotOnnxModel(f"onnxruntime cannot load {self.path}: {e}") from e
        self.input_names = [i.name for i in self.session.get_inputs()]
        self.output_names = [o.name for o in self.session.get_outputs()]
        self.batch_size = int(batch_size)
        log.info("loaded %s on %s (%s), sha256 %s", self.path.name, self.device,
                 self.session.get_providers()[0], self.sha256 or "not checked")

    def meta_json(self, key: str, want: type | tuple = object, default=None):
        """Metadata ``key`` parsed as JSON of type ``want`` (MetadataMismatch otherwise)."""
        return meta_json(self.metadata, key, want, self.path, default)

    def run(self, **inputs) -> np.ndarray:
        """One call, inputs as given (first output)."""
        feeds = {k: np.ascontiguousarray(v, dtype=np.float32) for k, v in inputs.items()}
        return self.session.run(self.output_names[:1], feeds)[0]

    def run_batched(self, **inputs) -> np.ndarray:
        """Any number of items in fixed batches of ``batch_size`` (last one padded, never dropped)."""
        return run_batched(self.run, inputs, self.batch_size)
