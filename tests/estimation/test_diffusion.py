"""The diffusion estimator end to end on a tiny model trained in the test session (train ->
export -> onnxruntime -> estimator), its guard, fallback and sampling; and the shipped model's
held-out accuracy."""
import logging

import numpy as np
import pytest

from gnuradio.gdm import FrameSpec, estimation
from gnuradio.gdm.models.tiny import tiny_model
from gnuradio.gdm.sim.awgn import complex_noise
from gnuradio.gdm.sim.grid import ChannelConfig, ChannelMix, grid_channels

SPEC = FrameSpec.preset("nr72")


@pytest.fixture(scope="module")
def tiny():
    return tiny_model()[1]


def _frames(n, n_rx=1, n_tx=1, cfg=None, nv=0.01, seed=0):
    rng = np.random.default_rng(seed)
    spec = SPEC.replace(n_tx=n_tx)
    H = grid_channels(spec, cfg or ChannelMix().sample(rng, n), n if cfg else None, n_rx=n_rx, rng=rng)
    X = np.stack([spec.pilot_values(t) for t in range(n_tx)])  # data REs do not matter here
    Y = np.einsum("brtsk,tsk->brsk", H, X) + complex_noise(rng, (n, n_rx, 14, 72), nv)
    return H, Y.astype(np.complex64)


def _nmse_db(a, b):
    return 10 * np.log10(np.sum(np.abs(a - b) ** 2) / np.sum(np.abs(b) ** 2))


@pytest.mark.parametrize("n_rx,n_tx", [(1, 1), (2, 2)])
def test_end_to_end_shapes_accuracy_and_determinism(tiny, n_rx, n_tx):
    H, Y = _frames(12, n_rx, n_tx)
    est = estimation.make("diffusion", SPEC, n_rx=n_rx, n_tx=n_tx, model=tiny, device="cpu")
    out = est.estimate(Y, 0.01)
    assert out.shape == (12, n_rx, n_tx, 14, 72) and out.dtype == np.complex64
    interp = estimation.make("ls_interp", SPEC, n_rx=n_rx, n_tx=n_tx).estimate(Y, 0.01)
    assert _nmse_db(out, H) < _nmse_db(interp, H) - 3  # the bank conditioning works even untrained
    np.testing.assert_array_equal(out, est.estimate(Y, 0.01))
    info = est.last_info
    assert info["fallback"].shape == (12,) and not info["fallback"].any()
    assert (info["steps"] == 1).all() and info["device"] == "cpu"


def test_nan_inference_falls_back_per_frame_with_warning_and_counter(tiny, caplog):
    H, Y = _frames(6)
    est = estimation.make("diffusion", SPEC, model=tiny)
    real = est.model.run

    def poisoned(**kw):
        out = real(**kw)
        out[1] = np.nan  # the second link of every batch
        return out

    est.model.run = poisoned
    with caplog.at_level(logging.WARNING):
        out = est.estimate(Y, 0.01)
    assert np.isfinite(out).all()
    assert est.last_info["fallback"].tolist() == [False, True, False, False, False, False]
    assert est.fallback_count == 1 and "not finite" in caplog.text

    def broken(**kw):
        raise RuntimeError("device lost")

    est.model.run = broken
    out = est.estimate(Y, 0.01)
    assert np.isfinite(out).all() and est.last_info["fallback"].all() and est.fallback_count == 7
    bank = estimation.make("bank", SPEC, grid=est.cond.post.grid, top=est.cond.post.top).estimate(Y, 0.01)
    np.testing.assert_allclose(out, bank, atol=1e-5)


def test_guard_on_a_delay_spread_outside_the_training_range(tiny):
    H, Y = _frames(20, cfg=ChannelConfig("TDL-C", 3000e-9, 10.0), nv=1e-3)
    interp = estimation.make("ls_interp", SPEC).estimate(Y, 1e-3)
    unguarded = estimation.make("diffusion", SPEC, model=tiny, guard=False).estimate(Y, 1e-3)
    assert _nmse_db(unguarded, H) > _nmse_db(interp, H) + 3  # the prior smooths the channel away
    est = estimation.make("diffusion", SPEC, model=tiny, guard_fallback="ls_interp")
    out = est.estimate(Y, 1e-3)
    g = est.last_info["guard"]
    assert g.mean() > 0.8 and (est.last_info["pilot_risk"][g] > 0.8).all()
    np.testing.assert_allclose(out[g], interp[g], atol=1e-6)
    # default fallback: pilot-consistent (pilot rows = LS), as good as LS/interp here
    est = estimation.make("diffusion", SPEC, model=tiny)
    out = est.estimate(Y, 1e-3)
    rows = np.flatnonzero(SPEC.pilot_mask(0).any(1))
    g = est.last_info["guard"]
    np.testing.assert_allclose(out[g][..., rows, :], interp[g][..., rows, :], atol=1e-5)
    assert _nmse_db(out, H) < _nmse_db(interp, H) + 0.3
    # trained range: hardly ever guarded
    _, Y = _frames(40, cfg=ChannelConfig("TDL-C", 300e-9, 50.0), nv=1e-2)
    est.estimate(Y, 1e-2)
    assert est.last_info["guard"].mean() < 0.1


def test_zero_steps_and_latency_budget(tiny):
    H, Y = _frames(4)
    bank = estimation.make("diffusion", SPEC, model=tiny, steps=0).estimate(Y, 0.01)
    ref = estimation.make("bank", SPEC, top=4, grid=estimation.make("diffusion", SPEC, model=tiny).cond.post.grid)
    np.testing.assert_allclose(bank, ref.estimate(Y, 0.01), atol=1e-5)
    est = estimation.make("diffusion", SPEC, model=tiny, latency_budget_ms=1e-3)
    est.estimate(Y, 0.01)  # first call measures costs
    est.estimate(Y, 0.01)
    assert (est.last_info["steps"] == 0).all()


def test_posterior_sampling_gives_seeded_per_re_variance(tiny):
    H, Y = _frames(3)
    est = estimation.make("diffusion", SPEC, model=tiny)
    m1, v1 = est.sample(Y, 0.01, n_samples=4, steps=3, seed=5)
    m2, v2 = est.sample(Y, 0.01, n_samples=4, steps=3, seed=5)
    m3, _ = est.sample(Y, 0.01, n_samples=4, steps=3, seed=6)
    assert m1.shape == H.shape and v1.shape == H.shape and (v1 >= 0).all() and v1.mean() > 0
    np.testing.assert_array_equal(m1, m2)
    assert not np.array_equal(m1, m3)


# Held-out NMSE of the shipped model on 300 frames of the mix (seed 4242, never used in
# training), recorded when the model was exported; recomputed here with the shipped file
# (checksum-verified default path). A retrained or corrupted model moves these. (With 64
# mixture components, before the cap at 32: -15.14 / -22.01 / -25.01.)
SHIPPED_NMSE_DB = {0.0: -15.09, 10.0: -22.00, 20.0: -25.01}


def test_shipped_model_heldout_nmse():
    from gnuradio.gdm.models.evaluate import evaluate_nmse

    rows = evaluate_nmse(["lmmse", "diffusion"], ChannelMix(), snrs=tuple(SHIPPED_NMSE_DB), n_frames=300,
                         seed=4242, progress=False)
    v = {(r["estimator"], r["snr_db"]): r["value"] for r in rows}
    for snr, want in SHIPPED_NMSE_DB.items():
        assert abs(v["diffusion", snr] - want) < 0.3, (snr, v["diffusion", snr], want)
        assert v["diffusion", snr] < v["lmmse", snr] - 0.8, (snr, v)


def test_shipped_model_loads_by_default_with_verified_checksum():
    est = estimation.make("diffusion", SPEC, n_rx=2)
    assert est.model.sha256 is not None and est.model.path.name == "gdm_chanest_nr72.onnx"


def test_warm_up_runs_every_batch_bucket():
    est = estimation.make("diffusion", FrameSpec.preset("nr72"), 1, device="cpu")
    seen = []
    run = est.model.run
    est.model.run = lambda **kw: seen.append(len(kw["x"])) or run(**kw)
    est.warm_up()
    # every bucket once, then the one link of the noise-only frame that loads the bank kernel
    assert seen == list(est.buckets) + [est.buckets[0]]
    assert est.last_info == {} and est.fallback_count == 0  # a warm-up is not an estimate
