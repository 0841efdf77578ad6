"""Compiled sync kernels (numba); the numpy forms in sync.py are the reference (GDM_NO_NUMBA=1).

- ``sc_metric``: the Schmidl-Cox metric with one sliding pass instead of ~10 array operations
  per call (the coarse search evaluates it twice per frame on a few hundred samples, where
  numpy's per-call overhead, not arithmetic, was the sync's largest cost);
- ``fine_xcorr``, ``cp_corr``, ``bodies``: fine timing, the cyclic-prefix CFO stage and the
  CFO-corrected symbol bodies read straight from the sample buffer, without the windowed
  copies, double-precision temporaries and separate multiplies of the numpy form (~45 % of
  the sync's CPU per frame went there).

All release the GIL, so the receiver's worker thread runs meanwhile."""
from __future__ import annotations

import numpy as np

try:
    from numba import njit
except ImportError:  # pragma: no cover - exercised where numba is absent
    njit = None


def _sc_metric(r, i0, n, L, M, P):
    """r complex64 [n_rx, N]; for j in [0, n): P[j] = sum over antennas and m < L of
    conj(r[i0+j+m]) r[i0+j+m+L], E1/E2 the energies of the two halves, M = |P|^2 / (E1 E2)."""
    n_rx = r.shape[0]
    p = 0j
    e1 = 0.0
    e2 = 0.0
    for a in range(n_rx):
        for m in range(L):
            x0 = complex(r[a, i0 + m])
            x1 = complex(r[a, i0 + m + L])
            p += x0.conjugate() * x1
            e1 += x0.real * x0.real + x0.imag * x0.imag
            e2 += x1.real * x1.real + x1.imag * x1.imag
    for j in range(n):
        P[j] = p
        den = e1 * e2
        M[j] = (p.real * p.real + p.imag * p.imag) / (den if den > 1e-30 else 1e-30)
        if j + 1 < n:
            for a in range(n_rx):
                x0 = complex(r[a, i0 + j])
                x1 = complex(r[a, i0 + j + L])
                x2 = complex(r[a, i0 + j + 2 * L])
                p += x1.conjugate() * x2 - x0.conjugate() * x1
                e1 += x1.real * x1.real + x1.imag * x1.imag - (x0.real * x0.real + x0.imag * x0.imag)
                e2 += x2.real * x2.real + x2.imag * x2.imag - (x1.real * x1.real + x1.imag * x1.imag)


def _fine_xcorr(buf, lo, W, q, C):
    """C[k, j] = sum over antennas of |sum_f buf[a, lo[k] + j + f] q[k, f]|^2 for j < W: the
    preamble-body correlation at every candidate start (q: the conjugate body with frame k's
    CFO folded in; a common phase does not change |.|^2). Indices past the buffer are clamped,
    as the numpy form does. The window is copied to real arrays once and the sum runs over f
    outside and j inside, so the inner loop has no reduction and vectorises."""
    n_rx, n = buf.shape
    K, F = q.shape
    wr = np.empty(W + F)
    wi = np.empty(W + F)
    sr = np.empty(W)
    si = np.empty(W)
    for k in range(K):
        for j in range(W):
            C[k, j] = 0.0
        for a in range(n_rx):
            for t in range(W + F - 1):
                x = buf[a, min(max(lo[k] + t, 0), n - 1)]
                wr[t] = x.real
                wi[t] = x.imag
            sr[:] = 0.0
            si[:] = 0.0
            for f in range(F):
                qr, qi = q[k, f].real, q[k, f].imag
                for j in range(W):
                    xr, xi = wr[j + f], wi[j + f]
                    sr[j] += xr * qr - xi * qi
                    si[j] += xr * qi + xi * qr
            for j in range(W):
                C[k, j] += sr[j] * sr[j] + si[j] * si[j]


def _cp_corr(buf, first, n_sym, sym_len, fft_len, h, cp, out):
    """out[k] = sum over antennas, symbols and n in [h, cp) of conj(x[s + n]) x[s + n + fft_len],
    s = first[k] + symbol * sym_len: the cyclic prefix against the symbol tail."""
    n_rx, n = buf.shape
    for k in range(first.size):
        acc = 0j
        for a in range(n_rx):
            for s in range(n_sym):
                b = first[k] + s * sym_len
                for m in range(h, cp):
                    i0 = min(max(b + m, 0), n - 1)
                    i1 = min(max(b + m + fft_len, 0), n - 1)
                    acc += complex(buf[a, i0]).conjugate() * complex(buf[a, i1])
        out[k] = acc


def _bodies(buf, start, off, backoff, e_sym, e_n, out):
    """out[a, k, s, m] = x[start[k] + off[s] + (m + backoff) % F] e_sym[k, s] e_n[k, (m + backoff) % F] (-1)^m:
    the symbol bodies with the CFO removed (e_sym e_n = exp(-j w (off + n)), an outer product),
    rolled by the timing back-off and sign-flipped, so that their plain FFT is the fft-shifted
    spectrum with the back-off's phase ramp already undone (a cyclic shift in time)."""
    n_rx, K, S, F = out.shape
    N = buf.shape[1]
    for a in range(n_rx):
        for k in range(K):
            for s in range(S):
                b = start[k] + off[s]
                es = e_sym[k, s]
                for m in range(F):
                    n = m + backoff
                    if n >= F:
                        n -= F
                    v = complex(buf[a, min(max(b + n, 0), N - 1)]) * es * e_n[k, n]
                    out[a, k, s, m] = v if m % 2 == 0 else -v


def _store_checked(src, dst, bad, max_abs):
    """dst[i] = src[i], or 0 where src[i] is not finite or |src[i]| >= max_abs (then bad[i] =
    True; bad is OR-ed over antennas): the synchronizer's input check and copy in one pass."""
    lim = max_abs * max_abs
    for i in range(src.size):
        v = src[i]
        re, im = v.real, v.imag
        m = re * re + im * im
        if m == m and m < lim:  # false for NaN; |v|^2 overflows to inf before |v| does
            dst[i] = v
        else:
            dst[i] = 0
            bad[i] = True


def _coarse_pass(buf, rel_pos, expect, L, sym_len, frame_len, cp_len, chunk, threshold,
                 d0s, ms, Ps):
    """FrameSynchronizer._coarse_pass over the buffer in one call (positions relative to the
    buffer start): -> (detections written to d0s/ms/Ps, next position, expect, rejected)."""
    end = buf.shape[1]
    Mw = np.empty(max(chunk, 2 * sym_len, sym_len))
    Pw = np.empty(max(chunk, 2 * sym_len, sym_len), np.complex128)
    k = 0
    rejected = 0
    pos = rel_pos
    q = cp_len // 4
    while True:
        n = min(end - pos - 2 * L - sym_len, 2 * sym_len if expect else chunk)
        expect = False
        if n <= 0:
            break
        sc_metric(buf, pos, n, L, Mw, Pw)
        j = -1
        for i in range(n):
            if Mw[i] > threshold:
                j = i
                break
        if j < 0:
            pos += n
            continue
        d0 = pos + j
        sc_metric(buf, d0, sym_len, L, Mw, Pw)
        m = 0
        for i in range(1, sym_len):
            if Mw[i] > Mw[m]:
                m = i
        lo, hi = max(0, m - q), min(sym_len, m + q + 1)
        s = 0.0
        for i in range(lo, hi):
            s += Mw[i]
        if s / (hi - lo) < threshold:
            rejected += 1
            pos = d0 + sym_len
            continue
        if d0 + m + frame_len > end:
            pos = d0
            break
        if k == d0s.size:
            break  # the caller's arrays hold every frame the buffer can; not reached
        d0s[k], ms[k], Ps[k] = d0, m, Pw[m]
        k += 1
        pos, expect = d0 + m + frame_len - 2 * cp_len - L // 4, True
    return k, pos, expect, rejected


if njit is not None:
    sc_metric = njit(cache=True, nogil=True)(_sc_metric)
    fine_xcorr = njit(cache=True, nogil=True)(_fine_xcorr)
    cp_corr = njit(cache=True, nogil=True)(_cp_corr)
    bodies = njit(cache=True, nogil=True)(_bodies)
    store_checked = njit(cache=True, nogil=True)(_store_checked)
    coarse_pass = njit(cache=True, nogil=True)(_coarse_pass)  # calls sc_metric
else:  # pragma: no cover
    sc_metric = fine_xcorr = cp_corr = bodies = store_checked = coarse_pass = None
