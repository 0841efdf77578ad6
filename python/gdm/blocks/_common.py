"""Shared glue for the GNU Radio wrappers: spec from block parameters, tags, PMT conversion."""
from __future__ import annotations

import logging
import struct
import threading
import time

import numpy as np
import pmt

from ..frame import FrameSpec

FRAME_TAG = pmt.intern("gdm_frame")
NOISE_TAG = pmt.intern("gdm_noise_var")
TX_FRAME_TAG = pmt.intern("gdm_tx_frame")

log = logging.getLogger("gnuradio.gdm")


def limit_blas_threads() -> None:
    """One BLAS thread per call (override: GDM_BLAS_THREADS). In a flowgraph every block already
    runs in its own thread; a multi-threaded BLAS inside each then oversubscribes the cores, and
    small matrix products (LMMSE: 1008 x 144 per link) ran 10-60x slower (measured: LMMSE 1x2
    p50 15.7 ms with 2 BLAS threads on a busy 2-core machine, 0.23 ms with 1)."""
    import os

    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # optional: without it BLAS keeps its own default
        return
    threadpool_limits(int(os.environ.get("GDM_BLAS_THREADS", "1")), user_api="blas")


limit_blas_threads()


def make_spec(preset: str, n_tx: int = 1, modulation: str | None = None, fec: str | None = None) -> FrameSpec:
    over = {"n_tx": int(n_tx)}
    if modulation:
        over["modulation"] = modulation
    if fec:
        over["fec"] = fec
    return FrameSpec.preset(preset, **over)


def check_ports(block: str, n_rx: int, n_tx: int) -> None:
    if int(n_rx) < 1 or int(n_tx) < 1:
        raise ValueError(f"{block}: n_rx and n_tx must be >= 1, got n_rx={n_rx}, n_tx={n_tx}")


_UVECTOR = {np.dtype(t).str: f"init_{n}vector" for t, n in
            ((np.uint8, "u8"), (np.int8, "s8"), (np.int16, "s16"), (np.int32, "s32"), (np.uint16, "u16"),
             (np.uint32, "u32"), (np.float32, "f32"), (np.complex64, "c32"))}


def to_pmt(obj):
    """Python/numpy -> PMT, recursively (dicts become PMT dicts, arrays uniform vectors)."""
    scalar = _SCALARS.get(type(obj))  # exact types first: pmt.to_pmt tries a chain of isinstance
    if scalar is not None:
        return scalar(obj)
    if isinstance(obj, dict):
        d = pmt.make_dict()
        for k, v in obj.items():
            key = _KEYS.get(k)
            if key is None:
                key = _KEYS[k] = pmt.intern(str(k))
            d = pmt.dict_add(d, key, to_pmt(v))
        return d
    if isinstance(obj, np.ndarray):
        if obj.dtype == np.complex128:
            obj = obj.astype(np.complex64)
        elif obj.dtype == np.float64:
            obj = obj.astype(np.float32)
        init = _UVECTOR.get(obj.dtype.str)
        if init is not None:  # pmt.to_pmt converts element by element in Python: 3-10x slower
            return getattr(pmt, init)(obj.size, obj.reshape(-1).tolist())
        return pmt.to_pmt(np.ascontiguousarray(obj.reshape(-1)))
    if isinstance(obj, (bytes, bytearray)):
        return pmt.init_u8vector(len(obj), list(obj))
    if isinstance(obj, (np.integer,)):
        return pmt.from_long(int(obj))
    if isinstance(obj, (np.floating,)):
        return pmt.from_double(float(obj))
    if isinstance(obj, (bool, np.bool_)):
        return pmt.from_bool(bool(obj))
    return pmt.to_pmt(obj)


# interned dict keys (a fixed set: field names), ~1 us each per use saved
_KEYS: dict = {}
_SCALARS = {bool: pmt.from_bool, int: pmt.from_long, float: pmt.from_double, str: pmt.intern}


def from_pmt(p):
    return pmt.to_python(p)


def frame_tag_values(block, port: int, n: int) -> dict[int, object]:
    """gdm_frame tags on input ``port`` within [nitems_read, +n) -> {relative offset: PMT dict}:
    for blocks that pass the tag on, without a PMT -> dict -> PMT round trip per frame."""
    base = block.nitems_read(port)
    return {int(t.offset - base): t.value for t in block.get_tags_in_window(port, 0, n, FRAME_TAG)}


def tag_field(value, key: str, default=None):
    """One field of a gdm_frame tag value (a PMT dict)."""
    v = pmt.dict_ref(value, pmt.intern(key), pmt.PMT_NIL)
    return default if pmt.is_null(v) else pmt.to_python(v)


def frame_tags(block, port: int, start: int, n: int) -> dict[int, dict]:
    """gdm_frame tags on input ``port`` within [nitems_read, +n) -> {relative offset: dict}."""
    base = block.nitems_read(port)
    tags = block.get_tags_in_window(port, 0, n, FRAME_TAG)
    return {int(t.offset - base): from_pmt(t.value) for t in tags}


def equalized_streams(input_items, n_tx: int, spec, n: int) -> tuple[np.ndarray, np.ndarray]:
    """The first ``n`` items of mimo_equalizer's outputs (n_tx symbol streams, then the variance
    stream) -> symbols X complex [B, n_tx, S, K] and post-equalization variances V, same shape."""
    S, K = spec.n_sym, spec.n_occ
    B = n // S
    X = np.stack([np.asarray(x[:n]).reshape(B, S, K) for x in input_items[:n_tx]], 1)
    V = np.asarray(input_items[n_tx][:n]).reshape(B, S, n_tx, K).transpose(0, 2, 1, 3)
    return X, V


def pdu(meta: dict, data: bytes | np.ndarray):
    """(metadata dict, payload u8vector) as a PMT pair. A receiver publishes one per frame:
    built as GNU Radio's serialized PMT bytes and deserialized in one call (~15 us) rather than
    by ~25 Python-to-PMT calls (~70 us, all holding the GIL), where every value has a plain type."""
    if isinstance(data, (bytes, bytearray)):
        wire = _serialized_pdu(meta, bytes(data))
        if wire is not None:
            return pmt.deserialize_str(wire)
        return pmt.cons(to_pmt(meta), pmt.init_u8vector(len(data), list(data)))
    return pmt.cons(to_pmt(meta), to_pmt(data))


_I32 = struct.Struct(">i")
_I64 = struct.Struct(">q")
_F64 = struct.Struct(">d")
_U32 = struct.Struct(">I")
_U16 = struct.Struct(">H")


def _serialized(v) -> bytes | None:
    """A Python value in GNU Radio's PMT serialization (pmt_serial_tags.h), None if unhandled."""
    t = type(v)
    if t is bool:
        return b"\x00" if v else b"\x01"
    if t is int:
        return b"\x03" + _I32.pack(v) if -2 ** 31 <= v < 2 ** 31 else (b"\x0d" + _I64.pack(v) if -2 ** 63 <= v < 2 ** 63 else None)
    if t is float:
        return b"\x04" + _F64.pack(v)
    if t is str:
        b = v.encode()
        return b"\x02" + _U16.pack(len(b)) + b if len(b) < 2 ** 16 else None
    if t is bytes:
        return b"\x0a\x00" + _U32.pack(len(v)) + b"\x01\x00" + v  # u8vector
    return None


def _serialized_pdu(meta: dict, payload: bytes) -> bytes | None:
    parts = [b"\x07"]  # pair (dict, u8vector)
    for k, v in reversed(meta.items()):  # the order dict_add leaves: the last added first
        if v is None:
            continue
        val = _serialized(v)
        if val is None or type(k) is not str:
            return None
        kb = k.encode()
        parts += [b"\x09\x07\x02", _U16.pack(len(kb)), kb, val]
    parts += [b"\x06", _serialized(payload)]
    return b"".join(parts)


def drain_messages(block, handlers, quiet: float = 0.3, timeout: float = 5.0) -> None:
    """Handles queued messages of a block being stopped until its queues stay quiet. GNU Radio
    stops a block fed by messages when its first message source finishes, while other
    upstream blocks may still be posting (e.g. the decoder's last reports)."""
    deadline = time.monotonic() + timeout
    quiet_since = time.monotonic()
    while time.monotonic() < deadline and time.monotonic() - quiet_since < quiet:
        busy = False
        for port, fn in handlers:
            p = pmt.intern(port)
            while block.nmsgs(p):
                fn(block.delete_head_nowait(p))
                busy = True
        if busy:
            quiet_since = time.monotonic()
        time.sleep(0.02)


BATCH_FRAMES = 32  # frames a vector buffer holds, so every work() call gets a real batch


def frame_batches(block, spec, has_outputs: bool = True) -> None:
    """Work in whole frames, with buffers sized for batches of BATCH_FRAMES frames: GNU Radio's
    default buffers hold only ~2 frames of fft-length vectors, and Python blocks are fast only
    when each call sees many."""
    block.set_output_multiple(spec.n_sym)
    if has_outputs:
        level = block.log_level()
        block.set_log_level("warn")  # GNU Radio announces the buffer size on stdout at info level
        block.set_min_output_buffer(BATCH_FRAMES * spec.n_sym)
        block.set_log_level(level)


def subscribed(block, port: str) -> bool:
    """Whether anything listens on a message port (known once the flowgraph has started), so
    per-frame messages that cost a PMT conversion are only built when used."""
    return pmt.length(block.message_subscribers(pmt.intern(port))) > 0


class MethodCores:
    """Live method switching (the GRC ``set_method`` callback) for blocks that hold one numpy
    core per method: a core is built on first use by the block's ``_build(method)`` and kept,
    so switching back is free and a fallback core is built once. Call ``_init_cores()`` in
    ``__init__`` before ``set_method``."""

    def _init_cores(self) -> None:
        self._cache: dict = {}
        self._lock = threading.Lock()
        self.method = None

    def _core(self, method: str):
        with self._lock:
            if method not in self._cache:
                self._cache[method] = self._build(method)
            return self._cache[method]

    def set_method(self, method: str) -> None:
        method = str(method)
        self._core(method)
        self.method = method
