"""Self-supervised risk estimates from received pilots alone: what site adaptation minimises and
what its guard compares. No true channel enters anywhere; only pilot LS values and the noise
variance (the receiver's per-frame estimate from the preamble, or the pilots).

Model at the pilots of one link (LS, normalised to a unit-power link): ``y = h + n`` with
``n ~ CN(0, nv I)`` over the P pilot resource elements, noise independent across REs.

1. Pilot SURE (Stein's unbiased risk estimate). For any estimate ``f(y)`` of ``h`` at the pilots
   (weakly differentiable in y),

       SURE(f; y) = |y - f(y)|^2 - P nv + nv div f(y),
       div f = sum_i  d Re f_i / d Re y_i + d Im f_i / d Im y_i      (real divergence)

   satisfies E[SURE] = E|h - f(y)|^2 whatever the distribution of h: Stein's lemma per real
   coordinate, each of noise variance nv/2. For a linear filter f(y) = W y, div f = 2 Re tr W;
   for a black box, ``mc_divergence`` estimates it with one extra evaluation. Through Tweedie's
   formula it *is* noisy-data score matching: writing f(y) = y + (nv/2) s(y), with s a model of
   the gradient of log p(y) in the 2P real coordinates (the posterior mean has exactly this form
   with the true score), SURE = (nv^2 / 4) (|s|^2 + 2 div s) + P nv, and |s|^2 + 2 div s is the
   implicit (Hyvarinen) score-matching loss of s on the density of the *noisy* pilots.
   Minimising SURE over denoisers fits the prior of the clean channel without ever seeing one.

2. The Gaussian case in closed form. Averaged over frames with sample moment S = mean y y^H,
   SURE(W) = tr((I - W) S (I - W)^H) + 2 nv Re tr W - P nv. Setting its gradient to zero gives
   (I - W) S = nv I, W = I - nv S^-1 = C (C + nv I)^-1 with C = S - nv I: the SURE-optimal pilot
   denoiser is the LMMSE filter of the pilot covariance *minus the noise*, and E[S] - nv I is
   exactly the channel's pilot covariance (unbiased). Site adaptation (``site_prior``) uses these
   moments, then extends them from the pilots to the whole grid through structure: stationarity
   in frequency (the covariance depends only on the carrier spacing: a non-negative delay-power
   profile), separability, and a Jakes time correlation (possibly Doppler-shifted).

3. Hold-out risk (the Noise2Self idea). Split the pilots into kept K and held-out J and predict
   h_J from y_K only:

       R = |y_J - g(y_K)|^2 - |J| nv,   E[R] = E|h_J - g(y_K)|^2,

   because the noise on J is independent of y_K. Unlike SURE, which only scores the estimate
   where the pilots are, it scores *interpolation*: in time when J is a pilot symbol, in
   frequency when J is every other pilot carrier - the part of the grid the pilots never
   observe directly, where a prior earns its keep. The adaptation guard (``guard``) compares
   the shipped and the adapted prior with it on held-out frames.
"""
from __future__ import annotations

from typing import Callable

import numpy as np


def sure(y: np.ndarray, f: np.ndarray, noise_var, div) -> np.ndarray:
    """Per-frame pilot SURE: y, f complex [N, ...] (pilots of each frame), noise_var [N] or
    scalar, div [N] real divergence of the estimator at y -> [N]."""
    y, f = np.asarray(y), np.asarray(f)
    N = y.shape[0]
    P = y[0].size
    nv = np.broadcast_to(np.asarray(noise_var, float), (N,))
    res = np.sum(np.abs((y - f).reshape(N, -1)) ** 2, 1)
    return res - P * nv + nv * np.asarray(div, float)


def linear_sure(y: np.ndarray, W: np.ndarray, noise_var) -> np.ndarray:
    """Per-frame SURE [N] of the linear estimate W y for y complex [N, P]."""
    return sure(y, y @ W.T, noise_var, 2 * np.real(np.trace(W)))


def mc_divergence(f: Callable[[np.ndarray], np.ndarray], y: np.ndarray, eps: float | np.ndarray,
                  rng: np.random.Generator, fy: np.ndarray | None = None) -> np.ndarray:
    """Monte-Carlo real divergence [N] of a black-box estimate f (complex [N, ...] -> same) at y:
    b^T (f(y + eps b) - f(y)) / eps with b real Gaussian in every real coordinate (unbiased as
    eps -> 0 for a smooth f; one extra evaluation). ``eps`` scalar or per frame."""
    N = y.shape[0]
    b = (rng.standard_normal(y.shape) + 1j * rng.standard_normal(y.shape)).astype(y.dtype)
    e = np.asarray(eps, float).reshape(-1, *([1] * (y.ndim - 1)))
    fy = f(y) if fy is None else fy
    d = (f(y + e * b) - fy) / e
    return np.sum(np.real(np.conj(b) * d).reshape(N, -1), 1)


def holdout_risk(y_held: np.ndarray, prediction: np.ndarray, noise_var) -> np.ndarray:
    """Per-frame hold-out risk per held-out RE [N]: mean |y_J - g(y_K)|^2 - nv, an unbiased
    estimate of the prediction's mean squared error at J when g saw only the kept pilots."""
    y, g = np.asarray(y_held), np.asarray(prediction)
    N = y.shape[0]
    nv = np.broadcast_to(np.asarray(noise_var, float), (N,))
    return np.mean(np.abs((y - g).reshape(N, -1)) ** 2, 1) - nv
