"""Training: the loss is the bit cross-entropy at each frame's best LLR scale; runs are seeded,
checkpointed with plain tensors and resumable; a different config is refused."""
import dataclasses

import numpy as np
import pytest
import torch

from gnuradio.gdm import FrameSpec
from gnuradio.gdm.denoising.tiny import tiny_config, tiny_model
from gnuradio.gdm.denoising.train import bit_bce, frame_scale, bit_llrs, load_checkpoint, model_from_checkpoint, train
from gnuradio.gdm.ofdm import qam

SPEC = FrameSpec.preset("nr72")


def _gaussian_frames(n=4, nv=0.05, seed=0):
    rng = np.random.default_rng(seed)
    x = qam.constellation("16qam")[rng.integers(0, 16, (n, 14, 72))]
    y = x + np.sqrt(nv / 2) * (rng.standard_normal(x.shape) + 1j * rng.standard_normal(x.shape))
    out = torch.from_numpy(np.stack([y.real, y.imag, np.full(x.shape, np.log(nv))], 1).astype(np.float32))
    return out, x


def test_frame_scale_is_the_cross_entropy_minimum():
    out, x = _gaussian_frames()
    llr, sign = bit_llrs(out, x, "16qam")
    mask = torch.from_numpy(SPEC.data_mask)
    t = frame_scale(llr, sign, mask)
    bce = lambda s: (torch.nn.functional.softplus(-sign * llr * s) * mask[None, :, :, None]).sum((1, 2, 3))  # noqa: E731
    for f in (0.8, 1.25):
        assert (bce(t) <= bce(t * f) + 1e-3).all()
    assert ((t - 1).abs() < 0.15).all()  # the true variance is (close to) the best scale on AWGN


def test_free_scale_makes_the_loss_nearly_blind_to_a_frame_variance_error():
    out, x = _gaussian_frames()
    wrong = out.clone()
    wrong[:, 2] += 2.0  # variance e^2 times too large: exact LLRs flatten, not only scale
    a, b = float(bit_bce(out, x, SPEC, "16qam")), float(bit_bce(wrong, x, SPEC, "16qam"))
    fixed = float(bit_bce(wrong, x, SPEC, "16qam", free_scale=False))
    assert a <= b + 1e-6 and b - a < 0.2 * (fixed - a)


def test_checkpoint_is_plain_tensors_and_tagged_as_denoiser():
    ck_path, _ = tiny_model()
    ck = torch.load(ck_path, weights_only=True)
    assert ck["kind"] == "denoiser" and ck["step"] == tiny_config("x").steps
    assert ck["history"] and "bce_net0" in ck["history"][-1] and "w_bce_classical0" in ck["history"][-1]
    net, cfg = model_from_checkpoint(ck_path)
    assert cfg.width == 8


def test_interrupted_run_resumes_to_the_same_weights(tmp_path):
    cfg = dataclasses.replace(tiny_config(tmp_path / "a"), steps=2, val_every=2)
    train(cfg)
    other = dataclasses.replace(cfg, out_dir=str(tmp_path / "b"))
    train(other, until=1)
    assert load_checkpoint(tmp_path / "b" / "checkpoint.pt")["step"] == 1
    train(other)
    a, b = (load_checkpoint(tmp_path / n / "checkpoint.pt") for n in ("a", "b"))
    assert b["step"] == 2
    for k in a["model"]:
        assert torch.equal(a["model"][k], b["model"][k]), k


def test_resume_refuses_a_different_config(tmp_path):
    cfg = dataclasses.replace(tiny_config(tmp_path), steps=1, val_every=1)
    train(cfg)
    with pytest.raises(ValueError, match="differs in \\['lr'\\]"):
        train(dataclasses.replace(cfg, lr=1e-4))


def test_estimator_checkpoint_is_refused_by_the_denoiser_export():
    from gnuradio.gdm.models.tiny import tiny_model as est_tiny

    with pytest.raises(ValueError, match="not a symbol-denoiser checkpoint"):
        model_from_checkpoint(est_tiny()[0])
