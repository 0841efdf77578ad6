import numpy as np

from gnuradio.gdm import FrameSpec
from gnuradio.gdm.sim.grid import ChannelConfig, ChannelMix, genie_covariance, grid_channels

SPEC = FrameSpec.preset("nr72")


def test_sample_covariance_matches_analytic():
    cfg = ChannelConfig("TDL-C", 300e-9, 150.0)
    H = grid_channels(SPEC, cfg, 3000, rng=np.random.default_rng(0))[:, 0, 0].reshape(3000, -1)
    R = genie_covariance(SPEC, cfg)
    Rs = H.T @ H.conj() / 3000
    assert np.linalg.norm(Rs - R) / np.linalg.norm(R) < 0.1
    assert np.isclose(np.trace(R).real / R.shape[0], 1)


def test_mix_draws_within_ranges():
    cfgs = ChannelMix().sample(np.random.default_rng(0), 500)
    assert {c.profile for c in cfgs} == {"TDL-A", "TDL-B", "TDL-C"}
    ds = np.array([c.delay_spread for c in cfgs])
    fd = np.array([c.doppler for c in cfgs])
    assert ds.min() >= 10e-9 and ds.max() <= 1000e-9 and fd.max() <= 400


def test_shapes_and_tx_amplitude():
    spec2 = SPEC.replace(n_tx=2)
    H = grid_channels(spec2, ChannelConfig(), 200, n_rx=2, rng=np.random.default_rng(1))
    assert H.shape == (200, 2, 2, 14, 72)
    assert np.isclose(np.mean(np.abs(H) ** 2), 0.5, rtol=0.15)
