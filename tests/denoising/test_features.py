"""Denoiser inputs: the Gaussian constellation posterior is the exact one, mirrors pair k with
-k, and every plane and global has the documented shape and content."""
import numpy as np

from gnuradio.gdm import FrameSpec
from gnuradio.gdm.denoising.features import N_COND, N_GLOBAL, features, gaussian_posterior, mirror_index
from gnuradio.gdm.ofdm import qam


def test_gaussian_posterior_matches_brute_force_over_the_constellation():
    rng = np.random.default_rng(0)
    y = (rng.standard_normal(50) + 1j * rng.standard_normal(50)).astype(np.complex64)
    v = rng.uniform(0.01, 1.0, 50)
    for mod in ("qpsk", "16qam", "64qam"):
        c = qam.constellation(mod).astype(complex)
        lg = -np.abs(y[:, None] - c[None]) ** 2 / v[:, None]
        p = np.exp(lg - lg.max(1, keepdims=True))
        p /= p.sum(1, keepdims=True)
        mean = p @ c
        var = p @ np.abs(c) ** 2 - np.abs(mean) ** 2
        m, pv = gaussian_posterior(y, v, mod)
        np.testing.assert_allclose(m, mean, atol=2e-5)
        np.testing.assert_allclose(pv, var, atol=2e-5)


def test_mirror_pairs_each_carrier_with_its_negative():
    spec = FrameSpec.preset("nr72")
    occ = np.array(spec.occupied)
    assert np.array_equal(occ[mirror_index(spec)], -occ)


def test_feature_planes():
    spec = FrameSpec.preset("nr72")
    rng = np.random.default_rng(1)
    y = (rng.standard_normal((3, 14, 72)) + 1j * rng.standard_normal((3, 14, 72))).astype(np.complex64)
    v = np.full((3, 14, 72), 0.1, np.float32)
    f = features(y, v, spec)
    assert f["y"].shape == (3, 2, 14, 72) and f["logv"].shape == (3, 1, 14, 72)
    assert f["cond"].shape == (3, N_COND, 14, 72) and f["glob"].shape == (3, N_GLOBAL)
    np.testing.assert_allclose(f["logv"], np.log(0.1), rtol=1e-6)
    assert np.array_equal(f["cond"][0, 9], spec.data_mask.astype(np.float32))
    pil = spec.pilot_mask(0)
    np.testing.assert_allclose(f["cond"][0, 0][pil], spec.pilot_values(0)[pil].real)  # pilots: known points
    assert f["glob"][0, :3].tolist() == [0.0, 1.0, 0.0]  # one-hot 16qam
