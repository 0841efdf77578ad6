"""Where shipped files live: the checkout in development mode, the install prefix otherwise."""
from __future__ import annotations

import os
import sys
from pathlib import Path

_PKG = Path(__file__).resolve().parent


def model_dirs() -> list[Path]:
    """Folders that may hold shipped ONNX models, in lookup order: $GDM_MODEL_DIR, the
    checkout's onnx_models/, <prefix>/share/gr-gdm/onnx_models of an installed module."""
    candidates = [os.environ.get("GDM_MODEL_DIR"), _PKG.parents[1] / "onnx_models"]
    # installed: <prefix>/lib/python3/dist-packages/gnuradio/gdm -> <prefix>/share/gr-gdm
    candidates += [p / "share" / "gr-gdm" / "onnx_models" for p in (*_PKG.parents[3:6], Path(sys.prefix))]
    return [Path(c) for c in candidates if c]


def model_dir() -> Path | None:
    """The first existing folder of ``model_dirs()``."""
    return next((d for d in model_dirs() if d.is_dir()), None)
