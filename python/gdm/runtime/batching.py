"""Run any number of items through a fixed-batch-size function.

onnxruntime's CPU arena grows with every new input shape, so sessions see one batch shape: the
items are cut into batches of ``batch_size`` and the last, partial batch is padded (by repeating
its last item) and its padding dropped from the result. Nothing is ever dropped or reordered.
"""
from __future__ import annotations

from typing import Callable

import numpy as np


def run_batched(fn: Callable[..., np.ndarray], arrays: dict[str, np.ndarray], batch_size: int) -> np.ndarray:
    """``fn(**{name: [batch_size, ...]}) -> [batch_size, ...]`` applied over axis 0 of ``arrays``
    (all the same length N) -> [N, ...]."""
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    lengths = {k: len(v) for k, v in arrays.items()}
    if len(set(lengths.values())) != 1:
        raise ValueError(f"arrays differ in length: {lengths}")
    n = next(iter(lengths.values()))
    outs = []
    for start in range(0, n, batch_size):
        stop = min(start + batch_size, n)
        chunk = {}
        for k, v in arrays.items():
            part = v[start:stop]
            if stop - start < batch_size:  # pad the partial batch; its padding is cut below
                pad = np.repeat(part[-1:], batch_size - (stop - start), axis=0)
                part = np.concatenate([part, pad], 0)
            chunk[k] = np.ascontiguousarray(part)
        out = np.asarray(fn(**chunk))
        if out.shape[0] != batch_size:
            raise ValueError(f"batched function returned {out.shape[0]} items for a batch of {batch_size}")
        outs.append(out[:stop - start])
    if not outs:
        raise ValueError("nothing to run: the arrays are empty")
    return np.concatenate(outs, 0)


def bucket_size(n: int, buckets=(1, 2, 4, 8, 16, 32, 64)) -> int:
    """Smallest bucket holding ``n`` items (the largest bucket if none does)."""
    for b in buckets:
        if b >= n:
            return b
    return buckets[-1]


def run_bucketed(fn: Callable[..., np.ndarray], arrays: dict[str, np.ndarray],
                 buckets=(1, 2, 4, 8, 16, 32, 64)) -> np.ndarray:
    """Like run_batched with the batch sizes picked from a few fixed ``buckets``: full batches of
    the largest bucket, then the rest in the smallest bucket that holds it (70 items: 64 + 8,
    not 64 + 64 of which 58 are padding); a single frame is not padded to 64, yet the session
    only ever sees len(buckets) shapes."""
    buckets = tuple(buckets)
    n = len(next(iter(arrays.values())))
    big = buckets[-1]
    full = n // big * big
    if full == n or full == 0:
        return run_batched(fn, arrays, bucket_size(n, buckets) if full == 0 else big)
    head = run_batched(fn, {k: v[:full] for k, v in arrays.items()}, big)
    tail = run_batched(fn, {k: v[full:] for k, v in arrays.items()}, bucket_size(n - full, buckets))
    return np.concatenate([head, tail], 0)
