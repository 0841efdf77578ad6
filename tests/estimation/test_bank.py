"""The Gaussian-mixture bank: near genie on a configuration it contains, honest variances,
and goodness-of-fit / Doppler statistics that separate trained channels from others."""
import numpy as np

from gnuradio.gdm import FrameSpec, estimation
from gnuradio.gdm.estimation.bank import pilot_grid_ls
from gnuradio.gdm.sim.awgn import complex_noise
from gnuradio.gdm.sim.grid import ChannelConfig, ChannelMix, grid_channels

SPEC = FrameSpec.preset("nr72")


def _observe(H, nv, rng, spec=SPEC):
    return (H[:, :, 0] * spec.pilot_values(0) + complex_noise(rng, H[:, :, 0].shape, nv)).astype(np.complex64)


def _nmse_db(a, b):
    return 10 * np.log10(np.sum(np.abs(a - b) ** 2) / np.sum(np.abs(b) ** 2))


def test_bank_is_close_to_genie_and_far_better_than_interp_on_a_trained_config():
    rng = np.random.default_rng(11)
    cfg = ChannelConfig("TDL-C", 300e-9, 50.0)
    H = grid_channels(SPEC, cfg, 200, rng=rng)
    Y = _observe(H, 0.1, rng)
    bank = estimation.make("bank", SPEC).estimate(Y, 0.1)
    genie = estimation.make("genie", SPEC, config=cfg).estimate(Y, 0.1)
    interp = estimation.make("ls_interp", SPEC).estimate(Y, 0.1)
    assert _nmse_db(bank, H) < _nmse_db(genie, H) + 0.5
    assert _nmse_db(bank, H) < _nmse_db(interp, H) - 8


def test_posterior_variance_matches_the_actual_error():
    rng = np.random.default_rng(12)
    H = grid_channels(SPEC, ChannelMix().sample(rng, 300), rng=rng)
    est = estimation.make("bank", SPEC)
    pat = est.pats[0]
    for nv in (1.0, 0.01):
        Y = _observe(H, nv, rng)
        out = est.post.posterior(pilot_grid_ls(Y[:, 0], SPEC, 0, pat), np.full(300, nv), pat)
        mse = np.mean(np.abs(out["mean"] - H[:, 0, 0]) ** 2)
        assert abs(10 * np.log10(np.mean(out["var"]) / mse)) < 1.0


def test_fit_and_doppler_statistics_flag_channels_outside_the_bank():
    rng = np.random.default_rng(13)
    est = estimation.make("bank", SPEC)
    pat = est.pats[0]

    def stats(H, nv):
        Y = _observe(H, nv, rng)
        return est.post.posterior(pilot_grid_ls(Y[:, 0], SPEC, 0, pat), np.full(H.shape[0], nv), pat)

    inside = stats(grid_channels(SPEC, ChannelMix().sample(rng, 300), rng=rng), 1e-3)
    wide = stats(grid_channels(SPEC, ChannelConfig("TDL-C", 2500e-9, 10.0), 100, rng=rng), 1e-3)
    fast = stats(grid_channels(SPEC, ChannelConfig("TDL-C", 300e-9, 900.0), 100, rng=rng), 1e-3)
    assert np.percentile(inside["fit"], 99) < 4 and np.median(wide["fit"]) > 20
    assert inside["doppler_lr"].max() < 2.5 and np.mean(fast["doppler_lr"] > 2.5) > 0.3


def test_comb_patterns_of_two_streams():
    rng = np.random.default_rng(14)
    spec2 = SPEC.replace(n_tx=2)
    H = grid_channels(spec2, ChannelConfig("TDL-A", 100e-9, 10.0), 100, n_rx=2, rng=rng)
    X = np.stack([spec2.pilot_values(t) for t in range(2)])
    Y = np.einsum("brtsk,tsk->brsk", H, X) + complex_noise(rng, (100, 2, 14, 72), 0.01)
    bank = estimation.make("bank", spec2, n_rx=2).estimate(Y, 0.01)
    interp = estimation.make("ls_interp", spec2, n_rx=2).estimate(Y, 0.01)
    assert _nmse_db(bank, H) < _nmse_db(interp, H) - 5
