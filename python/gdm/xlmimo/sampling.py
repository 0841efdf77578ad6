"""Measurement-consistent estimation with the learned channel prior.

The prior is a denoiser D(x, sigma) ~ E[h | h + sigma n] (Tweedie), an ONNX session or the torch
module. The observations are whitened (y = A h + n, n ~ CN(0, noise_var I), A = Q x N with the
same A on every subcarrier, see ``ops.whiten``) and A is factored once per frame (SVD).

Two samplers, both deterministic by default and without gradients through the network:

``oamp`` (default): orthogonal AMP with the diffusion denoiser as its nonlinear step. Each
    iteration (i) a de-biased LMMSE step turns the current estimate and the observations into
    r = h + (approximately white Gaussian) error whose variance tau^2 follows from the operator's
    singular values, (ii) the denoiser is called at exactly that noise level, sigma = tau: the
    network step is matched to the measured uncertainty, so no noise schedule is tuned and the
    number of steps is small, (iii) the output is made divergence-free, (D(r) - alpha r) / (1 - alpha),
    with alpha the denoiser's divergence from one Monte-Carlo probe (batched with the main call),
    and its error variance is read off the residual |y - A h|^2. The estimate is D(r) of the last
    iteration (Tweedie posterior mean).
``anneal``: plug-and-play reverse diffusion (DiffPIR-like): a geometric sigma schedule; at each
    step denoise, then a regularised data-consistency solve
    argmin |y - A h|^2 / noise_var + |h - D(x)|^2 / sigma^2 (closed form via the SVD), then
    re-noise to the next sigma with the predicted noise direction (DDIM-like, deterministic).

``refine`` (default of ``DiffusionEstimator``): ``anneal`` started from the SIGW estimate instead
    of from noise, at the noise level SIGW leaves (its least-squares gain error variance, scaled),
    with fresh noise at each step (posterior sampling), averaged over a few samples (posterior
    mean). OAMP is limited by its linear step: at P N_RF = N (square, ill-conditioned A) its
    effective noise settles near tau = 0.32 at 10 dB whatever the start, where even this denoiser
    is worse than SIGW; the gridless SIGW estimate is much closer, and what it cannot see (the
    delay structure across subcarriers, the distribution of the path gains) is what the prior adds.

``oamp`` and ``anneal`` start from nothing but (y, A, noise_var); all work for any P (compressive
or not) and any subcarrier count the network accepts.
"""
from __future__ import annotations

import numpy as np

from .ops import ConsistencyOperator, as_batch, whiten

ORT_BUCKETS = (1, 2, 4, 8, 16, 32, 64)


class TorchDenoiser:
    """Wraps an ``XLDenoiser`` module: __call__(x complex [B, N, K], sigma [B]) -> complex."""

    def __init__(self, model, chunk: int = 32, sigma_range=None):
        import torch
        self.model, self.torch, self.chunk = model.eval(), torch, chunk
        self.sigma_range = sigma_range

    def __call__(self, x, sigma):
        t = self.torch
        xr = np.stack([x.real, x.imag], 1).astype(np.float32)
        s = np.asarray(sigma, np.float32).reshape(-1)
        outs = []
        with t.no_grad():
            for i in range(0, xr.shape[0], self.chunk):
                outs.append(self.model(t.from_numpy(xr[i:i + self.chunk]),
                                       t.from_numpy(s[i:i + self.chunk])).numpy())
        o = np.concatenate(outs)
        return (o[:, 0] + 1j * o[:, 1]).astype(np.complex64)


class OnnxDenoiser:
    """onnxruntime session of an exported prior (see ``export.py``); batches are padded to the
    next bucket size so the CPU arena sees few shapes."""

    def __init__(self, path_or_session, intra_op: int = 1, providers=None):
        import onnxruntime as ort
        if isinstance(path_or_session, ort.InferenceSession):
            self.sess = path_or_session
        else:
            from pathlib import Path

            from ..runtime import checksums
            if not Path(path_or_session).is_file():
                raise FileNotFoundError(f"XL-MIMO prior {path_or_session} does not exist; pass the path of an "
                                        "exported prior (e.g. onnx_models/gdm_xlmimo_prior.onnx)")
            checksums.verify(path_or_session)   # against SHA256SUMS beside it, when it lists the file
            so = ort.SessionOptions()
            so.intra_op_num_threads = intra_op
            so.inter_op_num_threads = 1
            so.add_session_config_entry("session.intra_op.allow_spinning", "0")
            so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
            self.sess = ort.InferenceSession(str(path_or_session), so,
                                             providers=providers or ["CPUExecutionProvider"])
        self.meta = self.sess.get_modelmeta().custom_metadata_map
        import json
        self.sigma_range = json.loads(self.meta["sigma_range"]) if "sigma_range" in self.meta else None

    def __call__(self, x, sigma):
        xr = np.stack([x.real, x.imag], 1).astype(np.float32)
        s = np.asarray(sigma, np.float32).reshape(-1)
        B = xr.shape[0]
        outs = []
        i = 0
        while i < B:
            n = min(B - i, ORT_BUCKETS[-1])
            nb = next(b for b in ORT_BUCKETS if b >= n)
            xb = np.zeros((nb, *xr.shape[1:]), np.float32)
            sb = np.ones(nb, np.float32)
            xb[:n], sb[:n] = xr[i:i + n], s[i:i + n]
            outs.append(self.sess.run(["h0"], {"x": xb, "sigma": sb})[0][:n])
            i += n
        o = np.concatenate(outs)
        return (o[:, 0] + 1j * o[:, 1]).astype(np.complex64)


def _nv(noise_var, B):
    return np.broadcast_to(np.asarray(noise_var, float), (B,)).astype(float).copy()


def oamp(y, op: ConsistencyOperator, noise_var, denoiser, n_iter: int = 24, probe: float = 0.02,
         damping: float = 0.5, tol: float = 0.01, v_min: float = 1e-5, seed: int = 0,
         return_trace: bool = False, x0=None):
    """OAMP with a learned denoiser. y [B, Q, K] whitened observations, ``op`` the factored A.
    Stops when every effective noise level tau^2 of the batch changed by less than ``tol``
    (relative) in one iteration, or after ``n_iter``. ``damping`` < 1 mixes the new estimate with
    the previous one (undamped OAMP diverges for part of the users at P N_RF = N / 4); a user
    whose tau^2 grows gets its damping halved, and each user's estimate is the denoiser output
    at its smallest tau^2 (OAMP's own error measure; no ground truth involved).
    Returns H_hat complex [B, N, K] (and per-iteration tau^2 if ``return_trace``)."""
    B, Q, K = y.shape
    N = op.A.shape[-1]
    s2 = op.s ** 2                                                   # [B', r]
    s2 = np.broadcast_to(s2, (B, s2.shape[-1]))
    nv = _nv(noise_var, B)
    rng = np.random.default_rng(seed)
    x = np.zeros((B, N, K), complex) if x0 is None else np.asarray(x0, complex)
    v = np.ones(B)                                                    # prior E|h|^2 = 1
    if x0 is not None:
        resid = np.sum(np.abs(y - op.apply(x)) ** 2, axis=(1, 2))
        v = np.clip((resid - Q * K * nv) / (K * np.sum(s2, 1)), v_min, 1.0)
    trace, eta = [], None
    dmp = np.full(B, float(damping))
    best, best_tau2 = np.zeros((B, N, K), np.complex64), np.full(B, np.inf)
    for it in range(n_iter):
        vv, nn = v[:, None], nv[:, None]
        g = vv * s2 / (vv * s2 + nn)                                   # [B, r]
        c = N / np.maximum(g.sum(1), 1e-12)                           # [B]
        # r = x + c V diag(v s / (v s^2 + nv)) U^H (y - A x)
        res = y - op.apply(x)
        gain = c[:, None] * vv * op.s / (vv * s2 + nn)
        z = np.einsum("bqr,bqk->brk", op.U.conj(), res) * gain[..., None]
        r = x + np.einsum("brn,brk->bnk", op.Vh.conj(), z)
        rank = s2.shape[1]
        trBB = (N - rank) + np.sum((1 - c[:, None] * g) ** 2, 1)
        trWW = c ** 2 * np.sum(vv ** 2 * s2 / (vv * s2 + nn) ** 2, 1)
        tau2 = np.maximum((trBB * v + trWW * nv) / N, 1e-8)
        tau = np.sqrt(tau2)
        converged = bool(trace) and np.all(np.abs(tau2 - trace[-1]) <= tol * trace[-1])
        if trace:
            dmp[tau2 > trace[-1] * (1 + tol)] *= 0.5
        trace.append(tau2)
        if converged or it == n_iter - 1:
            eta = denoiser(r, tau)
            better = tau2 <= best_tau2
            best[better] = eta[better]
            break
        eps = rng.standard_normal((B, N, K)) + 1j * rng.standard_normal((B, N, K))
        dlt = probe * tau[:, None, None]
        both = denoiser(np.concatenate([r, r + dlt * eps]), np.concatenate([tau, tau]))
        eta, eta_p = both[:B], both[B:]
        better = tau2 < best_tau2
        best[better], best_tau2[better] = eta[better], tau2[better]
        # average real-coordinate divergence: eps . (D(r + d eps) - D(r)) / (d * 2NK)
        alpha = np.real(np.sum(eps.conj() * (eta_p - eta), axis=(1, 2))) / (probe * tau * 2 * N * K)
        alpha = np.clip(alpha, 0.0, 0.99)
        x_df = (eta - alpha[:, None, None] * r) / (1 - alpha[:, None, None])
        x = dmp[:, None, None] * x_df + (1 - dmp[:, None, None]) * x
        # error variance of x from the residual (unbiased for x's error independent of A)
        resid = np.sum(np.abs(y - op.apply(x)) ** 2, axis=(1, 2))
        v = np.maximum((resid - Q * K * nv) / (K * np.sum(s2, 1)), v_min)
    out = best.astype(np.complex64)
    return (out, np.array(trace)) if return_trace else out


def anneal(y, op: ConsistencyOperator, noise_var, denoiser, n_steps: int = 10,
           sigma_max: float = 2.0, sigma_min: float = 0.02, zeta: float = 0.0, seed: int = 0, x0=None):
    """Plug-and-play reverse diffusion with a closed-form data-consistency step per step."""
    B, Q, K = y.shape
    N = op.A.shape[-1]
    nv = _nv(noise_var, B)
    rng = np.random.default_rng(seed)
    smax = np.broadcast_to(np.asarray(sigma_max, float), (B,))
    smin = np.broadcast_to(np.asarray(sigma_min, float), (B,))
    sig = np.geomspace(smax, smin, n_steps)                           # [n_steps, B]
    h = op.solve(np.zeros((B, N, K), complex), y, nv, 1.0) if x0 is None else np.asarray(x0, complex)
    noise = (rng.standard_normal((B, N, K)) + 1j * rng.standard_normal((B, N, K))) / np.sqrt(2)
    x = h + sig[0][:, None, None] * noise
    for i, s in enumerate(sig):
        d = denoiser(x, s)
        h = op.solve(d, y, nv, s ** 2)
        if i + 1 < n_steps:
            eps_hat = (x - d) / s[:, None, None]
            eps_hat /= np.sqrt(np.mean(np.abs(eps_hat) ** 2, axis=(1, 2), keepdims=True)) + 1e-12
            fresh = (rng.standard_normal((B, N, K)) + 1j * rng.standard_normal((B, N, K))) / np.sqrt(2)
            x = h + sig[i + 1][:, None, None] * (np.sqrt(1 - zeta) * eps_hat + np.sqrt(zeta) * fresh)
    return h.astype(np.complex64)


def _tile_op(op: ConsistencyOperator, n: int) -> ConsistencyOperator:
    """The operator for a batch repeated n times (a shared operator stays shared)."""
    if op.A.shape[0] == 1 or n == 1:
        return op
    t = ConsistencyOperator.__new__(ConsistencyOperator)
    t.A, t.U, t.s, t.Vh = (np.concatenate([a] * n) for a in (op.A, op.U, op.s, op.Vh))
    return t


def refine(y, op: ConsistencyOperator, noise_var, denoiser, x0, v0, n_steps: int = 4, n_samples: int = 4,
           scale: float = 1.6, ratio: float = 0.3, zeta: float = 1.0, sigma_floor: float = 0.02,
           seed: int = 0):
    """Posterior mean around an initial estimate x0 [B, N, K] whose per-entry error variance is
    about v0 [B]: ``n_samples`` annealed posterior samples (``anneal`` with fresh noise, zeta = 1)
    from sigma = scale sqrt(v0) down to ratio times that, averaged. v0 from ``gain_noise_var``
    ignores missed paths and parameter errors, hence scale > 1 (1.2-2.2 all gain at 10 dB;
    1.6 was best on development seeds). Users whose start level is below ``sigma_floor`` (the
    smallest noise level the prior was trained on) keep x0: the network has not learnt to improve
    estimates that good."""
    B = y.shape[0]
    nv = _nv(noise_var, B)
    smax = scale * np.sqrt(np.broadcast_to(np.asarray(v0, float), (B,)))
    run = smax >= sigma_floor
    out = np.asarray(x0, np.complex64).copy()
    if not run.any():
        return out
    idx = np.flatnonzero(run)
    sub = op if op.A.shape[0] == 1 else _sub_op(op, idx)
    n = n_samples
    h = anneal(np.concatenate([y[idx]] * n), _tile_op(sub, n), np.concatenate([nv[idx]] * n), denoiser,
               n_steps=n_steps, sigma_max=np.concatenate([smax[idx]] * n),
               sigma_min=np.concatenate([smax[idx] * ratio] * n), zeta=zeta, seed=seed,
               x0=np.concatenate([np.asarray(x0)[idx]] * n))
    out[idx] = h.reshape(n, idx.size, *h.shape[1:]).mean(0)
    return out


def _sub_op(op: ConsistencyOperator, idx) -> ConsistencyOperator:
    t = ConsistencyOperator.__new__(ConsistencyOperator)
    t.A, t.U, t.s, t.Vh = (a[idx] for a in (op.A, op.U, op.s, op.Vh))
    return t


class Symmetrized:
    """D averaged over symmetries of the channel law: the mirror image R (reversal of the antenna
    axis; the array is symmetric about its centre and directions are drawn symmetrically about
    broadside) and, with ``phases`` = 2 or 4, global phase rotations by j^m (path gains have
    uniform phase): mean over g of g^-1 D(g x). Each is a denoiser of the same prior, so the
    average's error is never larger (Jensen); it costs 2 * phases network calls per call."""

    def __init__(self, denoiser, phases: int = 1):
        if phases not in (1, 2, 4):
            raise ValueError(f"phases must be 1, 2 or 4, got {phases}")
        self.denoiser, self.phases = denoiser, phases

    def __call__(self, x, sigma):
        B = x.shape[0]
        rot = [1j ** m for m in range(self.phases)]
        xs = [g * x for g in rot] + [g * x[:, ::-1] for g in rot]
        out = self.denoiser(np.concatenate(xs), np.concatenate([sigma] * len(xs)))
        n = len(rot)
        acc = sum(out[i * B:(i + 1) * B] / rot[i] for i in range(n))
        acc = acc + sum(out[(n + i) * B:(n + i + 1) * B, ::-1] / rot[i] for i in range(n))
        return (acc / (2 * n)).astype(np.complex64)


class DiffusionEstimator:
    """Channel estimator from combined pilot observations with the diffusion prior.

    est = DiffusionEstimator("onnx_models/gdm_xlmimo_prior.onnx")   # or a TorchDenoiser/callable
    H_hat = est.estimate(Y, W, noise_var)   # Y [B, P, N_RF, K], W [B or 1, P, N_RF, N] -> [B, N, K]

    ``method``: refine (default; needs the array configuration ``cfg`` for SIGW, read from the
    ONNX metadata when not given) | oamp | anneal. ``estimate(..., init=(H0, v0))`` hands refine
    a SIGW result computed elsewhere on the same observations (the evaluation shares it).
    """

    def __init__(self, prior, method: str = "refine", n_iter: int | None = None, chunk: int = 16,
                 symmetrize: int = 0, cfg=None, **options):
        if isinstance(prior, str) or hasattr(prior, "__fspath__"):
            prior = OnnxDenoiser(prior)
        if method not in ("refine", "oamp", "anneal"):
            raise ValueError(f"unknown sampler {method!r}: refine | oamp | anneal")
        if cfg is None and method == "refine":
            from ..sim.nearfield import NearFieldConfig
            meta = getattr(prior, "meta", {})
            cfg = NearFieldConfig.from_json(meta["channel_config"]) if "channel_config" in meta else NearFieldConfig()
        rng_ = getattr(prior, "sigma_range", None)
        if method == "refine" and rng_ and "sigma_floor" not in options:
            options["sigma_floor"] = float(rng_[0])
        self.cfg = cfg
        self.denoiser = Symmetrized(prior, symmetrize) if symmetrize else prior
        self.method = method
        self.n_iter = n_iter
        self.chunk = chunk
        self.options = options

    def estimate(self, Y, W, noise_var, init=None) -> np.ndarray:
        Y, W, squeeze = as_batch(Y, W)
        B = Y.shape[0]
        nv = _nv(noise_var, B)
        if self.method == "refine" and init is None:
            from .baselines import sigw
            init = sigw(Y, W, nv, self.cfg, return_var=True)
        if init is not None:
            H0, v0 = (np.asarray(a) for a in init)
            H0, v0 = H0.reshape(B, W.shape[-1], Y.shape[-1]), v0.reshape(B)
        out = np.empty((B, W.shape[-1], Y.shape[-1]), np.complex64)
        for i in range(0, B, self.chunk):
            sl = slice(i, i + self.chunk)
            Yc = Y[sl]
            Wc = W[sl] if W.shape[0] > 1 else np.broadcast_to(W, (Yc.shape[0], *W.shape[1:]))
            y, A = whiten(Yc, Wc)
            op = ConsistencyOperator(A)
            if self.method == "refine":
                kw = dict(self.options)
                if self.n_iter:
                    kw["n_steps"] = self.n_iter
                out[sl] = refine(y, op, nv[sl], self.denoiser, H0[sl], v0[sl], **kw)
            elif self.method == "oamp":
                kw = dict(self.options)
                if self.n_iter:
                    kw["n_iter"] = self.n_iter
                out[sl] = oamp(y, op, nv[sl], self.denoiser, **kw)
            elif self.method == "anneal":
                kw = dict(self.options)
                if self.n_iter:
                    kw["n_steps"] = self.n_iter
                out[sl] = anneal(y, op, nv[sl], self.denoiser, **kw)
        return out[0] if squeeze else out

    __call__ = estimate
