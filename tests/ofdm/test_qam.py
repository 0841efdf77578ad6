import numpy as np
import pytest

from gnuradio.gdm.ofdm import qam


@pytest.mark.parametrize("mod,k", [("qpsk", 2), ("16qam", 4), ("64qam", 6)])
def test_unit_power_gray_and_roundtrip(mod, k):
    pts = qam.constellation(mod)
    assert np.isclose(np.mean(np.abs(pts) ** 2), 1)
    # Gray: nearest neighbours differ in exactly one bit
    d = np.abs(pts[:, None] - pts[None])
    dmin = np.min(d[d > 1e-6])
    for i, j in zip(*np.nonzero(np.isclose(d, dmin))):
        assert bin(i ^ j).count("1") == 1
    bits = np.random.default_rng(0).integers(0, 2, 600 * k)
    _, hb = qam.hard_decision(qam.bits_to_symbols(bits, mod), mod)
    assert (hb.reshape(-1) == bits).all()


def test_soft_demap_sign_and_scale():
    bits = np.random.default_rng(1).integers(0, 2, 4000)
    y = qam.bits_to_symbols(bits, "16qam")
    llr = qam.soft_demap(y, 0.1, "16qam").reshape(-1)
    assert ((llr < 0) == bits.astype(bool)).all()
    llr2 = qam.soft_demap(y, 0.2, "16qam").reshape(-1)
    assert np.allclose(llr2, llr / 2, rtol=1e-5)


def test_bad_modulation_lists_valid_names():
    with pytest.raises(ValueError, match="qpsk"):
        qam.constellation("256qam")


@pytest.mark.parametrize("mod", ["qpsk", "16qam", "64qam"])
def test_soft_demap_of_huge_symbols_is_finite_with_the_right_signs(mod):
    pts = qam.constellation(mod)
    y = (pts * np.float32(3e30)).astype(np.complex64)  # squares would overflow float32
    llr = qam.soft_demap(y, 0.1, mod)
    far = qam.soft_demap(pts * 50, 0.1, mod)
    assert np.isfinite(llr).all() and np.array_equal(np.sign(llr), np.sign(far))


@pytest.mark.parametrize("mod", ["bpsk", "qpsk", "16qam", "64qam"])
def test_compiled_soft_demap_equals_the_numpy_reference(mod, monkeypatch):
    from gnuradio.gdm.ofdm import qam_kernels

    if qam_kernels.soft_demap is None:
        pytest.skip("numba not installed")
    rng = np.random.default_rng(5)
    y = (rng.normal(0, 1, (3, 40)) + 1j * rng.normal(0, 1, (3, 40))).astype(np.complex64)
    y[0, :3] = [1e30, -1e25j, 3e5 - 2e6j]
    nv = rng.uniform(0, 0.5, (3, 40)).astype(np.float32)
    nv[1, :2] = 0
    out = qam.soft_demap(y, nv, mod)
    monkeypatch.setenv("GDM_NO_NUMBA", "1")
    ref = qam.soft_demap(y, nv, mod)
    assert out.shape == ref.shape and out.dtype == np.float32

    def close(a, b):
        # the clipped huge symbols: the reference's float32 distances (~1e8) round at ~1e-3
        np.testing.assert_allclose(a[0, :3], b[0, :3], rtol=2e-3)
        np.testing.assert_allclose(a[0, 3:], b[0, 3:], rtol=1e-5, atol=1e-4)
        np.testing.assert_allclose(a[1:], b[1:], rtol=1e-5, atol=1e-4)

    close(out, ref)
    scalar = qam.soft_demap(y, 0.1, mod)
    monkeypatch.delenv("GDM_NO_NUMBA")
    close(qam.soft_demap(y, 0.1, mod), scalar)
