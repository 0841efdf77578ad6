"""Symbol denoisers after the equalizer: ``denoising.make(name, spec, n_tx)`` with name in
``denoising.names()`` (none, cpe, diffusion, pa_cancel), ``dn.denoise(X, V) -> (X, V)``.

Training, export and evaluation of the diffusion denoiser live in the sub-modules ``data``,
``network``, ``train``, ``export``, ``evaluate`` (torch loads only there).
"""
from . import diffusion, pa_cancel  # noqa: F401  (registration)
from .base import SymbolDenoiser, make, names, register

__all__ = ["SymbolDenoiser", "make", "names", "register"]
