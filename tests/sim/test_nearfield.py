"""Near-field XL-MIMO channel model: geometry, far-field limit, normalisation, observations."""
import numpy as np
import pytest

from gnuradio.gdm.sim import nearfield as nf


CFG = nf.NearFieldConfig()


def test_config_geometry():
    # 100 GHz, 256 half-wavelength elements: aperture ~0.38 m, Rayleigh distance ~97 m.
    assert CFG.wavelength_m == pytest.approx(2.998e-3, rel=1e-3)
    assert CFG.rayleigh_distance_m == pytest.approx(97.5, rel=0.01)
    assert CFG.fresnel_min_m < CFG.r_range_m[0] < CFG.r_range_m[1] < CFG.rayleigh_distance_m
    assert nf.NearFieldConfig.from_json(CFG.to_json()) == CFG


@pytest.mark.parametrize("theta", [-0.8, 0.0, 0.37])
def test_far_field_limit_is_planar_steering(theta):
    a = nf.nearfield_steering(theta, 1e9, CFG.n_ant, CFG.spacing_m, CFG.wavelength_m)
    b = nf.farfield_steering(theta, CFG.n_ant, CFG.spacing_wl)
    assert np.max(np.abs(a - b)) < 1e-5
    # ... and a source inside the Fresnel region is clearly not planar.
    a10 = nf.nearfield_steering(theta, 5.0, CFG.n_ant, CFG.spacing_m, CFG.wavelength_m)
    assert abs(np.vdot(b, a10)) < 0.75


def test_steering_is_exact_spherical_phase():
    th, r = 0.3, 7.0
    x = nf.element_positions(CFG.n_ant, CFG.spacing_m)
    rn = np.sqrt(r ** 2 + x ** 2 - 2 * r * x * th)
    ref = np.exp(-2j * np.pi * (rn - r) / CFG.wavelength_m) / np.sqrt(CFG.n_ant)
    a = nf.nearfield_steering(th, r, CFG.n_ant, CFG.spacing_m, CFG.wavelength_m)
    assert np.allclose(a, ref, atol=1e-9)
    assert np.linalg.norm(a) == pytest.approx(1.0)


def test_channel_normalisation_and_shapes():
    H = nf.generate_channels(np.random.default_rng(0), CFG, 400)
    assert H.shape == (400, CFG.n_ant, CFG.n_subcarriers) and H.dtype == np.complex64
    assert np.mean(np.abs(H) ** 2) == pytest.approx(1.0, abs=0.1)


def test_single_path_channel_matches_formula():
    paths = {"theta": np.array([[0.2]]), "r": np.array([[12.0]]), "tau": np.array([[40e-9]]),
             "gain": np.array([[0.5 - 0.5j]])}
    cfg = CFG.replace(n_paths=1)
    H = nf.channel_from_paths(paths, cfg)[0]
    b = nf.nearfield_steering(0.2, 12.0, cfg.n_ant, cfg.spacing_m, cfg.wavelength_m)
    ph = np.exp(-2j * np.pi * 40e-9 * cfg.subcarrier_offsets_hz())
    assert np.allclose(H, np.sqrt(cfg.n_ant) * (0.5 - 0.5j) * np.outer(b, ph), atol=1e-5)
    # rank one across subcarriers (common support), unit-norm spatial signature
    assert np.linalg.matrix_rank(H, tol=1e-3 * np.abs(H).max()) == 1


def test_far_field_config_and_beam_squint():
    rng = np.random.default_rng(3)
    paths = nf.draw_paths(rng, CFG, 20)
    Hf = nf.channel_from_paths(paths, CFG.replace(far_field=True))
    paths_far = dict(paths, r=np.full_like(paths["r"], 1e9))
    Hn = nf.channel_from_paths(paths_far, CFG)
    assert np.allclose(Hf, Hn, atol=1e-3)
    # beam squint at 0.1 % fractional bandwidth is a small perturbation, not zero
    Hs = nf.channel_from_paths(paths, CFG.replace(beam_squint=True))
    Hc = nf.channel_from_paths(paths, CFG)
    rel = np.sum(np.abs(Hs - Hc) ** 2) / np.sum(np.abs(Hc) ** 2)
    assert 1e-6 < rel < 1e-2


def test_combiners_and_observations():
    rng = np.random.default_rng(1)
    W = nf.random_combiners(rng, 4, CFG.n_rf, CFG.n_ant, batch=2)
    assert W.shape == (2, 4, CFG.n_rf, CFG.n_ant)
    assert np.allclose(np.abs(W), 1 / np.sqrt(CFG.n_ant))
    W1 = nf.random_combiners(rng, 4, CFG.n_rf, CFG.n_ant, phase_bits=1)
    assert set(np.round(W1.real.ravel() * np.sqrt(CFG.n_ant), 6)) <= {-1.0, 1.0}
    H = nf.generate_channels(rng, CFG, 2)
    Y0 = nf.observe(rng, H, W, 0.0)
    assert np.allclose(Y0, np.einsum("bprn,bnk->bprk", W, H), atol=1e-4)
    # noise after combining: W_p n has covariance noise_var W_p W_p^H
    Y = nf.observe(rng, np.zeros((2000, CFG.n_ant, 1), np.complex64), W[0], 0.5)
    C = np.einsum("bpr,bps->prs", Y[..., 0], Y[..., 0].conj()) / 2000
    Cref = 0.5 * np.einsum("prn,psn->prs", W[0], W[0].conj())
    assert np.max(np.abs(C - Cref)) < 0.06


def test_uplink_pilots_layout():
    up = nf.uplink_pilots(np.random.default_rng(2), CFG.replace(n_users=3), n_pilots=5, snr_db=10, n_frames=2)
    assert up.H.shape == (2, 3, 256, CFG.n_subcarriers)
    assert up.W.shape == (2, 5, 16, 256)
    assert up.Y.shape == (2, 3, 5, 16, CFG.n_subcarriers)
    H, W, Y = up.per_user()
    assert H.shape[0] == W.shape[0] == Y.shape[0] == 6
    assert np.array_equal(W[0], W[2]) and not np.array_equal(W[0], W[3])  # shared within a frame
    assert up.noise_var == pytest.approx(0.1)
