"""A learned estimator must never stop a receiver: its failures are replaced by a classical
estimate, frame by frame, and each replacement is labelled so the caller can count and tag it."""
from __future__ import annotations

import logging

import numpy as np

from ..logutil import warn_throttled

log = logging.getLogger("gnuradio.gdm")


def estimate_or_fallback(est, Y, nv, fallback, who: str = "channel_estimator"):
    """``est.estimate(Y, nv)`` -> (H, per-frame label: '' where the method's own estimate was
    used, else the estimator that replaced it). ``fallback()`` returns the classical estimator
    (ls_interp) for a call that raised or frames that came back non-finite; a diffusion
    estimator's own mixture fallback (``last_info['fallback']``) is labelled gmm_lmmse."""
    B = Y.shape[0]
    try:
        H = est.estimate(Y, nv)
    except Exception as e:  # noqa: BLE001 - whatever a model does, the frames still get an estimate
        warn_throttled(log, f"{who}.raised", "%s: %s failed on %d frames (%s: %s); using ls_interp for them",
                       who, est.name, B, type(e).__name__, e)
        return fallback().estimate(Y, nv), np.full(B, "ls_interp", object)
    fb = np.asarray(est.last_info.get("fallback", np.zeros(B, bool)), bool)
    labels = np.where(fb, "gmm_lmmse", "").astype(object)
    bad = ~np.isfinite(H).all(tuple(range(1, H.ndim)))
    if bad.any():
        warn_throttled(log, f"{who}.nonfinite", "%s: %s gave a non-finite estimate for %d frames; using "
                       "ls_interp for them", who, est.name, int(bad.sum()))
        H[bad] = fallback().estimate(Y[bad], nv[bad])
        labels[bad] = "ls_interp"
    return H, labels
