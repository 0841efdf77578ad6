"""The compiled mixture posterior equals the numpy reference: every output, both pilot patterns,
low to high SNR, with an adapted bank's prior weights, and a link's result does not depend on
which other links share its batch."""
import numpy as np
import pytest

from gnuradio.gdm import FrameSpec
from gnuradio.gdm.estimation import bank_kernels
from gnuradio.gdm.estimation.bank import BankGrid, MixturePosterior
from gnuradio.gdm.sim.awgn import complex_noise
from gnuradio.gdm.sim.grid import ChannelMix, grid_channels

SPEC = FrameSpec.preset("nr72")
pytestmark = pytest.mark.skipif(bank_kernels.mixture is None, reason="numba not installed")


def _links(rng, pat, n, nv):
    H = grid_channels(SPEC, ChannelMix().sample(rng, n), rng=rng)[:, 0, 0]
    r, c = pat.rows[:, None], pat.cols[None, :]
    return H, (H[:, r, c] + complex_noise(rng, (n, pat.rows.size, pat.cols.size), nv)).astype(np.complex64)


def _rel_db(a, b):
    return 10 * np.log10(np.sum(np.abs(a - b) ** 2) / np.sum(np.abs(b) ** 2))


@pytest.mark.parametrize("n_tx,tx", [(1, 0), (2, 1)])
@pytest.mark.parametrize("snr_db", [-5.0, 15.0, 35.0])
def test_compiled_posterior_equals_the_reference(n_tx, tx, snr_db):
    rng = np.random.default_rng([21, n_tx, int(snr_db) + 10])
    post = MixturePosterior(SPEC, BankGrid(n_ds=6, n_fd=4), top=16)
    pat = post.pattern(SPEC.replace(n_tx=n_tx).pilot_mask(tx))
    assert pat.trunc is not None
    nv = np.full(24, 10 ** (-snr_db / 10))
    _, ls = _links(rng, pat, 24, nv[0])
    ref = post._posterior_reference(ls, nv, pat)
    out = post._posterior_compiled(ls, nv, pat)
    assert _rel_db(out["mean"], ref["mean"]) < -60
    assert _rel_db(out["var"], ref["var"]) < -50
    for k in ("fit", "doppler_lr", "fd_mean"):
        np.testing.assert_allclose(out[k], ref[k], rtol=1e-3, atol=1e-3, err_msg=k)
    np.testing.assert_allclose(out["ds_mean"], ref["ds_mean"], rtol=1e-3)


def test_compiled_posterior_with_prior_weights_equals_the_reference():
    rng = np.random.default_rng(22)
    grid = BankGrid(n_ds=5, n_fd=3)
    prior = rng.normal(0, 2, grid.n_t * grid.n_f)
    post = MixturePosterior(SPEC, grid.with_site(log_prior=prior), top=8)
    pat = post.pattern(SPEC.pilot_mask(0))
    nv = np.full(12, 0.03)
    _, ls = _links(rng, pat, 12, 0.03)
    ref, out = post._posterior_reference(ls, nv, pat), post._posterior_compiled(ls, nv, pat)
    assert _rel_db(out["mean"], ref["mean"]) < -60
    np.testing.assert_allclose(out["fd_mean"], ref["fd_mean"], rtol=1e-3, atol=1e-3)


def test_a_links_posterior_does_not_depend_on_its_batch():
    rng = np.random.default_rng(23)
    post = MixturePosterior(SPEC, BankGrid(n_ds=6, n_fd=4), top=16)
    pat = post.pattern(SPEC.pilot_mask(0))
    nv = np.concatenate([np.full(8, 1.0), np.full(8, 1e-3)])  # few vs many components per link
    _, ls = _links(rng, pat, 16, 0.01)
    for impl in (post._posterior_reference, post._posterior_compiled):
        both = impl(ls, nv, pat)["mean"]
        alone = impl(ls[8:], nv[8:], pat)["mean"]
        np.testing.assert_allclose(both[8:], alone, rtol=1e-5, atol=1e-6)


def test_without_numba_the_reference_runs(monkeypatch):
    monkeypatch.setenv("GDM_NO_NUMBA", "1")
    post = MixturePosterior(SPEC, BankGrid(n_ds=3, n_fd=2), top=4)
    pat = post.pattern(SPEC.pilot_mask(0))
    calls = []
    monkeypatch.setattr(post, "_posterior_compiled", lambda *a: calls.append(1))
    out = post.posterior(np.ones((2, pat.rows.size, pat.cols.size), np.complex64), np.full(2, 0.1), pat)
    assert not calls and out["mean"].shape == (2, SPEC.n_sym, SPEC.n_occ)
