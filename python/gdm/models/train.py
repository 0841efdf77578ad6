"""Training of the conditional diffusion denoiser: ``train(TrainConfig(...)) -> checkpoint path``.

Channels are generated on the fly from the mix (no dataset on disk); every random draw comes from
seeded generators whose state is checkpointed, so an interrupted run resumes where it stopped
(``resume=True``) and a finished run can be reproduced from its config. Checkpoints are plain
tensors and containers, loadable with ``torch.load(..., weights_only=True)``.
"""
from __future__ import annotations

import dataclasses
import json
import math
import os
import time
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from ..frame import FrameSpec
from ..metrics.core import nmse_db
from ..sim.awgn import complex_noise, noise_var_for_snr
from ..sim.grid import ChannelMix
from ..estimation.bank import BankGrid
from .data import NoiseLevels, TRAIN_PURPOSE, link_channels, make_batch, purpose_rng
from .features import Conditioner, from_planes, to_planes
from .network import START_FLAG, NetConfig, make_denoiser, n_params

VAL_PURPOSE = 0x5A1


@dataclasses.dataclass
class TrainConfig:
    out_dir: str = "out/train"
    preset: str = "nr72"
    steps: int = 3000
    batch: int = 64
    lr: float = 2e-3
    lr_final: float = 0.05  # cosine decay to this fraction of lr
    ema: float = 0.998
    seed: int = 1
    # the shipped model: the patch body (arch "unet", widths (24, 32, 48) is the earlier
    # U-Net, ~15x the CPU per link for the same held-out NMSE; see the model card)
    widths: tuple = (24,)
    arch: str = "patch"
    blocks: int = 3
    emb: int = 64
    profiles: tuple = ("TDL-A", "TDL-B", "TDL-C")
    delay_spread: tuple = (10e-9, 1000e-9)
    doppler: tuple = (0.0, 400.0)
    timing_jitter: float = 0.0
    snr_db: tuple = (-10.0, 35.0)
    pattern_p: tuple = (0.6, 0.2, 0.2)  # one stream / comb of stream 0 / comb of stream 1
    sigma_lo: float = 0.1
    sigma_hi: float = 50.0
    p_start: float = 0.5
    start_scale: float = 3.0
    bank_n_ds: int = 16
    bank_n_fd: int = 9
    bank_top: int = 64
    threads: int = 1
    ckpt_every: int = 200
    val_every: int = 250
    val_frames: int = 256
    resume: bool = True
    progress: bool = True

    def mix(self) -> ChannelMix:
        return ChannelMix(tuple(self.profiles), tuple(self.delay_spread), tuple(self.doppler), self.timing_jitter)

    def spec(self) -> FrameSpec:
        return FrameSpec.preset(self.preset)

    def bank_grid(self) -> BankGrid:
        return BankGrid(tuple(self.profiles), tuple(self.delay_spread), tuple(self.doppler),
                        self.bank_n_ds, self.bank_n_fd)

    def net(self) -> NetConfig:
        return NetConfig(tuple(self.widths), self.emb, self.arch, self.blocks)

    def levels(self) -> NoiseLevels:
        return NoiseLevels(self.sigma_lo, self.sigma_hi, self.p_start)

    def to_dict(self) -> dict:
        return json.loads(json.dumps(dataclasses.asdict(self)))

    @classmethod
    def from_dict(cls, d: dict) -> "TrainConfig":
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in d.items() if k in known})


def load_checkpoint(path) -> dict:
    """A training checkpoint (weights_only: tensors and plain containers only)."""
    return torch.load(Path(path), map_location="cpu", weights_only=True)


def model_from_checkpoint(path_or_ckpt, ema: bool = True) -> tuple[torch.nn.Module, TrainConfig]:
    ck = load_checkpoint(path_or_ckpt) if not isinstance(path_or_ckpt, dict) else path_or_ckpt
    cfg = TrainConfig.from_dict(ck["config"])
    net = make_denoiser(cfg.net())
    net.load_state_dict(ck["ema" if ema else "model"])
    net.eval()
    return net, cfg


def _tensors(batch: dict) -> dict:
    return {k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in batch.items()}


def validation_set(cfg: TrainConfig, cond: Conditioner, snrs=(0, 10, 20, 30)) -> list[dict]:
    """Fixed frames of the one-stream pattern at a few SNRs, for progress reports."""
    rng = purpose_rng(cfg.seed, VAL_PURPOSE)
    pat = cond.pattern(cond.training_patterns()[0])
    r, c = pat.bank.rows, pat.bank.cols
    out = []
    for snr in snrs:
        H = link_channels(cond.spec, cfg.mix(), cfg.val_frames, rng)
        nv = np.full(cfg.val_frames, noise_var_for_snr(snr))
        ls = H[:, r[:, None], c[None, :]] + complex_noise(rng, (cfg.val_frames, r.size, c.size), nv[0])
        f = cond(ls, nv, pat)
        out.append(dict(snr=snr, H=H, f=f))
    return out


@torch.no_grad()
def validate(net: torch.nn.Module, val: list[dict]) -> dict:
    """NMSE (dB) of the bank mean and of one reverse step from the LS/interp start."""
    res = {}
    for v in val:
        f = v["f"]
        glob = f["glob"].copy()
        glob[:, START_FLAG] = 1.0
        d = net(torch.from_numpy(to_planes(f["interp"])), torch.from_numpy(f["sigma_start"]),
                torch.from_numpy(f["cond"]), torch.from_numpy(glob)).numpy()
        res[f"bank@{v['snr']}"] = round(nmse_db(f["mean"], v["H"]), 2)
        res[f"net@{v['snr']}"] = round(nmse_db(from_planes(d), v["H"]), 2)
    return res


def _save(path: Path, state: dict) -> None:
    tmp = path.with_suffix(".tmp")
    torch.save(state, tmp)
    os.replace(tmp, path)


def cosine_lr(opt, cfg, step: int) -> float:
    """Sets and returns the learning rate at ``step``: cosine decay from cfg.lr to cfg.lr * cfg.lr_final."""
    lr = cfg.lr * (cfg.lr_final + (1 - cfg.lr_final) * 0.5 * (1 + math.cos(math.pi * step / cfg.steps)))
    for g in opt.param_groups:
        g["lr"] = lr
    return lr


@torch.no_grad()
def ema_update(ema, net, step: int, rate: float) -> None:
    """Exponential moving average of the weights (what is exported), warmed up over the first
    steps so early weights do not linger."""
    decay = min(rate, (1 + step) / (10 + step))
    for pe, p in zip(ema.parameters(), net.parameters()):
        pe.mul_(decay).add_(p.detach(), alpha=1 - decay)


def resume(ck: dict, ck_path, cfg, net, ema, opt, rng) -> tuple[int, list, float]:
    """Restores an interrupted run in place (weights, optimiser, both random streams); refuses a
    checkpoint of another config. Returns (step, history, elapsed_s)."""
    if ck["config"] != cfg.to_dict():
        changed = sorted(k for k in ck["config"] if ck["config"][k] != cfg.to_dict().get(k))
        raise ValueError(f"{ck_path} was written by a different config (differs in {changed}); "
                         "use another out_dir or resume=False")
    net.load_state_dict(ck["model"])
    ema.load_state_dict(ck["ema"])
    opt.load_state_dict(ck["opt"])
    rng.bit_generator.state = ck["rng"]
    torch.set_rng_state(ck["torch_rng"])
    return ck["step"], ck["history"], ck.get("elapsed_s", 0.0)


def train(config: TrainConfig, until: int | None = None) -> Path:
    """Train (or resume) and return the path of the checkpoint ``<out_dir>/checkpoint.pt``.
    ``until``: stop (with a checkpoint) after that many steps, as an interruption would."""
    cfg = config
    torch.set_num_threads(cfg.threads)
    out = Path(cfg.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    ck_path = out / "checkpoint.pt"
    spec = cfg.spec()
    cond = Conditioner(spec, cfg.bank_grid(), cfg.bank_top, cfg.start_scale)
    torch.manual_seed(cfg.seed)
    net = make_denoiser(cfg.net())
    ema = make_denoiser(cfg.net())
    ema.load_state_dict(net.state_dict())
    opt = torch.optim.Adam(net.parameters(), lr=cfg.lr)
    rng = purpose_rng(cfg.seed, TRAIN_PURPOSE)
    step, history, elapsed = 0, [], 0.0
    if cfg.resume and ck_path.exists():
        step, history, elapsed = resume(load_checkpoint(ck_path), ck_path, cfg, net, ema, opt, rng)
    val = validation_set(cfg, cond)

    def state():
        return dict(model=net.state_dict(), ema=ema.state_dict(), opt=opt.state_dict(), step=step,
                    config=cfg.to_dict(), rng=rng.bit_generator.state, torch_rng=torch.get_rng_state(),
                    history=history, elapsed_s=elapsed, n_params=n_params(net))

    bar = tqdm(total=cfg.steps, initial=step, disable=not cfg.progress, desc="train", unit="step")
    t0 = time.time() - elapsed
    loss_avg = None
    stop = cfg.steps if until is None else min(until, cfg.steps)
    while step < stop:
        lr = cosine_lr(opt, cfg, step)
        b = _tensors(make_batch(cond, cfg.mix(), cfg.batch, rng, tuple(cfg.snr_db), tuple(cfg.pattern_p),
                                cfg.levels()))
        net.train()
        d = net(b["x"], b["sigma"], b["cond"], b["glob"])
        # D-space MSE, uniform over REs (the metric), normalised per frame by the error of the
        # Gaussian (F = 0) denoiser, so every SNR and noise level weighs alike.
        s2 = torch.exp(2 * b["cond"][:, 2:3])
        sg2 = (b["sigma"] ** 2)[:, None, None, None]
        ref = (s2 * sg2 / (s2 + sg2)).mean((1, 2, 3))
        loss = (((d - b["target"]) ** 2).sum(1).mean((1, 2)) / ref).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(net.parameters(), 1.0)
        opt.step()
        ema_update(ema, net, step, cfg.ema)
        step += 1
        loss_avg = loss.item() if loss_avg is None else 0.98 * loss_avg + 0.02 * loss.item()
        bar.update(1)
        bar.set_postfix(loss=f"{loss_avg:.3f}", lr=f"{lr:.1e}")
        if step % cfg.val_every == 0 or step == cfg.steps:
            ema.eval()
            rec = dict(step=step, loss=round(loss_avg, 4), **validate(ema, val))
            history.append(rec)
            bar.write(json.dumps(rec))
        if step % cfg.ckpt_every == 0 or step == cfg.steps:
            elapsed = time.time() - t0
            _save(ck_path, state())
    bar.close()
    elapsed = time.time() - t0
    _save(ck_path, state())
    return ck_path


def config_from_args(argv=None, cls=None, description: str = "train the gr-gdm diffusion channel estimator"):
    """``--field value`` for every field of a training config dataclass (default TrainConfig;
    tuples as comma lists), e.g. ``python -m gnuradio.gdm.models.train --out-dir out/train
    --steps 1000``."""
    import argparse

    cls = cls or TrainConfig
    p = argparse.ArgumentParser(description=description)
    for f in dataclasses.fields(cls):
        flag = "--" + f.name.replace("_", "-")
        if f.type in ("bool", bool):
            p.add_argument(flag, type=lambda v: v.lower() in ("1", "true", "yes"), default=f.default)
        elif f.type in ("tuple", tuple):
            p.add_argument(flag, type=lambda v: tuple(_scalar(x) for x in v.split(",")), default=f.default)
        else:
            p.add_argument(flag, type=type(f.default), default=f.default)
    return cls(**vars(p.parse_args(argv)))


def _scalar(text: str):
    """'3' -> 3, '1e-8' -> 1e-08, 'TDL-A' -> 'TDL-A'."""
    for conv in (int, float):
        try:
            return conv(text)
        except ValueError:
            pass
    return text


if __name__ == "__main__":
    print(train(config_from_args()))
