"""SigMF recordings of multi-antenna streams: write, validate, read in chunks.

Layout follows the SigMF convention for multi-channel datasets: one ``.sigmf-data`` file with
the channels' samples interleaved (``core:num_channels``), ``cf32_le``. gr-gdm adds a ``gdm``
extension in the global object (frame preset, FrameSpec JSON, antenna count) and one annotation
per decoded frame. Reading checks the metadata against the data file and the receiver's
parameters and says what is wrong and how to fix it; a truncated data file is read up to the
damage with a warning.
"""
from __future__ import annotations

import dataclasses
import json
import logging
import os
from pathlib import Path

import numpy as np

from ..frame import FrameSpec

log = logging.getLogger("gnuradio.gdm")
DATATYPES = {"cf32_le": np.dtype("<c8"), "ci16_le": np.dtype("<i2")}


MAX_REFERENCE_FRAMES = 10_000_000


class RecordingError(ValueError):
    """A recording that cannot be used as it is; the message names the field and the fix."""


def base_path(path: str | os.PathLike) -> Path:
    p = Path(path)
    if p.suffix in (".sigmf-meta", ".sigmf-data"):
        p = p.with_suffix("")
    return p


def write_meta(path, *, sample_rate: float, num_channels: int, n_samples: int, spec: FrameSpec | None,
               center_freq: float | None = None, hw: str = "", description: str = "",
               annotations: list[dict] | None = None, datatype: str = "cf32_le", extra: dict | None = None) -> Path:
    """Writes ``<path>.sigmf-meta`` for an existing ``<path>.sigmf-data``; validates it with sigmf."""
    from sigmf import SigMFFile

    base = base_path(path)
    glob = {
        "core:datatype": datatype,
        "core:sample_rate": float(sample_rate),
        "core:num_channels": int(num_channels),
        "core:description": description or "gr-gdm recording",
        "core:recorder": "gr-gdm",
        "core:hw": hw or "unknown",
        # SigMF wants extension namespaces declared; ours is optional for other readers.
        "core:extensions": [{"name": "gdm", "version": "0.1.0", "optional": True}],
    }
    gdm = {"gdm:n_rx": int(num_channels)}
    if spec is not None:
        gdm.update({"gdm:preset": spec.name, "gdm:frame_spec": spec.to_json()})
    gdm.update(extra or {})
    meta = SigMFFile(global_info={**glob, **gdm}, skip_checksum=True)
    meta.set_data_file(str(base.with_suffix(".sigmf-data")), skip_checksum=False)
    meta.add_capture(0, metadata={} if center_freq is None else {"core:frequency": float(center_freq)})
    for a in annotations or []:
        a = dict(a)
        meta.add_annotation(int(a.pop("sample_start")), int(a.pop("sample_count")), metadata=a)
    meta.validate()
    meta.tofile(str(base.with_suffix(".sigmf-meta")), overwrite=True)
    return base.with_suffix(".sigmf-meta")


@dataclasses.dataclass
class Recording:
    base: Path
    meta: dict
    sample_rate: float
    num_channels: int
    n_samples: int  # per channel, whole samples only
    center_freq: float | None
    spec: FrameSpec | None
    truncated: bool
    _mm: np.ndarray = dataclasses.field(repr=False, default=None)
    reference: dict | None = None  # gdm:reference, checked: {mode, seed, n_bytes, frames}

    def read(self, start: int = 0, count: int | None = None) -> np.ndarray:
        """complex64 [num_channels, count] from sample ``start`` (per channel)."""
        stop = self.n_samples if count is None else min(self.n_samples, start + count)
        flat = self._mm[start * self.num_channels: stop * self.num_channels]
        return np.ascontiguousarray(flat.reshape(-1, self.num_channels).T).astype(np.complex64)

    def chunks(self, size: int = 65536):
        for s in range(0, self.n_samples, size):
            yield self.read(s, size)

    @property
    def annotations(self) -> list[dict]:
        return list(self.meta.get("annotations", []))


def open_recording(path, *, preset: str | None = None, n_rx: int | None = None,
                   sample_rate: float | None = None) -> Recording:
    """Opens and checks a recording. ``preset``/``n_rx``/``sample_rate``: what the receiver will
    use; a recording that contradicts them is refused with the reason."""
    base = base_path(path)
    meta_p, data_p = base.with_suffix(".sigmf-meta"), base.with_suffix(".sigmf-data")
    if not meta_p.exists():
        raise RecordingError(f"{meta_p}: no SigMF metadata file; a recording is a .sigmf-meta + .sigmf-data pair")
    try:
        meta = json.loads(meta_p.read_text())
    except (ValueError, RecursionError) as e:  # JSONDecodeError, UnicodeDecodeError, nesting too deep
        raise RecordingError(f"{meta_p}: not valid JSON ({type(e).__name__}: {str(e)[:200]}); the metadata "
                             "file is corrupt") from None
    g = meta.get("global") if isinstance(meta, dict) else None
    if not isinstance(g, dict):
        raise RecordingError(f"{meta_p}: no 'global' object; not a SigMF metadata file")
    data_p = dataset_path(meta_p, g, data_p)
    if not data_p.exists():
        raise RecordingError(f"{data_p}: the data file of the recording is missing")
    dtype = g.get("core:datatype")
    if not isinstance(dtype, str) or dtype not in DATATYPES:
        raise RecordingError(f"{meta_p}: core:datatype is {dtype!r}; gr-gdm reads {', '.join(DATATYPES)}")
    fs = g.get("core:sample_rate")
    if fs is None:
        if sample_rate is None:
            raise RecordingError(f"{meta_p}: core:sample_rate is missing; add it to the metadata or pass "
                                 f"the rate explicitly (--sample-rate)")
        log.warning("%s: core:sample_rate missing, using %g", meta_p, sample_rate)
        fs = sample_rate
    if isinstance(fs, bool) or not isinstance(fs, (int, float)) or not 0 < fs < float("inf"):
        raise RecordingError(f"{meta_p}: core:sample_rate must be a positive number, got {fs!r}")
    n_ch = g.get("core:num_channels", 1)
    if isinstance(n_ch, bool) or not isinstance(n_ch, int) or not 1 <= n_ch <= 1024:
        raise RecordingError(f"{meta_p}: core:num_channels must be a positive integer, got {n_ch!r}")
    if "gdm:n_rx" in g and g["gdm:n_rx"] != n_ch:
        raise RecordingError(f"{meta_p}: contradictory channel count: core:num_channels={n_ch} but "
                             f"gdm:n_rx={g['gdm:n_rx']}; fix one of them")
    if n_rx is not None and n_rx != n_ch:
        raise RecordingError(f"{meta_p}: recording has {n_ch} channel(s), the receiver expects n_rx={n_rx}")
    spec = None
    if "gdm:frame_spec" in g:
        try:
            spec = FrameSpec.from_json(g["gdm:frame_spec"])
        except (ValueError, TypeError, AttributeError, RecursionError) as e:
            raise RecordingError(f"{meta_p}: gdm:frame_spec is invalid: {str(e)[:200]}") from None
    name = preset or (spec.name if spec else None)
    if name is not None:
        if name not in FrameSpec.presets():
            raise RecordingError(f"{meta_p}: frame preset {str(name)[:40]!r} (gdm:frame_spec name) is not one of "
                                 f"{', '.join(FrameSpec.presets())}; pass --preset to choose one")
        want = FrameSpec.preset(name).sample_rate
        if abs(float(fs) - want) > 1e-6 * want:
            raise RecordingError(f"{meta_p}: core:sample_rate {fs:g} Sps does not match preset {name!r} "
                                 f"({want:g} Sps); resample the recording or choose the matching preset")
    if sample_rate is not None and abs(float(fs) - sample_rate) > 1e-6 * sample_rate:
        raise RecordingError(f"{meta_p}: core:sample_rate {fs:g} Sps but the receiver runs at {sample_rate:g} Sps")
    item = DATATYPES[dtype].itemsize * (2 if dtype == "ci16_le" else 1)
    size = data_p.stat().st_size
    whole = size // (item * n_ch)
    truncated = size != whole * item * n_ch
    if truncated:
        log.warning("%s: %d trailing bytes do not make a whole sample on all %d channels (truncated "
                    "file?); reading the %d whole samples before them", data_p, size - whole * item * n_ch,
                    n_ch, whole)
    raw = np.memmap(data_p, dtype=DATATYPES[dtype], mode="r", shape=(whole * n_ch * (2 if dtype == "ci16_le" else 1),))
    mm = raw if dtype == "cf32_le" else _ci16_view(raw)
    caps = meta.get("captures") or [{}]
    if not isinstance(caps, list) or not isinstance(caps[0], dict):
        raise RecordingError(f"{meta_p}: 'captures' must be a list of objects, got {str(caps)[:60]}")
    fc = caps[0].get("core:frequency")
    if fc is not None and (isinstance(fc, bool) or not isinstance(fc, (int, float))):
        raise RecordingError(f"{meta_p}: core:frequency must be a number, got {str(fc)[:40]!r}")
    ref = check_reference(meta_p, g.get("gdm:reference"))
    return Recording(base, meta, float(fs), n_ch, whole, fc, spec, truncated, mm, ref)


def check_reference(meta_p, ref) -> dict | None:
    """``gdm:reference`` (how the transmitter drew its payloads) with every field checked, so a
    replay never generates unbounded payloads from what a metadata file says."""
    if ref is None:
        return None
    whole = (lambda v, lo, hi: isinstance(v, int) and not isinstance(v, bool) and lo <= v <= hi)
    if not isinstance(ref, dict) or ref.get("mode", "random") != "random":
        raise RecordingError(f"{meta_p}: gdm:reference must be {{mode: 'random', seed, n_bytes, frames}}, got "
                             f"{str(ref)[:80]}; drop it to replay without scoring")
    # n_bytes: a frame header's length field is 16 bits; frames: 10 million is ~3 h of nr72 (a
    # truncated recording may hold fewer frames than it says were sent: those count as lost)
    limits = {"seed": (0, 2**63 - 1), "n_bytes": (0, 65535), "frames": (0, MAX_REFERENCE_FRAMES)}
    for k, (lo, hi) in limits.items():
        if not whole(ref.get(k), lo, hi):
            raise RecordingError(f"{meta_p}: gdm:reference.{k} must be an integer in [{lo}, {hi}] for this "
                                 f"recording, got {str(ref.get(k))[:40]}; fix it or drop gdm:reference")
    return {"mode": "random", **{k: ref[k] for k in limits}}


def dataset_path(meta_p: Path, g: dict, default: Path) -> Path:
    """The data file: ``<base>.sigmf-data``, or the SigMF ``core:dataset`` file name when the
    metadata gives one. A name from the metadata must stay inside the recording's folder (no
    absolute path, no '..' out of it), so a recording cannot make the receiver read other files."""
    if g.get("core:metadata_only"):
        raise RecordingError(f"{meta_p}: core:metadata_only is set; this recording has no samples to replay")
    name = g.get("core:dataset")
    if name is None:
        return default
    if not isinstance(name, str) or not name or "\x00" in name:
        raise RecordingError(f"{meta_p}: core:dataset must be a file name, got {str(name)[:60]!r}")
    folder = meta_p.parent
    target = Path(os.path.normpath(folder / name))
    if Path(name).is_absolute() or os.path.commonpath([os.path.abspath(folder), os.path.abspath(target)]) \
            != os.path.abspath(folder):
        raise RecordingError(f"{meta_p}: core:dataset {name[:80]!r} points outside the recording's folder "
                             f"{folder}; refused (put the data file beside the metadata and name it there)")
    return target


class _ci16_view:
    """Lazy complex view of interleaved int16 I/Q (scaled to +-1)."""

    def __init__(self, raw):
        self.raw = raw

    def __getitem__(self, sl: slice):
        r = np.asarray(self.raw[sl.start * 2: sl.stop * 2], np.float32) / 32768.0
        return (r[0::2] + 1j * r[1::2]).astype(np.complex64)
