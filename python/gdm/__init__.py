"""gr-gdm: generative diffusion models in a multi-antenna OFDM receiver for GNU Radio.

Cores (frame, ofdm, sim, estimation, metrics, ...) are pure numpy and never import GNU Radio;
GNU Radio blocks are loaded lazily on first attribute access (``gdm.ofdm_tx`` in GRC code).
"""
from __future__ import annotations

import importlib

from .frame import FrameSpec

__version__ = "0.1.0"

_BLOCKS = {
    "ofdm_tx": "ofdm_tx", "channel_sim": "channel_sim", "ofdm_sync_demod": "ofdm_sync_demod",
    "iq_compensator": "iq_compensator", "channel_estimator": "channel_estimator", "mimo_equalizer": "mimo_equalizer",
    "symbol_denoiser": "symbol_denoiser", "frame_decoder": "frame_decoder", "link_stats": "link_stats",
    "ofdm_receiver": "ofdm_receiver",
    "sigmf_sink": "sigmf_io", "sigmf_source": "sigmf_io", "stock_ofdm_rx": "stock_ofdm_rx",
    "xlmimo_sim": "xlmimo", "xlmimo_estimator": "xlmimo",
}
_SUBMODULES = {"estimation", "ofdm", "sim", "metrics", "models", "runtime", "denoising", "link", "io",
               "adaptation", "xlmimo"}


def __getattr__(name):
    if name in _BLOCKS:
        mod = importlib.import_module(f".blocks.{_BLOCKS[name]}", __name__)
        return getattr(mod, name)
    if name in _SUBMODULES:
        return importlib.import_module(f".{name}", __name__)
    raise AttributeError(f"module 'gnuradio.gdm' has no attribute {name!r}")


__all__ = ["FrameSpec", *_BLOCKS, *sorted(_SUBMODULES)]
