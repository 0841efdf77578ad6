"""Link metrics: NMSE, BER, EVM, PER."""
from __future__ import annotations

import numpy as np


def nmse(h_hat, h) -> float:
    """E|h_hat - h|^2 / E|h|^2 over everything given (linear)."""
    h_hat, h = np.asarray(h_hat), np.asarray(h)
    return float(np.sum(np.abs(h_hat - h) ** 2) / max(np.sum(np.abs(h) ** 2), 1e-30))


def db(x) -> float:
    return float(10 * np.log10(np.maximum(x, 1e-30)))


def nmse_db(h_hat, h) -> float:
    return db(nmse(h_hat, h))


def ber(bits_hat, bits) -> float:
    bits_hat, bits = np.asarray(bits_hat), np.asarray(bits)
    return float(np.mean(bits_hat != bits)) if bits.size else float("nan")


def evm_db(x_hat, x) -> float:
    x_hat, x = np.asarray(x_hat), np.asarray(x)
    return db(np.mean(np.abs(x_hat - x) ** 2) / max(np.mean(np.abs(x) ** 2), 1e-30))
