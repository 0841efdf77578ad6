"""Training: seeded, checkpointed with plain tensors, resumable."""
import dataclasses

import pytest
import torch

from gnuradio.gdm.models.tiny import tiny_config, tiny_model
from gnuradio.gdm.models.train import load_checkpoint, train


def test_checkpoint_loads_weights_only_and_records_progress():
    ck_path, _ = tiny_model()
    ck = torch.load(ck_path, weights_only=True)
    assert ck["step"] == tiny_config("x").steps
    assert ck["history"] and "net@10" in ck["history"][-1]
    assert set(ck["model"]) == set(ck["ema"])


def test_interrupted_run_resumes_to_the_same_weights(tmp_path):
    cfg = dataclasses.replace(tiny_config(tmp_path / "a"), steps=4, ckpt_every=1)
    train(cfg)
    other = dataclasses.replace(cfg, out_dir=str(tmp_path / "b"))
    train(other, until=2)
    assert load_checkpoint(tmp_path / "b" / "checkpoint.pt")["step"] == 2
    train(other)  # resumes at step 2
    a = load_checkpoint(tmp_path / "a" / "checkpoint.pt")
    b = load_checkpoint(tmp_path / "b" / "checkpoint.pt")
    assert b["step"] == 4
    for k in a["model"]:
        assert torch.equal(a["model"][k], b["model"][k]), k


def test_resume_refuses_a_different_config(tmp_path):
    cfg = dataclasses.replace(tiny_config(tmp_path), steps=1)
    train(cfg)
    with pytest.raises(ValueError, match="differs in \\['lr'\\]"):
        train(dataclasses.replace(cfg, lr=1e-4))
