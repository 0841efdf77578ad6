"""The diffusion symbol denoiser: ``denoising.make("diffusion", spec, n_tx, model=None,
device="auto", threads=1, checksum=None)``.

Per stream of every frame, in numpy around an onnxruntime session (runtime.OnnxModel, kind
"denoiser"):
1. classical tracking CPE correction (when the model was trained with it, metadata
   ``preprocess``), so the network refines the best classical estimate;
2. features (denoising.features): the Gaussian constellation posterior at the RE's own noise
   level - the SNR-matched start step: the post-equalization variance of each RE is its
   diffusion noise level - decision errors, mirrored carriers, frame statistics;
3. one network evaluation: the posterior over constellation points, expressed as the
   equivalent observation (z, w) the soft demapper takes (the reverse process stops here - a
   further step would move from the posterior towards a sample, which a soft demapper does not
   want; see denoising/train.py for the objective);
4. pilot REs pass through unchanged;
5. fallback: a failed or non-finite inference gives that frame plain demapping (the input
   symbols and variance, without CPE) with a logged warning; ``fallback_count`` counts frames,
   ``last_info["fallback"]`` marks them.
"""
from __future__ import annotations

import logging

import numpy as np

from ..frame import FrameSpec
from ..logutil import warn_throttled
from .base import SymbolDenoiser, register

log = logging.getLogger("gnuradio.gdm.denoising.diffusion")


@register("diffusion")
class DiffusionDenoiser(SymbolDenoiser):
    name = "diffusion"

    def __init__(self, spec: FrameSpec, model=None, device: str = "auto", threads: int = 1, checksum=None,
                 buckets=(1, 2, 4, 8, 16, 32, 64)):
        super().__init__(spec)
        from ..runtime import MetadataMismatch, OnnxModel

        self.model = OnnxModel(model, device=device, threads=threads, checksum=checksum, spec=spec,
                               n_tx=self.n_tx, kind="denoiser")
        mods = self.model.meta_json("modulations", list)
        if not all(isinstance(m, str) for m in mods):
            raise MetadataMismatch(f"{self.model.path}: metadata 'modulations' must be a list of names, got "
                                   f"{str(mods)[:40]}; re-export the model with `gr-gdm export --kind denoiser`")
        if spec.modulation not in mods:
            raise MetadataMismatch(f"{self.model.path} does not fit this receiver: modulation: model "
                                   f"trained for {', '.join(mods) or 'none listed'}, here {spec.modulation}")
        self.preprocess = self.model.metadata.get("preprocess", "none")
        if self.preprocess not in ("none", "cpe_track"):
            raise MetadataMismatch(f"{self.model.path}: unknown preprocess {self.preprocess!r} in the "
                                   "metadata (this gr-gdm knows none, cpe_track); update gr-gdm or re-export")
        self.device = self.model.device
        self.buckets = tuple(buckets)
        self.fallback_count = 0

    def _network(self, inp: dict) -> np.ndarray:
        from ..runtime.batching import run_bucketed

        return run_bucketed(self.model.run, {k: inp[k] for k in ("y", "logv", "cond", "glob")}, self.buckets)

    def _denoise(self, X, V):
        from .features import prepare

        B = X.shape[0]
        Xo, Vo = X.copy(), V.copy()
        failed = np.zeros(B, bool)
        data = self.spec.data_mask
        for tx in range(self.n_tx):
            if B == 0:
                break
            try:
                inp = prepare(X[:, tx], V[:, tx], self.spec, self.preprocess == "cpe_track", tx)
                out = self._network(inp)
                z = (out[:, 0] + 1j * out[:, 1]).astype(np.complex64)
                w = np.exp(out[:, 2]).astype(np.float32)
                bad = ~(np.isfinite(z).all((1, 2)) & np.isfinite(w).all((1, 2)) & (w > 0).all((1, 2)))
            except Exception as e:  # noqa: BLE001 - any runtime failure -> plain demapping, never a crash
                warn_throttled(log, "denoiser.diffusion.raised",
                               "symbol denoiser inference failed (%s: %s); plain demapping for %d frames",
                               type(e).__name__, e, B)
                failed[:] = True
                continue
            if bad.any():
                warn_throttled(log, "denoiser.diffusion.nonfinite",
                               "symbol denoiser output not finite for %d of %d frames; plain demapping for them",
                               int(bad.sum()), B)
            ok = ~bad
            Xo[ok, tx] = np.where(data, z[ok], X[ok, tx])
            Vo[ok, tx] = np.where(data, w[ok], V[ok, tx])
            failed |= bad
        Xo[failed], Vo[failed] = X[failed], V[failed]
        self.fallback_count += int(failed.sum())
        self.last_info = {"method": self.name, "fallback": failed, "fallback_count": self.fallback_count,
                          "device": self.device, "preprocess": self.preprocess}
        return Xo, Vo

    def describe(self) -> dict:
        return {"path": str(self.model.path), "sha256": self.model.sha256, "device": self.device,
                "modulations": self.model.meta_json("modulations", list), "preprocess": self.preprocess,
                "heldout": self.model.meta_json("heldout_ber", dict, default={})}
