import numpy as np

from gnuradio.gdm import FrameSpec
from gnuradio.gdm.ofdm.compensation import BlindIQCompensator, cpe_correct
from gnuradio.gdm.ofdm.transceiver import random_payload, transmit
from gnuradio.gdm.sim.impairments import IQImbalance


def test_cpe_removes_per_symbol_rotation():
    spec = FrameSpec.preset("nr72")
    _, grids, _ = transmit([random_payload(i, 100) for i in range(4)], range(4), spec)
    rot = np.exp(1j * np.random.default_rng(0).uniform(-0.3, 0.3, (4, 1, spec.n_sym, 1)))
    noisy = grids * rot + 0.05 * (np.random.default_rng(1).standard_normal(grids.shape) + 0j)
    fixed = cpe_correct(noisy, np.full(grids.shape, 0.0025), spec)
    d = spec.data_mask
    err_before = np.mean(np.abs(noisy[..., d] - grids[..., d]) ** 2)
    err_after = np.mean(np.abs(fixed[..., d] - grids[..., d]) ** 2)
    assert err_after < 0.1 * err_before


def test_blind_iq_compensation_restores_image_rejection():
    rng = np.random.default_rng(2)
    x = ((rng.standard_normal((1, 200000)) + 1j * rng.standard_normal((1, 200000))) / np.sqrt(2)).astype(np.complex64)
    iq = IQImbalance(1.0, 5.0)
    y = iq.process(x)
    comp = BlindIQCompensator(1, memory=5e4)
    z = np.concatenate([comp.process(y[:, i:i + 10000]) for i in range(0, y.shape[1], 10000)], axis=1)
    circ = lambda v: abs(np.mean(v[:, -50000:] ** 2)) / np.mean(np.abs(v[:, -50000:]) ** 2)  # noqa: E731
    assert circ(y) > 0.05 and circ(z) < 0.01


def test_tracking_cpe_follows_a_phase_walk_that_defeats_per_symbol_decisions():
    spec = FrameSpec.preset("nr72")
    _, grids, _ = transmit([random_payload(i, 100) for i in range(8)], range(8), spec)
    rng = np.random.default_rng(3)
    # a random walk of 0.15 rad per symbol away from the pilot symbols 2 and 11, where the channel
    # estimate has absorbed the phase
    walk = np.zeros((8, 1, spec.n_sym))
    for s in (1, 0):
        walk[..., s] = walk[..., s + 1] + rng.normal(0, 0.15, (8, 1))
    for s in (*range(3, 11), 12, 13):
        walk[..., s] = (walk[..., s - 1] if s != 12 else 0) + rng.normal(0, 0.15, (8, 1))
    noisy = grids * np.exp(1j * walk)[..., None] + 0.03 * (rng.standard_normal(grids.shape) + 0j)
    v = np.full(grids.shape, 1e-3)
    d = spec.data_mask
    err = lambda y: np.mean(np.abs(y[..., d] - grids[..., d]) ** 2)  # noqa: E731
    plain, tracked = cpe_correct(noisy, v, spec), cpe_correct(noisy, v, spec, iterations=3, track=True)
    assert np.mean(np.abs(walk) > 0.4) > 0.1  # beyond 16-QAM's decision angle
    assert err(tracked) < 0.2 * err(plain)
    assert err(tracked) < 3e-3
