"""Compiled max-log soft demapper (numba). ``qam._axis_llr`` is the reference (GDM_NO_NUMBA=1):
it builds a [symbols, levels] distance table and masks it per bit, ~150 ns per symbol in numpy
temporaries, where this loop takes a few; the receiver demaps every data symbol of every frame."""
from __future__ import annotations

try:
    from numba import njit
except ImportError:  # pragma: no cover - exercised where numba is absent
    njit = None


def _soft_demap(y, nv, pam, table, axes, out):
    """y complex [N], nv [N], pam float32 [L] levels of one axis, table bool [L, m] their Gray
    bits -> out float32 [N, axes * m]: per axis (in-phase first) and bit, min distance over the
    levels whose bit is 1 minus that over the levels whose bit is 0, over the noise variance."""
    L, m = table.shape
    for i in range(y.size):
        inv = 1.0 / max(nv[i], 1e-12)
        for ax in range(axes):
            v = y[i].real if ax == 0 else y[i].imag
            v = min(max(v, -1e4), 1e4)  # as the reference: far outside only the sign matters
            for j in range(m):
                d0 = 1e300
                d1 = 1e300
                for lv in range(L):
                    d = (v - pam[lv]) * (v - pam[lv])
                    if table[lv, j]:
                        d1 = min(d1, d)
                    else:
                        d0 = min(d0, d)
                out[i, ax * m + j] = (d1 - d0) * inv


soft_demap = njit(cache=True, nogil=True)(_soft_demap) if njit is not None else None
