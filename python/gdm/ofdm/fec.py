"""Forward error correction: a rate-1/2 systematic irregular repeat-accumulate LDPC code with a
normalized min-sum decoder, vectorized over frames (numpy + one sparse product per iteration).

Parity-check structure: check j sums 3 information bits, the previous parity bit and its own
parity bit, so encoding is an accumulator (p = cumulative XOR of H_u u) and needs no generator
matrix. Every information bit sits in 3 checks chosen by a seeded permutation. A seeded bit
interleaver spreads the codeword over the grid so a faded band does not wipe out one region
of the code.
"""
from __future__ import annotations

import os
from functools import lru_cache

import numpy as np
import scipy.sparse as sp

from . import fec_kernels

from ..frame import FECS
_COL_W = 3  # checks per information bit
_BIG = 1e4  # LLR of the virtual always-zero bit that pads check 0


class RACode:
    def __init__(self, n: int, seed: int = 0x1D9C):
        if n % 2 or n < 16:
            raise ValueError(f"codeword length must be even and >= 16, got {n}")
        self.n, self.k = n, n // 2
        m = self.m = n - self.k
        rng = np.random.default_rng(seed)
        # Info-bit sockets -> checks, 3 per check, without repeating a bit inside one check.
        sockets = np.repeat(np.arange(self.k), _COL_W)
        for _ in range(100):
            perm = rng.permutation(sockets).reshape(m, _COL_W)
            s = np.sort(perm, axis=1)
            dup = np.flatnonzero((np.diff(s, axis=1) == 0).any(axis=1))
            if dup.size == 0:
                break
            # Swap the offending rows' entries with random other rows and try again.
            for j in dup:
                r = rng.integers(m)
                c1, c2 = rng.integers(_COL_W, size=2)
                perm[j, c1], perm[r, c2] = perm[r, c2], perm[j, c1]
            sockets = perm.reshape(-1)
        self.info_of_check = perm  # [m, 3]
        virt = n  # index of the virtual zero bit
        prev = np.r_[virt, self.k + np.arange(m - 1)]
        self.edges = np.concatenate([perm, prev[:, None], (self.k + np.arange(m))[:, None]], axis=1)  # [m, 5]
        E = self.edges.size
        self._var_sum = sp.csr_matrix((np.ones(E, np.float32), (np.arange(E), self.edges.reshape(-1))),
                                      shape=(E, n + 1)).T.tocsr()  # [(n+1), E]
        self._var_of_edge = np.ascontiguousarray(self.edges.reshape(-1))
        self.interleaver = np.random.default_rng(seed + 1).permutation(n)
        self.deinterleaver = np.argsort(self.interleaver)

    def encode(self, u: np.ndarray) -> np.ndarray:
        """info bits uint8 [..., k] -> interleaved codeword [..., n]."""
        u = np.asarray(u, np.uint8)
        s = np.bitwise_xor.reduce(u[..., self.info_of_check], axis=-1)  # [..., m]
        p = np.bitwise_xor.accumulate(s, axis=-1)
        c = np.concatenate([u, p], axis=-1)
        return c[..., self.interleaver]

    def _syndrome_ok(self, c: np.ndarray) -> np.ndarray:
        """De-interleaved hard codewords [B, n] -> all checks satisfied [B]: the parity bits the
        information bits imply equal the received ones."""
        s = np.bitwise_xor.reduce(c[:, :self.k][:, self.info_of_check], axis=-1)
        return (np.bitwise_xor.accumulate(s, axis=-1) == c[:, self.k:]).all(axis=1)

    def decode(self, llr: np.ndarray, max_iter: int = 30, alpha: float = 0.8, posterior: bool = False):
        """Interleaved channel LLRs [B, n] (positive = 0) -> (info bits [B, k], ok [B]);
        ``posterior``: also the a posteriori LLRs of every codeword bit [B, n], interleaved
        like the input (for receivers that feed decoder beliefs back)."""
        llr = np.atleast_2d(np.asarray(llr, np.float32))[:, self.deinterleaver]
        B = llr.shape[0]
        L = np.concatenate([np.clip(llr, -50, 50), np.full((B, 1), _BIG, np.float32)], axis=1)
        if fec_kernels.minsum is not None and not os.environ.get("GDM_NO_NUMBA"):
            info, ok = np.empty((B, self.k), np.uint8), np.empty(B, np.bool_)
            post = np.empty((B if posterior else 0, self.n), np.float32)
            fec_kernels.minsum(np.ascontiguousarray(L), self.edges, self._var_of_edge, self.info_of_check,
                               self.k, max_iter, np.float32(alpha), info, ok, post)
            return (info, ok, post[:, self.interleaver]) if posterior else (info, ok)
        total = L.copy()
        # Frames whose hard decisions already satisfy every check need no iterations.
        ok = self._syndrome_ok((total[:, :self.n] < 0).astype(np.uint8))
        act = np.flatnonzero(~ok)  # frames still iterating; converged ones leave the batch
        c2v = np.zeros((act.size, self.edges.size), np.float32)
        for _ in range(max_iter if act.size else 0):
            La = L[act]
            v2c = (total[act][:, self.edges.reshape(-1)] - c2v).reshape(act.size, self.m, -1)
            sgn = np.where(v2c < 0, -1.0, 1.0).astype(np.float32)
            mag = np.abs(v2c)
            i1 = np.argmin(mag, axis=2)
            m1 = np.take_along_axis(mag, i1[..., None], 2)
            mag2 = mag.copy()
            np.put_along_axis(mag2, i1[..., None], np.inf, 2)
            m2 = mag2.min(axis=2, keepdims=True)
            prod = sgn.prod(axis=2, keepdims=True)
            out = np.where(np.arange(mag.shape[2]) == i1[..., None], m2, m1)
            c2v = (alpha * prod * sgn * out).reshape(act.size, -1)
            total[act] = La + (self._var_sum @ c2v.T).T.astype(np.float32)
            done = self._syndrome_ok((total[act, :self.n] < 0).astype(np.uint8))
            ok[act[done]] = True
            act, c2v = act[~done], c2v[~done]
            if act.size == 0:
                break
        info = (total[:, :self.k] < 0).astype(np.uint8)
        return (info, ok, total[:, :self.n][:, self.interleaver]) if posterior else (info, ok)


def warm_up(n: int) -> None:
    """Loads (or compiles) the numba decoder now, not on the first frame: a cached load takes
    ~2.5 s on this machine and would stall the flowgraph at its first frame."""
    code(n).decode(np.zeros((1, n), np.float32), max_iter=1)


@lru_cache(maxsize=16)
def code(n: int) -> RACode:
    return RACode(n)


__all__ = ["FECS", "RACode", "code"]
