"""Training frames come from the link simulator: matched to what was sent, seeded, with the
impairments the scenario asks for."""
import numpy as np

from gnuradio.gdm import FrameSpec
from gnuradio.gdm.denoising.data import EVAL_PURPOSE, TRAIN_PURPOSE, ImpairmentMix, LinkMix, link_frames, mixed_frames, purpose_rng

SPEC = FrameSpec.preset("nr72")


def _scenario(**over):
    sc = dict(profile="TDL-A", delay_spread=30e-9, doppler=10.0, cfo_hz=300.0, snr_db=25.0, n_rx=2,
              estimator="lmmse", impairments={}, iq_compensation=False, seed=3)
    sc.update(over)
    return sc


def test_link_frames_are_the_transmitted_frames_equalized():
    f = link_frames(SPEC, _scenario(), 6, np.random.default_rng(0))
    assert f["z"].shape == (6, 1, 14, 72) and f["v"].shape == f["z"].shape and f["nv"].shape == (6,)
    d = SPEC.data_mask
    err = np.mean(np.abs(f["z"][..., d] - f["x"][..., d]) ** 2)
    assert err < 10 ** (-20 / 10)  # 25 dB SNR, 1x2: equalized symbols sit on what was sent


def test_impairments_reach_the_equalized_symbols():
    rng = np.random.default_rng(0)
    clean = link_frames(SPEC, _scenario(), 6, rng)
    pn = link_frames(SPEC, _scenario(impairments={"phase_noise": "wiener", "pn_linewidth_hz": 300.0}), 6, rng)
    d = SPEC.data_mask
    mse = lambda f: np.mean(np.abs(f["z"][..., d] - f["x"][..., d]) ** 2)  # noqa: E731
    assert mse(pn) > 5 * mse(clean)


def test_mixes_are_seeded_and_purposes_differ():
    a = LinkMix().sample(purpose_rng(1, TRAIN_PURPOSE))
    assert a == LinkMix().sample(purpose_rng(1, TRAIN_PURPOSE))
    assert a != LinkMix().sample(purpose_rng(1, EVAL_PURPOSE))
    kinds = [ImpairmentMix().sample(np.random.default_rng(i))[0] for i in range(200)]
    assert 0.1 < np.mean([not k for k in kinds]) < 0.4  # clean share (p_clean plus all-off draws)
    assert any(k.get("pa") == "saleh" for k in kinds) and any(k.get("phase_noise") == "mask" for k in kinds)


def test_mixed_frames_fill_the_batch():
    f = mixed_frames(SPEC.replace(modulation="qpsk"), LinkMix(snr_db=(15.0, 25.0)), 10, np.random.default_rng(2),
                     per_scenario=4)
    assert len(f["z"]) == 10 and np.isfinite(f["z"]).all()
