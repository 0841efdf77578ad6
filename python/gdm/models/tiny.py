"""A tiny estimator model trained in seconds: proves train -> export -> onnxruntime -> estimator
end to end in tests and smoke checks. Its accuracy is meaningless; its plumbing is the real one."""
from __future__ import annotations

import functools
import tempfile
from pathlib import Path

from .train import TrainConfig


def tiny_config(out_dir) -> TrainConfig:
    return TrainConfig(out_dir=str(out_dir), steps=4, batch=8, widths=(8,), emb=16, bank_n_ds=4,
                       bank_n_fd=3, bank_top=4, val_every=4, val_frames=8, ckpt_every=2,
                       progress=False, resume=True)


@functools.lru_cache(maxsize=None)
def tiny_model(out_dir: str | None = None) -> tuple[Path, Path]:
    """(checkpoint, onnx) of a freshly trained tiny model, cached per process."""
    from .export import export_onnx
    from .train import train

    d = Path(out_dir or tempfile.mkdtemp(prefix="gdm-tiny-"))
    ck = train(tiny_config(d))
    return ck, export_onnx(ck, d / "tiny.onnx", heldout={"note": "tiny test model"})
