"""Compiled Schmidl-Cox metric (numba). The numpy form in sync.py is the reference; this kernel
computes the same windowed sums with one sliding pass instead of ~10 array operations per
call, and releases the GIL. The coarse search evaluates it twice per frame on a few hundred
samples, where numpy's per-call overhead, not arithmetic, was the sync's largest cost."""
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


sc_metric = njit(cache=True, nogil=True)(_sc_metric) if njit is not None else None
