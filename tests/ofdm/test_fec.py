import numpy as np

from gnuradio.gdm.ofdm import qam
from gnuradio.gdm.ofdm.fec import code


def test_codewords_satisfy_parity_and_decode_noiseless():
    c = code(1728)
    u = np.random.default_rng(0).integers(0, 2, (4, c.k)).astype(np.uint8)
    x = c.encode(u)
    v = np.concatenate([x[:, c.deinterleaver], np.zeros((4, 1), np.uint8)], 1)
    assert not np.bitwise_xor.reduce(v[:, c.edges], axis=2).any()
    uh, ok = c.decode(np.where(x == 0, 4.0, -4.0))
    assert ok.all() and (uh == u).all()


def test_corrects_errors_at_moderate_snr_and_flags_failures():
    rng = np.random.default_rng(1)
    c = code(3456)
    u = rng.integers(0, 2, (8, c.k)).astype(np.uint8)
    s = qam.bits_to_symbols(c.encode(u).reshape(-1), "16qam").reshape(8, -1)

    def run(snr):
        nv = 10 ** (-snr / 10)
        y = s + np.sqrt(nv / 2) * (rng.standard_normal(s.shape) + 1j * rng.standard_normal(s.shape))
        llr = qam.soft_demap(y, nv, "16qam").reshape(8, -1)
        return (llr < 0) != c.encode(u), c.decode(llr)

    raw, (uh, ok) = run(9.0)
    assert raw.mean() > 0.05  # plenty of channel errors ...
    assert ok.all() and (uh == u).all()  # ... all corrected
    _, (uh, ok) = run(3.0)
    assert not ok.any()  # beyond capacity: decoder reports failure instead of claiming success


def test_compiled_and_numpy_decoders_agree(monkeypatch):
    from gnuradio.gdm.ofdm import fec_kernels
    if fec_kernels.minsum is None:
        import pytest
        pytest.skip("numba not installed")
    rng = np.random.default_rng(5)
    c = code(1728)
    u = rng.integers(0, 2, (12, c.k)).astype(np.uint8)
    x = c.encode(u)
    llr = np.where(x == 0, 1.0, -1.0) * 2.0 + rng.standard_normal(x.shape) * 1.4  # some fail, most decode
    a = c.decode(llr)
    monkeypatch.setenv("GDM_NO_NUMBA", "1")
    b = c.decode(llr)
    assert (a[0] == b[0]).all() and (a[1] == b[1]).all() and 0 < a[1].sum()


def test_posterior_llrs_come_back_in_channel_order(monkeypatch):
    """decode(posterior=True): the a posteriori LLRs of every codeword bit, interleaved like the
    input; for a frame that decodes their signs are the codeword, the compiled and numpy
    decoders agree on them."""
    rng = np.random.default_rng(6)
    c = code(1728)
    u = rng.integers(0, 2, (6, c.k)).astype(np.uint8)
    x = c.encode(u)
    llr = np.where(x == 0, 1.0, -1.0) * 2.0 + rng.standard_normal(x.shape) * 1.2
    uh, ok, post = c.decode(llr, posterior=True)
    assert post.shape == x.shape and ok.any() and (uh == c.decode(llr)[0]).all()
    assert ((post[ok] < 0) == x[ok].astype(bool)).all()
    assert ((llr[ok] < 0) != x[ok].astype(bool)).any()  # the channel alone had errors there
    monkeypatch.setenv("GDM_NO_NUMBA", "1")
    _, ok2, post2 = c.decode(llr, posterior=True)
    assert (ok2 == ok).all() and np.allclose(post2, post, atol=1e-3)
