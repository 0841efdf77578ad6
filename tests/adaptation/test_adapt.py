"""Site adaptation end to end: a small run improves the NMSE on frames it never saw, the exported
model says where it came from, the shipped model is untouched, and the guard rejects a broken
adaptation."""
import json

import numpy as np
import pytest

from gnuradio.gdm import FrameSpec, estimation
from gnuradio.gdm.adaptation import adapt as ad
from gnuradio.gdm.adaptation.guard import validate
from gnuradio.gdm.adaptation.observations import from_profile
from gnuradio.gdm.models.data import EVAL_PURPOSE, purpose_rng
from gnuradio.gdm.models.evaluate import received
from gnuradio.gdm.runtime import shipped_model
from gnuradio.gdm.runtime.checksums import sha256_file, verify
from gnuradio.gdm.sim.grid import ChannelConfig, grid_channels

SPEC = FrameSpec.preset("nr72")
LONG = ChannelConfig("TDL-C", 2000e-9, 0.0)  # delay spread twice the trained maximum


@pytest.fixture(scope="module")
def adapted():
    obs = from_profile(LONG, 20, 40, SPEC, seed=11)  # 30 to adapt, 10 held out
    return obs, ad.adapt(obs)


def _nmse(H_hat, H):
    return 10 * np.log10(np.sum(np.abs(H_hat - H) ** 2) / np.sum(np.abs(H) ** 2))


def test_small_adaptation_improves_nmse_on_unseen_frames(adapted, tmp_path):
    obs, result = adapted
    before = sha256_file(shipped_model())
    assert result.accepted and result.guard.gain_db > 3
    path = ad.export(result, tmp_path / "site.onnx", command="test")
    rng = purpose_rng(2024, EVAL_PURPOSE)  # evaluation frames: another random stream than adaptation
    H = grid_channels(SPEC, LONG, 40, rng=rng)
    Y = received(SPEC, H, 0.01, rng)
    shipped = estimation.make("diffusion", SPEC, 1, device="cpu").estimate(Y, 0.01)
    site = estimation.make("diffusion", SPEC, 1, device="cpu", model=path)
    out = site.estimate(Y, 0.01)
    assert _nmse(out, H) < _nmse(shipped, H) - 3
    # provenance, and the shipped model stays as shipped
    meta = site.adapted
    assert meta["adapted_from"] == {"file": "gdm_chanest_nr72.onnx", "sha256": before}
    assert meta["data"]["kind"] == "simulated" and meta["data"]["seed"] == 11
    assert meta["frames_adapt"] == 30 and meta["frames_heldout"] == 10 and meta["command"] == "test"
    assert meta["guard"]["accepted"] and meta["site"]["n_frames"] == 30
    assert meta["adapted_parameters"]["network_weights"] == 0 and meta["adapted_parameters"]["total"] < 1000
    assert "heldout_nmse_db" not in site.model.metadata and "base_heldout_nmse_db" in site.model.metadata
    bank = json.loads(site.model.metadata["conditioning"])["bank"]
    assert len(bank["site"]["log_prior"]) == 10 * 50 and bank["site"]["delay_profiles"][0]["powers"]
    assert sha256_file(shipped_model()) == before and verify(shipped_model())
    with pytest.raises(ValueError, match="is the base model"):
        ad.export(result, shipped_model())


def test_guard_rejects_a_broken_adaptation(adapted, tmp_path):
    obs, result = adapted
    held = obs.take(slice(30, None))
    # a site prior that is wrong in both delay (one path at 15 us) and Doppler (900 Hz), with all
    # the prior weight on it: what a bug or corrupted data could produce
    T, F = result.base_grid.n_t + 1, result.base_grid.n_f + 1
    logw = np.full((T, F), -50.0)
    logw[-1, -1] = 0.0
    broken = result.base_grid.with_site([([15e-6], [1.0])], [(900.0, 0.0)], logw)
    report = validate(result.base_grid, broken, held)
    assert not report.accepted and report.risk_adapted > report.risk_base
    bad = ad.Adaptation(**{**result.__dict__, "grid": broken, "guard": report})
    with pytest.raises(ValueError, match="rejected by the guard"):
        ad.export(bad, tmp_path / "bad.onnx")
    assert not (tmp_path / "bad.onnx").exists()
    assert validate(result.base_grid, result.grid, held).accepted  # the real one passes the same test
