"""A tiny symbol-denoiser model trained in seconds: proves train -> export -> onnxruntime ->
denoiser -> block end to end in tests. Its accuracy is meaningless; its plumbing is the real one."""
from __future__ import annotations

import functools
import tempfile
from pathlib import Path

from .train import DenoiserTrainConfig


def tiny_config(out_dir) -> DenoiserTrainConfig:
    return DenoiserTrainConfig(out_dir=str(out_dir), steps=3, batch=4, width=8, blocks=1, per_scenario=4,
                               n_rx=(2,), n_rx_p=(1.0,), snr_db=(10.0, 25.0), val_every=3, val_frames=4,
                               ckpt_every=1, progress=False, resume=True)


@functools.lru_cache(maxsize=None)
def tiny_model(out_dir: str | None = None) -> tuple[Path, Path]:
    """(checkpoint, onnx) of a freshly trained tiny model, cached per process."""
    from .export import export_onnx
    from .train import train

    d = Path(out_dir or tempfile.mkdtemp(prefix="gdm-tiny-dn-"))
    ck = train(tiny_config(d))
    return ck, export_onnx(ck, d / "tiny_denoiser.onnx", heldout={"note": "tiny test model"})
