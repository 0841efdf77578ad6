"""Denoiser registry and the classical members: plain demapping is the identity, CPE removes a
common rotation, inputs of the wrong shape are refused with the expected shape."""
import numpy as np
import pytest

from gnuradio.gdm import FrameSpec, denoising
from gnuradio.gdm.ofdm.transceiver import random_payload, transmit

SPEC = FrameSpec.preset("nr72")


def _frames(n=3, rot=0.25, seed=0):
    _, grids, _ = transmit([random_payload(i, 100) for i in range(n)], range(n), SPEC)
    rng = np.random.default_rng(seed)
    y = grids * np.exp(1j * rot) + 0.02 * (rng.standard_normal(grids.shape) + 1j * rng.standard_normal(grids.shape))
    return grids, y.astype(np.complex64), np.full(grids.shape, 8e-4, np.float32)


def test_registry_offers_every_denoiser():
    assert set(denoising.names()) == {"none", "cpe", "diffusion", "pa_cancel"}
    with pytest.raises(ValueError, match="unknown symbol denoiser 'magic'; valid: none, cpe, diffusion, pa_cancel"):
        denoising.make("magic", SPEC)


def test_plain_demapping_is_the_identity():
    _, y, v = _frames()
    X, V = denoising.make("none", SPEC).denoise(y, v)
    assert X is not None and np.array_equal(X, y) and np.array_equal(V, v)


def test_cpe_removes_a_common_rotation_and_keeps_the_variance():
    x, y, v = _frames(rot=0.25)
    dn = denoising.make("cpe", SPEC)
    X, V = dn.denoise(y, v)
    d = SPEC.data_mask
    assert np.mean(np.abs(X[..., d] - x[..., d]) ** 2) < 0.05 * np.mean(np.abs(y[..., d] - x[..., d]) ** 2)
    assert np.array_equal(V, v) and not dn.last_info["fallback"].any()


def test_wrong_shapes_are_refused_with_the_expected_shape():
    _, y, v = _frames()
    with pytest.raises(ValueError, match=r"\[B, n_tx, n_sym, n_occ\] = \[B, 1, 14, 72\]"):
        denoising.make("none", SPEC).denoise(y[..., :70], v[..., :70])
    with pytest.raises(ValueError, match="X and V must both be"):
        denoising.make("cpe", SPEC).denoise(y, v[:, :, :5])
