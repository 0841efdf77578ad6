"""One entry point for every XL-MIMO estimator, and the streaming core behind the GNU Radio
block ``xlmimo_estimator`` (pure numpy; the block only moves vectors and messages).

Offline:
    from gnuradio.gdm import xlmimo
    est = xlmimo.make("diffusion", cfg, prior="onnx_models/gdm_xlmimo_prior.onnx")
    H_hat = est(Y, W, noise_var)        # Y [B, P, N_RF, K], W [B or 1, P, N_RF, N] -> [B, N, K]

Streaming (one vector per user and frame):
    core = xlmimo.EstimatorCore("diffusion", n_pilots=8, cfg=cfg, prior=...)
    core.set_combiners(W)               # [P, N_RF, N] (fixed) - or per frame from a message
    out = core.process(vecs, noise_var) # vecs complex64 [B, P*N_RF*K] -> [B, N*K]

Flat layouts (C order): input [p][rf][k], output [antenna][k].
"""
from __future__ import annotations

import numpy as np

from ..sim.nearfield import NearFieldConfig
from .evaluate import ESTIMATORS, make_estimator


def names() -> list[str]:
    return list(ESTIMATORS)


def make(name: str, cfg: NearFieldConfig | None = None, prior=None, **options):
    """Callable (Y, W, noise_var) -> H_hat complex64 [B, N, K]. ``prior``: ONNX path or denoiser
    callable for 'diffusion'; options go to the estimator (e.g. n_iter=4 for diffusion)."""
    return make_estimator(name, cfg or NearFieldConfig(), prior, **options)


class EstimatorCore:
    """State of an ``xlmimo_estimator`` block: estimator, array and pilot sizes, combiners."""

    def __init__(self, method: str = "diffusion", n_pilots: int = 8, cfg: NearFieldConfig | None = None,
                 prior=None, combiners=None, noise_var: float = 0.1, **options):
        self.cfg = cfg or NearFieldConfig()
        self.n_pilots = int(n_pilots)
        self.noise_var = float(noise_var)
        self.prior, self.options = prior, options
        self.set_method(method)
        self.W = None
        if combiners is not None:
            self.set_combiners(combiners)

    @property
    def vlen_in(self) -> int:
        return self.n_pilots * self.cfg.n_rf * self.cfg.n_subcarriers

    @property
    def vlen_out(self) -> int:
        return self.cfg.n_ant * self.cfg.n_subcarriers

    def set_method(self, method: str) -> None:
        if method == "diffusion" and (isinstance(self.prior, str) or hasattr(self.prior, "__fspath__")):
            from .export import read_metadata, validate_metadata
            validate_metadata(read_metadata(self.prior), self.cfg)
        if method == "ls" and self.n_pilots * self.cfg.n_rf < self.cfg.n_ant:
            raise ValueError(f"LS needs n_pilots * n_rf >= n_ant ({self.n_pilots} * {self.cfg.n_rf} "
                             f"< {self.cfg.n_ant})")
        self.method = method
        self._f = make(method, self.cfg, self.prior, **(self.options if method == "diffusion" else {}))

    def set_combiners(self, W) -> None:
        """W complex [P, N_RF, N] (or flat, same order), used until replaced."""
        W = np.asarray(W, np.complex64)
        shape = (self.n_pilots, self.cfg.n_rf, self.cfg.n_ant)
        if W.size != np.prod(shape):
            raise ValueError(f"combiners must have {np.prod(shape)} entries {shape}, got {W.shape}")
        self.W = W.reshape(shape)

    def set_noise_var(self, noise_var: float) -> None:
        self.noise_var = float(noise_var)

    def process(self, vecs, noise_var=None, combiners=None) -> np.ndarray:
        """vecs complex [B, vlen_in] -> channel estimates complex64 [B, vlen_out]. ``combiners``
        [B, P, N_RF, N] overrides the stored ones for this batch (per-frame combiners)."""
        vecs = np.asarray(vecs, np.complex64)
        if vecs.ndim == 1:
            vecs = vecs[None]
        if vecs.shape[-1] != self.vlen_in:
            raise ValueError(f"input vectors must have length {self.vlen_in}, got {vecs.shape[-1]}")
        W = self.W if combiners is None else np.asarray(combiners, np.complex64)
        if W is None:
            raise ValueError("no combiner matrices: pass them as the combiners parameter, a "
                             "'combiners' message or a gdm_xlmimo_combiners tag first")
        B = vecs.shape[0]
        Y = vecs.reshape(B, self.n_pilots, self.cfg.n_rf, self.cfg.n_subcarriers)
        nv = self.noise_var if noise_var is None else noise_var
        H = self._f(Y, W, nv)
        return np.asarray(H, np.complex64).reshape(B, self.vlen_out)
