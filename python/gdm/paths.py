"""Where shipped files live: the checkout in development mode, the install prefix otherwise."""
from __future__ import annotations

import os
import sys
from pathlib import Path

_PKG = Path(__file__).resolve().parent


def model_dir() -> Path | None:
    """Folder of shipped ONNX models: $GDM_MODEL_DIR, the checkout's onnx_models/, or
    <prefix>/share/gr-gdm/onnx_models of an installed module."""
    candidates = [os.environ.get("GDM_MODEL_DIR"), _PKG.parents[1] / "onnx_models"]
    # installed: <prefix>/lib/python3/dist-packages/gnuradio/gdm -> <prefix>/share/gr-gdm
    candidates += [p / "share" / "gr-gdm" / "onnx_models" for p in (*_PKG.parents[3:6], Path(sys.prefix))]
    for c in candidates:
        if c and Path(c).is_dir():
            return Path(c)
    return None
