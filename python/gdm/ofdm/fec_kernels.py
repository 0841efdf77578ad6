"""Compiled min-sum decoder for the repeat-accumulate code (numba). The numpy decoder in fec.py is
the reference; this kernel computes the same flooding schedule per frame without the per-
iteration array overhead, and releases the GIL so other GNU Radio blocks run meanwhile. Used
when numba imports; ``RACode.decode`` falls back to numpy otherwise."""
from __future__ import annotations

import numpy as np

try:
    from numba import njit
except ImportError:  # pragma: no cover - exercised where numba is absent
    njit = None


def _minsum(L, edges, var_of_edge, info_of_check, k, max_iter, alpha, info_out, ok_out, total_out):
    B, n1 = L.shape
    m, d = edges.shape
    E = m * d
    total = np.empty(n1, np.float32)
    c2v = np.empty(E, np.float32)
    hard = np.empty(n1 - 1, np.uint8)
    for b in range(B):
        for i in range(n1):
            total[i] = L[b, i]
        for e in range(E):
            c2v[e] = 0.0
        converged = False
        for it in range(max_iter + 1):
            # Syndrome of the current hard decisions: the parity the information bits imply
            # (accumulated) must equal the received parity bits.
            for i in range(n1 - 1):
                hard[i] = 1 if total[i] < 0 else 0
            acc = 0
            good = True
            for j in range(m):
                s = acc
                for t in range(info_of_check.shape[1]):
                    s ^= hard[info_of_check[j, t]]
                acc = s
                if s != hard[k + j]:
                    good = False
                    break
            if good:
                converged = True
                break
            if it == max_iter:
                break
            # Check nodes: normalized min-sum on v2c = total - c2v.
            for j in range(m):
                min1 = np.float32(1e30)
                min2 = np.float32(1e30)
                imin = 0
                sign = 1.0
                base = j * d
                for t in range(d):
                    v = total[edges[j, t]] - c2v[base + t]
                    a = abs(v)
                    if v < 0:
                        sign = -sign
                    if a < min1:
                        min2 = min1
                        min1 = a
                        imin = t
                    elif a < min2:
                        min2 = a
                for t in range(d):
                    v = total[edges[j, t]] - c2v[base + t]
                    mag = min2 if t == imin else min1
                    sv = -1.0 if v < 0 else 1.0
                    c2v[base + t] = alpha * sign * sv * mag
            # Variable nodes: channel LLR + all incoming messages.
            for i in range(n1):
                total[i] = L[b, i]
            for e in range(E):
                total[var_of_edge[e]] += c2v[e]
        for i in range(k):
            info_out[b, i] = 1 if total[i] < 0 else 0
        ok_out[b] = converged
        if total_out.shape[0] == B:  # a posteriori LLRs wanted (iterative receivers)
            for i in range(n1 - 1):
                total_out[b, i] = total[i]


minsum = njit(cache=True, nogil=True)(_minsum) if njit is not None else None
