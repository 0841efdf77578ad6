"""Compiled mixture posterior of the bank (numba). ``MixturePosterior._posterior_reference`` in
bank.py is the reference; this kernel computes the same posterior per link with two changes that
make it ~15x cheaper and leave the numbers where they were (tests/estimation/test_bank_kernels.py):

- frequency eigenmodes below ``KEEP`` (the covariances are clipped at 1e-9; a TDL profile of up to
  1 us on 72 carriers has 3-15 modes above it) are not transformed one by one: their pilot
  energy is the link's energy minus that of the kept modes (the eigenbases are unitary), and
  their eigenvalue is their mean, so the likelihood keeps their term and the posterior mean and
  variance, to which they add (lambda / nv)-small amounts, drop it;
- the mixture's sums are grouped by time hypothesis: a component adds its [pilot rows x carriers]
  product to its time hypothesis's accumulators, and the interpolation over the 14 symbols runs
  once per time hypothesis at the end instead of once per component;
- the posterior's hypotheses are sorted only among those that can be selected (weight >= tail / count,
  and at least the top-th largest, as at most ``top`` are);
- the likelihood's sums run with the time hypotheses innermost (vector operations across them)
  and the component products take two modes per pass (the float32 outputs agree with the
  one-mode form within one ulp).

Inner loops are real arithmetic over contiguous carriers, without reductions, so LLVM
vectorises them (numba's fastmath made this kernel 3x slower here, so it is off).

The kernel releases the GIL, so the receiver's other thread runs meanwhile."""
from __future__ import annotations

import math

import numpy as np

try:
    from numba import njit
except ImportError:  # pragma: no cover - exercised where numba is absent
    njit = None

KEEP = 1e-8


def _mixture(Zs, etot, nv, logdet, prior, lt, lf_k, lam_drop, n_drop, off, lt_ext,
             AfT_re, AfT_im, Af2T, At, At2, dRt, dRf, tail, top,
             mean, var, llf, quad, w, dlr):
    """Per link n: Zs [N, nr, R] kept-mode pilots (time basis U0, frequency bases of every
    hypothesis concatenated; hypothesis f owns columns off[f]:off[f+1]), etot [N, nr] pilot
    energy per time mode -> mean/var [N, S, K], llf/quad/w [N, T*F], dlr [N]."""
    N, nr, Rk = Zs.shape
    T = lt.shape[0]
    F = off.size - 1
    S, K = At.shape[1], AfT_re.shape[1]
    TF = T * F
    Te = lt_ext.shape[0]
    z2 = np.empty((nr, Rk))
    qT = np.empty((F, T))
    ltT = np.ascontiguousarray(lt.T)
    edrop = np.empty((F, nr))
    Rr = np.empty((nr, K))
    Ri = np.empty((nr, K))
    Rr_acc = np.empty((T, nr, K))
    Ri_acc = np.empty((T, nr, K))
    P_acc = np.empty((T, nr, nr, K))  # i <= j: Re R_i conj(R_j); i > j: Im R_j conj(R_i)
    V_acc = np.empty((T, nr, K))
    D_acc = np.empty((T, K))
    used = np.empty(T, np.bool_)
    lp = np.empty(TF)
    sec = np.empty((S, K))
    m_re = np.empty((S, K))
    m_im = np.empty((S, K))
    for n in range(N):
        v = nv[n]
        for i in range(nr):
            for a in range(Rk):
                z = Zs[n, i, a]
                z2[i, a] = z.real * z.real + z.imag * z.imag
        for f in range(F):
            for i in range(nr):
                e = 0.0
                for a in range(off[f], off[f + 1]):
                    e += z2[i, a]
                edrop[f, i] = max(etot[n, i] - e, 0.0)
        # the time hypotheses innermost: contiguous over t (ltT), so the divisions and the sums
        # over a hypothesis's modes run as vector operations across t, without reductions
        for f in range(F):
            qf = qT[f]
            for t in range(T):
                qf[t] = 0.0
            for i in range(nr):
                li, e = ltT[i], edrop[f, i]
                ld = lam_drop[f]
                for t in range(T):
                    qf[t] += e / (li[t] * ld + v)
                for a in range(off[f], off[f + 1]):
                    za, la = z2[i, a], lf_k[a]
                    for t in range(T):
                        qf[t] += za / (li[t] * la + v)
        for t in range(T):
            for f in range(F):
                quad[n, t * F + f] = qT[f, t]
        for t in range(T):
            for f in range(F):
                h = t * F + f
                llf[n, h] = -logdet[n, t, f] - quad[n, h]
                lp[h] = llf[n, h] + prior[h]
        mx = lp.max()
        tot = 0.0
        for h in range(TF):
            w[n, h] = math.exp(lp[h] - mx)
            tot += w[n, h]
        for h in range(TF):
            w[n, h] /= tot
        # sorting only the hypotheses that can be selected: those below tail / TF hold less
        # than ``tail`` together, so the cumulative sum reaches 1 - tail among the others and
        # the selection (and its order) is that of a full sort
        thr = tail / TF
        if TF > top:  # at most ``top`` are selected: sort only down to the top-th largest
            thr = max(thr, np.partition(w[n], TF - top)[TF - top])
        cand = np.flatnonzero(w[n] >= thr)
        order = cand[np.argsort(-w[n][cand])]
        need = 1
        c = 0.0
        for j in range(order.size):
            c += w[n, order[j]]
            if c < 1.0 - tail:
                need += 1
            else:
                break
        need = min(max(need, 1), min(top, order.size))
        wsum = 0.0
        for j in range(need):
            wsum += w[n, order[j]]
        Rr_acc[:] = 0.0
        Ri_acc[:] = 0.0
        P_acc[:] = 0.0
        V_acc[:] = 0.0
        D_acc[:] = 0.0
        used[:] = False
        for j in range(need):
            h = order[j]
            t, f = h // F, h % F
            wm = w[n, h] / wsum
            used[t] = True
            Rr[:] = 0.0
            Ri[:] = 0.0
            # 1-D row views: contiguous, simply indexed inner loops that LLVM vectorises
            for i in range(nr):
                li = lt[t, i]
                rr, ri, va = Rr[i], Ri[i], V_acc[t, i]
                a0, a1 = off[f], off[f + 1]
                for a in range(a0, a1 - 1, 2):  # two modes per pass: half the accumulator traffic
                    g = 1.0 / (li * lf_k[a] + v)
                    zr, zi = Zs[n, i, a].real * g, Zs[n, i, a].imag * g
                    gw = g * wm
                    g2 = 1.0 / (li * lf_k[a + 1] + v)
                    zr2, zi2 = Zs[n, i, a + 1].real * g2, Zs[n, i, a + 1].imag * g2
                    gw2 = g2 * wm
                    ar, ai, a2 = AfT_re[a], AfT_im[a], Af2T[a]
                    br, bi, b2 = AfT_re[a + 1], AfT_im[a + 1], Af2T[a + 1]
                    for k in range(K):
                        rr[k] += (zr * ar[k] - zi * ai[k]) + (zr2 * br[k] - zi2 * bi[k])
                        ri[k] += (zr * ai[k] + zi * ar[k]) + (zr2 * bi[k] + zi2 * br[k])
                        va[k] += gw * a2[k] + gw2 * b2[k]
                if (a1 - a0) % 2:
                    a = a1 - 1
                    g = 1.0 / (li * lf_k[a] + v)
                    zr, zi = Zs[n, i, a].real * g, Zs[n, i, a].imag * g
                    gw = g * wm
                    ar, ai, a2 = AfT_re[a], AfT_im[a], Af2T[a]
                    for k in range(K):
                        rr[k] += zr * ar[k] - zi * ai[k]
                        ri[k] += zr * ai[k] + zi * ar[k]
                        va[k] += gw * a2[k]
            da, df = D_acc[t], dRf[f]
            for k in range(K):
                da[k] += wm * df[k]
            for i in range(nr):
                rr, ri, rra, ria = Rr[i], Ri[i], Rr_acc[t, i], Ri_acc[t, i]
                for k in range(K):
                    rra[k] += wm * rr[k]
                    ria[k] += wm * ri[k]
                for i2 in range(i, nr):
                    rr2, ri2, pr_, pi_ = Rr[i2], Ri[i2], P_acc[t, i, i2], P_acc[t, i2, i]
                    if i2 > i:
                        for k in range(K):
                            pr_[k] += wm * (rr[k] * rr2[k] + ri[k] * ri2[k])
                            pi_[k] += wm * (ri[k] * rr2[k] - rr[k] * ri2[k])
                    else:
                        for k in range(K):
                            pr_[k] += wm * (rr[k] * rr[k] + ri[k] * ri[k])
        m_re[:] = 0.0
        m_im[:] = 0.0
        sec[:] = 0.0
        for t in range(T):
            if not used[t]:
                continue
            for s_ in range(S):
                mr, mi, sc = m_re[s_], m_im[s_], sec[s_]
                for i in range(nr):
                    ar, ai = At[t, s_, i].real, At[t, s_, i].imag
                    a2 = At2[t, s_, i]
                    rra, ria, pii, va = Rr_acc[t, i], Ri_acc[t, i], P_acc[t, i, i], V_acc[t, i]
                    for k in range(K):
                        mr[k] += ar * rra[k] - ai * ria[k]
                        mi[k] += ar * ria[k] + ai * rra[k]
                        sc[k] += a2 * (pii[k] - va[k])
                    for i2 in range(i + 1, nr):
                        # 2 Re(A_i conj(A_i2) P_i,i2)
                        cr = ar * At[t, s_, i2].real + ai * At[t, s_, i2].imag
                        ci = ai * At[t, s_, i2].real - ar * At[t, s_, i2].imag
                        pr_, pi_ = P_acc[t, i, i2], P_acc[t, i2, i]
                        for k in range(K):
                            sc[k] += 2.0 * (cr * pr_[k] - ci * pi_[k])
                d = dRt[t, s_]
                da = D_acc[t]
                for k in range(K):
                    sc[k] += d * da[k]
        for s_ in range(S):
            for k in range(K):
                mr, mi = m_re[s_, k], m_im[s_, k]
                mean[n, s_, k] = complex(mr, mi)
                var[n, s_, k] = max(sec[s_, k] - (mr * mr + mi * mi), 1e-12)
        # Dopplers beyond the bank under the most likely frequency hypothesis (see _doppler_lr);
        # the dropped modes' log terms to first order in lambda / nv, like their quadratic terms
        if Te == 0:
            dlr[n] = 0.0
            continue
        best, fb = -1e300, 0
        for h in range(TF):
            if llf[n, h] > best:
                best, fb = llf[n, h], h % F
        inside = -1e300
        for t in range(T):
            inside = max(inside, llf[n, t * F + fb])
        outside = -1e300
        for te in range(Te):
            ll = 0.0
            for i in range(nr):
                le = lt_ext[te, i]
                for a in range(off[fb], off[fb + 1]):
                    d = le * lf_k[a] + v
                    ll -= math.log(d) + z2[i, a] / d
                d = le * lam_drop[fb] + v
                ll -= n_drop[fb] * math.log(d) + edrop[fb, i] / d
            outside = max(outside, ll)
        dlr[n] = outside - inside


mixture = njit(cache=True, nogil=True)(_mixture) if njit is not None else None


class Truncated:
    """The kept frequency modes of every hypothesis of a pattern, concatenated (see module doc)."""

    def __init__(self, lf: np.ndarray, Uf: np.ndarray, Af: np.ndarray):
        keep = lf > KEEP
        keep[np.arange(lf.shape[0]), np.argmax(lf, 1)] = True  # at least one mode each
        self.off = np.concatenate([[0], np.cumsum(keep.sum(1))]).astype(np.int64)
        self.lf = lf[keep].astype(float)
        self.n_drop = (~keep).sum(1).astype(np.int64)
        self.lam_drop = np.array([lf[f][~keep[f]].mean() if self.n_drop[f] else 0.0 for f in range(lf.shape[0])])
        self.UfH = np.concatenate([np.conj(Uf[f][:, keep[f]]) for f in range(lf.shape[0])], 1)
        Afk = np.concatenate([Af[f][:, keep[f]] for f in range(lf.shape[0])], 1)  # [K, R]
        self.AfT_re, self.AfT_im = np.ascontiguousarray(Afk.T.real), np.ascontiguousarray(Afk.T.imag)
        self.Af2T = np.ascontiguousarray(np.abs(Afk.T) ** 2)
