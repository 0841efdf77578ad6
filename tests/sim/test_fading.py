import numpy as np
from scipy.special import j0

from gnuradio.gdm.sim.fading import TapFading
from gnuradio.gdm.sim.profiles import flat, tdl


def test_rayleigh_power_and_jakes_correlation():
    rng = np.random.default_rng(0)
    f = TapFading(flat(), 200.0, 1, 1, rng, batch=4000)
    t = np.array([0.0, 1e-3, 2e-3])
    g = f.gains(t)[..., 0, 0, 0]  # [B, T]
    assert np.isclose(np.mean(np.abs(g) ** 2), 1, atol=0.05)
    rho = np.mean(g[:, 1:] * np.conj(g[:, :1]), axis=0).real
    assert np.allclose(rho, j0(2 * np.pi * 200 * t[1:]), atol=0.06)


def test_antenna_correlation_and_los():
    rng = np.random.default_rng(1)
    g = TapFading(flat(), 0.0, 2, 1, rng, batch=6000, rx_corr=0.7).gains(np.zeros(1))[:, 0, :, 0, 0]
    c = np.mean(g[:, 0] * np.conj(g[:, 1])) / np.sqrt(np.mean(np.abs(g[:, 0]) ** 2) * np.mean(np.abs(g[:, 1]) ** 2))
    assert abs(abs(c) - 0.7) < 0.05
    los = TapFading(tdl("TDL-D", 1e-7), 0.0, 1, 1, rng, batch=2000).gains(np.zeros(1))[:, 0, 0, 0]
    # specular tap: constant magnitude
    assert np.allclose(np.abs(los[:, 0]), np.abs(los[0, 0]))
