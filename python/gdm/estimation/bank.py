"""Gaussian-mixture MMSE over a bank of channel hypotheses ('bank').

The training mix is a mixture of channel classes (profile, delay spread, Doppler). Given its class
a link's grid is (nearly) Gaussian with covariance R = R_t(doppler) (x) R_f(profile, delay spread):
every diffuse tap shares the Jakes time correlation, so time and frequency separate. With the
pilots on a separable pattern (rows x carriers) the pilot covariance separates as well, its
eigen-decomposition is the Kronecker product of two small ones, and one hypothesis costs a few
small matrix products per frame instead of a 1008 x 1008 solve.

Per frame: log-likelihood of the pilot LS under every hypothesis -> posterior weights -> the
posterior mean and per-RE variance of the mixture (restricted to the most likely hypotheses
that hold all but 0.1 % of the posterior mass, at most ``top``, counted per link). The posterior
runs as a compiled kernel (bank_kernels; ~15x faster) with the numpy form below as its reference
(``GDM_NO_NUMBA=1``, or a pattern whose time hypotheses do not share one basis). This is a cheap
approximation of E[H | pilots] for the whole mix; the diffusion
estimator uses its mean and spread as conditioning and refines them.

For the most likely frequency hypothesis it also compares the best Doppler of the bank with
faster ones (up to 3x the bank's maximum): the log-likelihood ratio ``doppler_lr`` is large when
the two pilot symbols differ more than any trained Doppler explains (the diffusion estimator's
guard uses it).

It also yields a goodness-of-fit statistic: the Mahalanobis energy of the pilots under the most
likely hypothesis, which is ~Gamma(P, 1) (mean P, std sqrt(P)) when the channel belongs to the
bank. A large excess flags a channel the bank (and the model trained on the same mix) does not
describe: the diffusion estimator's guard uses it.

Site hypotheses (``gnuradio.gdm.adaptation``): a BankGrid may carry extra frequency hypotheses
(delay-power profiles fitted to a site's pilots) and extra time hypotheses (a Jakes spectrum of
maximum Doppler fd shifted by nu: R_t = J0(2 pi fd dt) exp(j 2 pi nu dt)), crossed with the grid
like every other hypothesis, and prior log-weights over all hypotheses (uniform without them).
"""
from __future__ import annotations

import dataclasses
import os

import numpy as np
from scipy.special import j0

from ..frame import FrameSpec
from ..sim.grid import ChannelMix, carrier_freqs, symbol_times
from ..sim.profiles import make_profile
from .bank_kernels import Truncated, mixture
from .base import Estimator, register


@dataclasses.dataclass(frozen=True)
class BankGrid:
    """Hypotheses: every profile x ``n_ds`` log-spaced delay spreads x ``n_fd`` Dopplers, plus
    optional site hypotheses: ``site_f`` delay-power profiles ((delays_s, powers) pairs, powers
    not normalised: they carry the site's channel power), ``site_t`` time correlations
    ((doppler_hz, shift_hz) pairs), and ``log_prior``: log-weights of all n_t x n_f hypotheses,
    row-major over (time, frequency), None = uniform."""
    profiles: tuple[str, ...] = ("TDL-A", "TDL-B", "TDL-C")
    delay_spread: tuple[float, float] = (10e-9, 1000e-9)
    doppler: tuple[float, float] = (0.0, 400.0)
    n_ds: int = 16
    n_fd: int = 9
    site_f: tuple = ()
    site_t: tuple = ()
    log_prior: tuple | None = None

    def __post_init__(self):
        if self.log_prior is not None and len(self.log_prior) != self.n_t * self.n_f:
            raise ValueError(f"BankGrid: log_prior has {len(self.log_prior)} entries, the bank has "
                             f"{self.n_t} x {self.n_f} = {self.n_t * self.n_f} hypotheses")

    @classmethod
    def for_mix(cls, mix: ChannelMix, n_ds: int = 16, n_fd: int = 9) -> "BankGrid":
        return cls(tuple(mix.profiles), tuple(mix.delay_spread), tuple(mix.doppler), n_ds, n_fd)

    def delay_spreads(self) -> np.ndarray:
        lo, hi = self.delay_spread
        return np.exp(np.linspace(np.log(lo), np.log(hi), self.n_ds)) if hi > lo else np.array([lo])

    def dopplers(self) -> np.ndarray:
        lo, hi = self.doppler
        return np.linspace(lo, hi, self.n_fd) if hi > lo else np.array([lo])

    @property
    def n_f(self) -> int:
        return len(self.profiles) * self.delay_spreads().size + len(self.site_f)

    @property
    def n_t(self) -> int:
        return self.dopplers().size + len(self.site_t)

    def base(self) -> "BankGrid":
        """The grid without site hypotheses and prior weights."""
        return dataclasses.replace(self, site_f=(), site_t=(), log_prior=None)

    def with_site(self, site_f=(), site_t=(), log_prior=None) -> "BankGrid":
        f = tuple((tuple(map(float, d)), tuple(map(float, p))) for d, p in site_f)
        t = tuple((float(fd), float(nu)) for fd, nu in site_t)
        lp = None if log_prior is None else tuple(float(v) for v in np.ravel(log_prior))
        return dataclasses.replace(self, site_f=f, site_t=t, log_prior=lp)

    def to_dict(self) -> dict:
        d = {"profiles": list(self.profiles), "delay_spread": list(self.delay_spread), "n_ds": self.n_ds,
             "doppler": list(self.doppler), "n_fd": self.n_fd}
        if self.site_f or self.site_t or self.log_prior is not None:
            d["site"] = {"delay_profiles": [{"delays_s": list(dl), "powers": list(pw)} for dl, pw in self.site_f],
                         "dopplers": [{"doppler_hz": fd, "shift_hz": nu} for fd, nu in self.site_t],
                         "log_prior": None if self.log_prior is None else list(self.log_prior)}
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "BankGrid":
        g = cls(tuple(d["profiles"]), tuple(d["delay_spread"]), tuple(d["doppler"]), int(d["n_ds"]), int(d["n_fd"]))
        site = d.get("site")
        if not site:
            return g
        return g.with_site([(p["delays_s"], p["powers"]) for p in site.get("delay_profiles", [])],
                           [(t["doppler_hz"], t.get("shift_hz", 0.0)) for t in site.get("dopplers", [])],
                           site.get("log_prior"))


def site_time_correlation(doppler: float, shift: float, dt: np.ndarray) -> np.ndarray:
    """R_t of a site time hypothesis: Jakes of maximum Doppler ``doppler`` shifted by ``shift`` Hz."""
    R = j0(2 * np.pi * doppler * dt).astype(complex)
    return R * np.exp(2j * np.pi * shift * dt) if shift else R


def _eig_psd(R: np.ndarray):
    lam, U = np.linalg.eigh(R)
    return np.clip(lam, 1e-9, None), U


class _Hypotheses:
    """Grid covariances of every hypothesis of a BankGrid (independent of the pilot pattern)."""

    def __init__(self, spec: FrameSpec, grid: BankGrid):
        t, f = symbol_times(spec), carrier_freqs(spec)
        dt, df = t[:, None] - t[None, :], f[:, None] - f[None, :]
        K = f.size
        # R_f depends on the carrier distance only: evaluate each distinct distance once
        dfu, inv = np.unique(df, return_inverse=True)
        inv = inv.reshape(K, K)
        # frequency hypotheses: (profile, delay spread), then the site's delay profiles
        Rf = []
        self.f_labels = []
        for p in grid.profiles:
            for ds in grid.delay_spreads():
                prof = make_profile(p, ds)
                Rf.append((np.exp(-2j * np.pi * dfu[:, None] * prof.delays) @ prof.powers)[inv])
                self.f_labels.append((p, float(ds)))
        for delays, powers in grid.site_f:
            d, p = np.asarray(delays), np.asarray(powers)
            Rf.append((np.exp(-2j * np.pi * dfu[:, None] * d) @ p)[inv])
            mean = np.sum(p * d) / max(p.sum(), 1e-30)
            rms = float(np.sqrt(np.sum(p * (d - mean) ** 2) / max(p.sum(), 1e-30)))
            self.f_labels.append(("site", max(rms, 1e-9)))  # a label (log taken): one path has rms 0
        self.Rf = np.stack(Rf)  # [F, K, K]
        Rt = [j0(2 * np.pi * fd * dt).astype(complex) for fd in grid.dopplers()]
        Rt += [site_time_correlation(fd, nu, dt) for fd, nu in grid.site_t]
        self.Rt = np.stack(Rt)  # [T, S, S]
        self.t_labels = [float(fd) for fd in grid.dopplers()] + [float(fd) for fd, _ in grid.site_t]
        # Dopplers beyond the grid, only to test whether the pilots look faster than anything
        # in the bank (a likelihood ratio, see MixturePosterior): up to 3x the bank's maximum.
        fmax = max(grid.doppler[1], *(fd + abs(nu) for fd, nu in grid.site_t), 1.0)
        self.Rt_ext = np.stack([j0(2 * np.pi * fd * dt) for fd in np.linspace(fmax * 1.25, fmax * 3, 8)])
        self.n_jakes = grid.dopplers().size


class _Pattern:
    """Precomputed factors of every hypothesis for one separable pilot pattern."""

    def __init__(self, spec: FrameSpec, mask: np.ndarray, grid: BankGrid, hyp: _Hypotheses | None = None):
        self.rows = np.flatnonzero(mask.any(1))
        self.cols = np.flatnonzero(mask.any(0))
        if mask[np.ix_(self.rows, self.cols)].sum() != self.rows.size * self.cols.size:
            raise ValueError("bank estimator needs a separable pilot pattern (pilot rows x carriers)")
        hyp = hyp or _Hypotheses(spec, grid)
        Rf, Rt, Rt_ext = hyp.Rf, hyp.Rt, hyp.Rt_ext
        self.f_labels, self.t_labels = hyp.f_labels, hyp.t_labels
        c, r = self.cols, self.rows
        lf, Uf = zip(*(_eig_psd(R[np.ix_(c, c)]) for R in Rf))
        # Jakes matrices are real: one eigenbasis may serve every Doppler (see MixturePosterior);
        # a shifted (complex) site hypothesis may not, then each time hypothesis has its own
        U0 = _eig_psd(Rt[hyp.n_jakes - 1][np.ix_(r, r)].real)[1]
        self.U0 = U0.astype(complex)
        proj = [U0.T @ R[np.ix_(r, r)] @ U0 for R in Rt]
        self.shared_t = all(np.abs(p - np.diag(np.diag(p))).max() < 1e-9 for p in proj)
        self.lt_ext = None
        pe = [U0.T @ R[np.ix_(r, r)] @ U0 for R in Rt_ext]
        if all(np.abs(p - np.diag(np.diag(p))).max() < 1e-9 for p in pe):
            self.lt_ext = np.stack([np.clip(np.diag(p).real, 1e-9, None) for p in pe])  # [Te, nr]
        if self.shared_t:
            lt = [np.clip(np.diag(p).real, 1e-9, None) for p in proj]
            Ut = [U0.astype(complex)] * len(Rt)
        else:
            lt, Ut = zip(*(_eig_psd(R[np.ix_(r, r)]) for R in Rt))
        self.lf, self.Uf = np.stack(lf), np.stack(Uf)  # [F, nc], [F, nc, nc]
        self.lt, self.Ut = np.stack(lt), np.stack(Ut)  # [T, nr], [T, nr, nr]
        self.Af = Rf[:, :, c] @ self.Uf  # [F, K, nc]
        self.At = Rt[:, :, r] @ self.Ut  # [T, S, nr]
        self.dRf = np.real(np.einsum("fkk->fk", Rf))  # diag, [F, K]
        self.dRt = np.real(np.einsum("tss->ts", Rt))  # [T, S]
        self.UfH = np.conj(self.Uf)  # for L @ conj(Uf)
        self.lam = (self.lt[:, None, :, None] * self.lf[None, :, None, :]).astype(np.float32)  # [T, F, nr, nc]
        self.P = r.size * c.size
        self.S, self.K = spec.n_sym, spec.n_occ
        # float32 copies for the per-frame products
        self.UfH32 = self.UfH.astype(np.complex64)
        self.UtH32 = np.conj(np.swapaxes(self.Ut, 1, 2)).astype(np.complex64)  # U_t^H
        self.At32 = self.At.astype(np.complex64)
        self.AfT32 = np.swapaxes(self.Af, 1, 2).copy().astype(np.complex64)
        self.At2 = (np.abs(self.At) ** 2).astype(np.float32)
        self.Af2T = np.swapaxes(np.abs(self.Af) ** 2, 1, 2).copy().astype(np.float32)
        self.dR32 = (self.dRt[:, None, :, None] * self.dRf[None, :, None, :]).astype(np.float32)
        self.log_ds = np.log([ds for _, ds in self.f_labels])
        self.fd = np.asarray(self.t_labels)
        # sum_ab log(lam_ab + nv) per hypothesis, tabulated over log(nv): a per-frame log of
        # every eigenvalue would cost more than the rest of the posterior together. Columns are
        # filled on first use (a receiver meets a narrow range of noise levels).
        self._lnv = np.linspace(np.log(1e-7), np.log(1e4), 1101)
        self._logdet = np.zeros((self._lnv.size, *self.lam.shape[:2]))  # [G, T, F]: a row per level
        self._have = np.zeros(self._lnv.size, bool)
        # the compiled posterior (bank_kernels) needs one time basis for all hypotheses
        self.trunc = Truncated(self.lf, self.Uf, self.Af) if self.shared_t else None
        if self.trunc is not None:
            self.k_lt = np.ascontiguousarray(self.lt, float)
            self.k_lt_ext = np.zeros((0, r.size)) if self.lt_ext is None else np.ascontiguousarray(self.lt_ext, float)
            self.k_At = self.At.astype(np.complex128)
            self.k_At2 = np.abs(self.At) ** 2
            self.k_dRt, self.k_dRf = np.ascontiguousarray(self.dRt, float), np.ascontiguousarray(self.dRf, float)

    def logdet(self, nv: np.ndarray) -> np.ndarray:
        x = np.clip(np.log(nv), self._lnv[0], self._lnv[-1])
        pos = (x - self._lnv[0]) / (self._lnv[1] - self._lnv[0])
        i = np.minimum(pos.astype(int), self._lnv.size - 2)
        need = np.unique(np.concatenate([i, i + 1]))
        need = need[~self._have[need]]
        if need.size:
            lam = self.lam.reshape(*self.lam.shape[:2], -1).astype(float)
            for g in need:
                self._logdet[g] = np.log(lam + np.exp(self._lnv[g])).sum(-1)
            self._have[need] = True
        f = (pos - i)[:, None, None]
        lo = self._logdet[i]  # [N, T, F], contiguous
        return lo + f * (self._logdet[i + 1] - lo)


class MixturePosterior:
    """Posterior mean / variance of a link's grid under the bank, batched over frames.

    ``posterior(ls, noise_var, pattern)``: ls complex [N, nr, nc] pilot LS of unit-power links,
    noise_var [N] -> dict(mean [N, S, K] complex64, var [N, S, K] float32, fit [N] (Mahalanobis
    excess in standard deviations), logw [N, T*F] posterior log-weights, ds_mean, fd_mean)."""

    def __init__(self, spec: FrameSpec, grid: BankGrid | None = None, top: int = 64, tail: float = 1e-3):
        self.spec, self.grid, self.top, self.tail = spec, grid or BankGrid(), top, tail
        self._patterns: dict[bytes, _Pattern] = {}
        self._hyp: _Hypotheses | None = None
        lp = self.grid.log_prior
        self.log_prior = None if lp is None else np.asarray(lp, float) - np.logaddexp.reduce(np.asarray(lp, float))

    def pattern(self, mask: np.ndarray) -> _Pattern:
        key = np.packbits(mask).tobytes()
        if key not in self._patterns:
            if self._hyp is None:
                self._hyp = _Hypotheses(self.spec, self.grid)
            self._patterns[key] = _Pattern(self.spec, mask, self.grid, self._hyp)
        return self._patterns[key]

    def posterior(self, ls: np.ndarray, noise_var: np.ndarray, pat: _Pattern, chunk: int = 64) -> dict:
        out = [self._posterior(ls[i:i + chunk], noise_var[i:i + chunk], pat)
               for i in range(0, ls.shape[0], chunk)]
        return {k: np.concatenate([o[k] for o in out]) for k in out[0]}

    def loglik(self, ls: np.ndarray, noise_var: np.ndarray, pat: _Pattern, chunk: int = 64) -> np.ndarray:
        """Pilot log-likelihood [N, T*F] of every hypothesis (up to a constant per frame),
        hypotheses row-major over (time, frequency): what mixture weights are fitted to."""
        nv = np.broadcast_to(np.asarray(noise_var, float), (ls.shape[0],))
        return np.concatenate([self._loglik(ls[i:i + chunk], nv[i:i + chunk], pat)[0]
                               for i in range(0, ls.shape[0], chunk)])

    def _loglik(self, ls, nv, pat: _Pattern):
        N = ls.shape[0]
        nv = np.asarray(nv, float)
        T, F = pat.lam.shape[:2]
        # Eigen-domain pilots: Z = U_t^H L conj(U_f). When one time basis diagonalises every
        # Doppler hypothesis (always so for two pilot symbols: the 2x2 Jakes matrices share the
        # eigenvectors (1, +-1)/sqrt 2) Z is shared by all T hypotheses: [N, F, nr, nc].
        Z1 = ls.astype(np.complex64)[:, None] @ pat.UfH32[None]  # [N, F, nr, nc]
        if pat.shared_t:
            Zs = pat.UtH32[0] @ Z1  # [N, F, nr, nc]
            Z2 = (Zs.real ** 2 + Zs.imag ** 2).reshape(N, 1, F, -1)
        else:
            Zs = None
            Z = np.matmul(pat.UtH32[None, :, None], Z1[:, None])  # [N, T, F, nr, nc]
            Z2 = (Z.real ** 2 + Z.imag ** 2).reshape(N, T, F, -1)
        lam = pat.lam.reshape(1, T, F, -1)
        D = lam + nv.reshape(N, 1, 1, 1).astype(np.float32)  # [N, T, F, nr*nc]
        quad = np.sum(Z2 / D, -1, dtype=float)
        llf = (-pat.logdet(nv) - quad).reshape(N, -1)
        return llf, quad, D, Z1, (Zs if pat.shared_t else Z)

    def _posterior(self, ls, nv, pat: _Pattern) -> dict:
        if pat.trunc is not None and mixture is not None and not os.environ.get("GDM_NO_NUMBA"):
            return self._posterior_compiled(ls, nv, pat)
        return self._posterior_reference(ls, nv, pat)

    def _posterior_compiled(self, ls, nv, pat: _Pattern) -> dict:
        """The same posterior as ``_posterior_reference`` from the compiled kernel (bank_kernels)."""
        N, nr, nc = ls.shape
        nv = np.ascontiguousarray(nv, float)
        T, F = pat.lam.shape[:2]
        tr = pat.trunc
        # double precision: a link's energy minus that of its kept modes leaves the dropped
        # modes' energy (~noise), which single precision would lose at high SNR
        Lt = np.conj(pat.U0.T) @ ls.astype(np.complex128)  # [N, nr, nc] in the time eigenbasis
        etot = (Lt.real ** 2 + Lt.imag ** 2).sum(-1)
        Zs = (Lt.reshape(N * nr, nc) @ tr.UfH).reshape(N, nr, -1)  # every hypothesis in one product
        prior = np.zeros(T * F) if self.log_prior is None else self.log_prior
        mean = np.empty((N, pat.S, pat.K), np.complex64)
        var = np.empty((N, pat.S, pat.K), np.float32)
        llf, quad, w = (np.empty((N, T * F)) for _ in range(3))
        dlr = np.empty(N)
        mixture(Zs, etot, nv, pat.logdet(nv), prior, pat.k_lt, tr.lf, tr.lam_drop, tr.n_drop, tr.off,
                pat.k_lt_ext, tr.AfT_re, tr.AfT_im, tr.Af2T, pat.k_At, pat.k_At2, pat.k_dRt, pat.k_dRf, self.tail,
                int(self.top), mean, var, llf, quad, w, dlr)
        best = np.argmax(llf, 1)
        fit = (quad[np.arange(N), best] - pat.P) / np.sqrt(pat.P)
        wtf = w.reshape(N, T, F)
        return dict(mean=mean, var=var, fit=fit.astype(np.float32), doppler_lr=dlr.astype(np.float32),
                    ds_mean=np.exp(wtf.sum(1) @ pat.log_ds).astype(np.float32),
                    fd_mean=(wtf.sum(2) @ pat.fd).astype(np.float32))

    def _posterior_reference(self, ls, nv, pat: _Pattern) -> dict:
        N = ls.shape[0]
        nv = np.asarray(nv, float)
        T, F = pat.lam.shape[:2]
        llf, quad, D, Z1, Zsel = self._loglik(ls, nv, pat)
        Zs, Z = (Zsel, None) if pat.shared_t else (None, Zsel)
        lp = llf if self.log_prior is None else llf + self.log_prior[None]
        w = np.exp(lp - lp.max(1, keepdims=True))
        w /= w.sum(1, keepdims=True)
        # goodness of fit of the MAP hypothesis: (quad - P) / sqrt(P)
        best = np.argmax(llf, 1)
        fit = (quad.reshape(N, -1)[np.arange(N), best] - pat.P) / np.sqrt(pat.P)
        # the most likely hypotheses, as many as hold all but ``tail`` of the posterior mass
        # (few at high SNR, many at low SNR), at most ``top``
        order = np.argsort(-w, 1)
        ws = np.take_along_axis(w, order, 1)
        need = np.clip(np.sum(np.cumsum(ws, 1) < 1 - self.tail, 1) + 1, 1, min(self.top, T * F))
        top = int(need.max())
        idx = order[:, :top]
        wt = ws[:, :top] * (np.arange(top)[None] < need[:, None])  # each link its own count
        wt = wt / wt.sum(1, keepdims=True)
        n = np.arange(N)
        mean = np.zeros((N, pat.S, pat.K), np.complex64)
        second = np.zeros((N, pat.S, pat.K), np.float32)
        for m in range(top):
            ti, fi = idx[:, m] // F, idx[:, m] % F
            G = 1.0 / D[n, ti, fi].reshape(N, *pat.lam.shape[2:])  # [N, nr, nc]
            Zk = Zs[n, fi] if Zs is not None else Z[n, ti, fi]
            Hk = pat.At32[ti] @ ((Zk * G) @ pat.AfT32[fi])  # [N, S, K]; small product first
            vk = pat.dR32[ti, fi] - pat.At2[ti] @ (G @ pat.Af2T[fi])
            wm = wt[:, m, None, None].astype(np.float32)
            mean += wm * Hk
            second += wm * (np.clip(vk, 0, None) + Hk.real ** 2 + Hk.imag ** 2)
        var = np.clip(second - (mean.real ** 2 + mean.imag ** 2), 1e-12, None)
        wtf = w.reshape(N, T, F)
        dlr = _doppler_lr(llf.reshape(N, T, F), Zs, Z1, nv, pat)
        return dict(mean=mean, var=var, fit=fit.astype(np.float32),
                    doppler_lr=dlr,
                    ds_mean=np.exp(wtf.sum(1) @ pat.log_ds).astype(np.float32),
                    fd_mean=(wtf.sum(2) @ pat.fd).astype(np.float32))


def _doppler_lr(ll, Zs, Z1, nv, pat):
    """Log-likelihood ratio [N]: best Doppler beyond the bank vs best inside it, both under the
    frame's most likely frequency hypothesis."""
    N, T, F = ll.shape
    if pat.lt_ext is None:
        return np.zeros(N, np.float32)
    fbest = np.argmax(ll.max(1), 1)  # MAP frequency hypothesis per frame
    n = np.arange(N)
    lam = pat.lt_ext[None, :, :, None] * pat.lf[fbest][:, None, None, :] + nv[:, None, None, None]  # [N, Te, nr, nc]
    # projections on the Jakes basis (the bank's own when every time hypothesis shares it)
    z = Zs[n, fbest] if Zs is not None else np.conj(pat.U0.T).astype(np.complex64) @ Z1[n, fbest]  # [N, nr, nc]
    ll_ext = -np.log(lam).sum((-1, -2)) - ((np.abs(z) ** 2)[:, None] / lam).sum((-1, -2))
    return (ll_ext.max(1) - ll[n, :, fbest].max(1)).astype(np.float32)


def pilot_grid_ls(Y: np.ndarray, spec: FrameSpec, tx: int, pat: _Pattern) -> np.ndarray:
    """Pilot LS of stream ``tx`` arranged [..., n_pilot_rows, n_pilot_carriers]."""
    r, c = pat.rows, pat.cols
    return Y[..., r[:, None], c[None, :]] / spec.pilot_values(tx)[r[:, None], c[None, :]]


@register("bank")
class BankMMSE(Estimator):
    """Posterior mean under the Gaussian-mixture bank of the training mix (a model-based
    reference for the diffusion estimator, which is conditioned on it)."""
    name = "bank"
    needs_noise_var = True

    def __init__(self, spec: FrameSpec, n_rx: int = 1, grid: BankGrid | None = None, top: int = 64):
        super().__init__(spec, n_rx)
        self.post = MixturePosterior(spec, grid, top)
        self.pats = [self.post.pattern(spec.pilot_mask(tx)) for tx in range(self.n_tx)]

    def _estimate_tx(self, Y, noise_var, tx):
        a = self.spec.tx_amplitude
        pat = self.pats[tx]
        B, R = Y.shape[:2]
        ls = pilot_grid_ls(Y, self.spec, tx, pat).reshape(B * R, pat.rows.size, pat.cols.size) / a
        nv = np.repeat(np.asarray(noise_var, float), R) / a ** 2
        out = self.post.posterior(ls, nv, pat)
        return (out["mean"] * a).reshape(B, R, self.spec.n_sym, self.spec.n_occ)
