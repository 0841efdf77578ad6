"""The site prior recovers delay spread, Doppler and a line-of-sight Doppler shift from pilots alone."""
import numpy as np

from gnuradio.gdm.adaptation.observations import from_profile
from gnuradio.gdm.adaptation.site_prior import em_log_weights, fit_site, frequency_correlation
from gnuradio.gdm.sim.grid import ChannelConfig
from gnuradio.gdm.sim.profiles import make_profile

D, DF = np.arange(73), 15e3  # carrier distances of nr72, spacing


def _corr_error(fit, cfg):
    """Largest error of the fitted frequency correlation over all carrier distances."""
    true = make_profile(cfg.profile, cfg.delay_spread)
    return np.abs(frequency_correlation(fit.delays, fit.powers, D, DF)
                  - frequency_correlation(true.delays, true.powers, D, DF)).max()


def test_long_delay_spread_is_recovered():
    cfg = ChannelConfig("TDL-C", 2000e-9, 0.0)
    fit = fit_site(from_profile(cfg, 10, 150, seed=1))
    assert abs(fit.rms_delay_spread - 2000e-9) < 0.15 * 2000e-9 and _corr_error(fit, cfg) < 0.1
    assert abs(fit.power - 1) < 0.1 and fit.time.doppler < 60 and fit.time.shift == 0
    (d0, p0), (d1, p1) = fit.profiles()  # as fitted, and with 5 % of the power as a floor
    assert np.array_equal(p0, fit.powers) and abs(p1.sum() - p0.sum()) < 1e-9
    assert abs(p1[d0.size:].sum() - 0.05 * p0.sum()) < 1e-9 and d1[d0.size:].max() <= d0.max() + fit.step


def test_doppler_beyond_the_first_zero_of_the_time_correlation():
    cfg = ChannelConfig("TDL-C", 300e-9, 800.0)
    fit = fit_site(from_profile(cfg, 10, 200, seed=2))
    assert abs(fit.time.doppler - 800) < 80 and fit.time.shift == 0  # correlation < 0: no shift needed
    assert _corr_error(fit, cfg) < 0.1


def test_line_of_sight_doppler_shift():
    # TDL-E: the specular path arrives at 45 degrees, a 200 Hz * cos(45) = 141 Hz tone
    fit = fit_site(from_profile(ChannelConfig("TDL-E", 300e-9, 200.0), 10, 200, seed=3))
    assert abs(abs(fit.time.shift) - 200 * np.cos(np.pi / 4)) < 25
    assert fit.time.doppler < 150


def test_em_weights_find_the_hypothesis_that_explains_the_frames():
    rng = np.random.default_rng(0)
    ll = rng.normal(0, 1, (50, 20))
    ll[:40, 3] += 8  # 40 of 50 frames fit hypothesis 3 far better, the rest hypothesis 7
    ll[40:, 7] += 8
    w = np.exp(em_log_weights(ll, floor=0.05))
    assert abs(w.sum() - 1) < 1e-9
    assert abs(w[3] - (0.95 * 0.8 + 0.05 / 20)) < 0.03 and abs(w[7] - (0.95 * 0.2 + 0.05 / 20)) < 0.03
    assert w.min() >= 0.05 / 20 - 1e-12  # nothing ruled out
