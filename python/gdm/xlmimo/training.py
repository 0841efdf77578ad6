"""Training of the XL-MIMO channel prior (denoising score matching with EDM weighting) on
channels simulated on the fly, so every batch is new data and nothing can be over-fitted.

    gr-gdm train --kind xlmimo --out out/train/prior.pt     # 30 CPU minutes, one thread

The checkpoint holds the model state (EMA weights), the architecture arguments, the channel
configuration (JSON), the seed, the number of channels seen, the sigma range and a table of the
denoiser's held-out NMSE per sigma (also the Tweedie MMSE estimate used by the sampler).
"""
from __future__ import annotations

import argparse
import copy
import json
import math
import time

import numpy as np
import torch

from ..sim.nearfield import NearFieldConfig, generate_channels
from .model import make_model, n_params

SIGMA_RANGE = (0.02, 3.0)   # the noise levels the OAMP sampler visits from 0 to 20 dB
EVAL_SIGMAS = (0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0)


def to_real(H: np.ndarray) -> torch.Tensor:
    """complex [B, N, K] -> float32 [B, 2, N, K]."""
    H = np.asarray(H)
    return torch.from_numpy(np.stack([H.real, H.imag], 1).astype(np.float32))


def to_complex(x) -> np.ndarray:
    x = x.detach().cpu().numpy() if torch.is_tensor(x) else np.asarray(x)
    return (x[:, 0] + 1j * x[:, 1]).astype(np.complex64)


def add_noise(h: torch.Tensor, sigma: torch.Tensor, gen: torch.Generator | None = None):
    """h + sigma * CN(0, 1) per complex entry (variance sigma^2 / 2 per real part)."""
    n = torch.randn(h.shape, generator=gen) * (sigma.view(-1, 1, 1, 1) / math.sqrt(2))
    return h + n


def sample_sigma(n: int, gen: torch.Generator, lo=SIGMA_RANGE[0], hi=SIGMA_RANGE[1]):
    u = torch.rand(n, generator=gen)
    return torch.exp(math.log(lo) + u * (math.log(hi) - math.log(lo)))


@torch.no_grad()
def evaluate_denoiser(model, H_val: np.ndarray, sigmas=EVAL_SIGMAS, seed: int = 123) -> dict:
    """Held-out denoising NMSE (dB) per sigma: E|D(h + sigma n) - h|^2 / E|h|^2."""
    model.eval()
    gen = torch.Generator().manual_seed(seed)
    h = to_real(H_val)
    out = {}
    for s in sigmas:
        sig = torch.full((h.shape[0],), float(s))
        x = add_noise(h, sig, gen)
        d = torch.cat([model(x[i:i + 16], sig[i:i + 16]) for i in range(0, h.shape[0], 16)])
        out[float(s)] = float(10 * torch.log10(((d - h) ** 2).sum() / (h ** 2).sum()))
    return out


def train(cfg: NearFieldConfig = NearFieldConfig(), minutes: float = 30.0, max_steps: int | None = None,
          batch: int = 16, lr: float = 2e-3, seed: int = 1, arch: dict | None = None,
          ema: float = 0.998, n_val: int = 128, log_every: int = 100, progress: bool = True,
          sigma_range=SIGMA_RANGE, threads: int = 1, init: dict | str | None = None) -> dict:
    """Train a denoiser prior for channels drawn from ``cfg``; stops after ``minutes`` of wall
    time or ``max_steps``. Returns a checkpoint dict (see module docstring)."""
    torch.set_num_threads(threads)
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    gen = torch.Generator().manual_seed(seed)
    arch = dict(arch or {})
    kind = arch.pop("kind", "unet2d")
    arch.setdefault("n_ant", cfg.n_ant)
    arch.setdefault("n_sc", cfg.n_subcarriers)
    if init is not None:                 # continue from a checkpoint (its architecture and weights)
        model, _, prev = load_model(init)
        arch = {k: v for k, v in prev["arch"].items() if k != "kind"}
        model.train()
    else:
        prev = None
        model = make_model(kind, **arch)
    ema_model = copy.deepcopy(model)
    for p in ema_model.parameters():
        p.requires_grad_(False)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    H_val = generate_channels(np.random.default_rng(seed + 10_000), cfg, n_val)
    budget = minutes * 60.0          # CPU time of this process (one core), not wall time
    t0 = time.time()
    c0 = time.process_time()
    step, seen, history = 0, 0, []
    loss_avg = None
    while True:
        elapsed = time.process_time() - c0
        if (max_steps is not None and step >= max_steps) or (max_steps is None and elapsed >= budget):
            break
        frac = min(elapsed / budget, 1.0) if max_steps is None else step / max_steps
        for g in opt.param_groups:       # cosine decay to 2 % with a short warm-up
            g["lr"] = lr * min(1.0, (step + 1) / 200) * (0.02 + 0.98 * 0.5 * (1 + math.cos(math.pi * frac)))
        h = to_real(generate_channels(rng, cfg, batch))
        sig = sample_sigma(batch, gen, *sigma_range)
        x = add_noise(h, sig, gen)
        model.train()
        d = model(x, sig)
        # EDM weighting: squared error relative to c_out^2 (~ sigma^2 at low noise)
        c_out2 = sig ** 2 * model.sigma_data ** 2 / (sig ** 2 + model.sigma_data ** 2)
        loss = (((d - h) ** 2).mean((1, 2, 3)) * 2 / c_out2).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        with torch.no_grad():
            decay = min(ema, (1 + step) / (10 + step))
            for pe, pm in zip(ema_model.parameters(), model.parameters()):
                pe.mul_(decay).add_(pm.detach(), alpha=1 - decay)
        step += 1
        seen += batch
        loss_v = float(loss.detach())
        loss_avg = loss_v if loss_avg is None else 0.98 * loss_avg + 0.02 * loss_v
        if progress and step % log_every == 0:
            print(f"step {step} cpu={elapsed / 60:.1f} min wall={(time.time() - t0) / 60:.1f} min "
                  f"loss {loss_avg:.4f}", flush=True)
        if step % (log_every * 10) == 0:
            ev = evaluate_denoiser(ema_model, H_val[:32])
            history.append({"step": step, "minutes": elapsed / 60, "loss": loss_avg, "val_nmse_db": ev})
            if progress:
                print("  val nmse_db", {k: round(v, 2) for k, v in ev.items()}, flush=True)
    ema_model.eval()
    val = evaluate_denoiser(ema_model, H_val)
    return {
        "state_dict": ema_model.state_dict(), "arch": {**arch, "ch": list(model.ch), "kind": kind},
        "cfg": cfg.to_json(), "seed": seed, "steps": step, "channels_seen": seen, "batch": batch,
        "minutes": (time.process_time() - c0) / 60, "wall_minutes": (time.time() - t0) / 60, "sigma_range": list(sigma_range),
        "val_nmse_db": val, "history": history, "n_params": n_params(model),
        "init": None if prev is None else {k: prev[k] for k in ("seed", "steps", "channels_seen", "minutes")},
        "torch": str(torch.__version__),
    }


def load_model(ckpt: dict | str):
    if isinstance(ckpt, str):
        # Checkpoints are plain containers and tensors; older ones also hold torch's version
        # object, a str subclass, which is allowed explicitly (weights_only refuses classes).
        with torch.serialization.safe_globals([torch.torch_version.TorchVersion]):
            ckpt = torch.load(ckpt, map_location="cpu", weights_only=True)
    arch = dict(ckpt["arch"])
    arch["ch"] = tuple(arch["ch"])
    m = make_model(arch.pop("kind", "unet2d"), **arch)
    m.load_state_dict(ckpt["state_dict"])
    m.eval()
    return m, NearFieldConfig.from_json(ckpt["cfg"]), ckpt


def main(argv=None):
    ap = argparse.ArgumentParser(prog="gr-gdm train --kind xlmimo",
                                 description="train the XL-MIMO diffusion channel prior")
    ap.add_argument("--minutes", type=float, default=30.0, help="CPU minutes (one thread)")
    ap.add_argument("--max-steps", type=int, default=None)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--ch", type=str, default="16,32,48,64")
    ap.add_argument("--kernel", type=int, default=5, help="conv kernel along the angle axis")
    ap.add_argument("--kernel-delay", type=int, default=3, help="conv kernel along the delay axis")
    ap.add_argument("--kind", default="unet2d", choices=["unet2d"])
    ap.add_argument("--cfg", type=str, default=None, help="NearFieldConfig JSON overrides")
    ap.add_argument("--sigma-range", type=str, default=",".join(map(str, SIGMA_RANGE)))
    ap.add_argument("--init", default=None, help="continue training this checkpoint (use another --seed)")
    ap.add_argument("--out", required=True)
    a = ap.parse_args(argv)
    cfg = NearFieldConfig()
    if a.cfg:
        cfg = cfg.replace(**{k: (tuple(v) if isinstance(v, list) else v) for k, v in json.loads(a.cfg).items()})
    ck = train(cfg, minutes=a.minutes, max_steps=a.max_steps, batch=a.batch, lr=a.lr, seed=a.seed,
               sigma_range=tuple(float(v) for v in a.sigma_range.split(",")),
               arch={"ch": tuple(int(c) for c in a.ch.split(",")), "k": a.kernel, "kd": a.kernel_delay,
                     "kind": a.kind}, init=a.init)
    torch.save(ck, a.out)
    print(json.dumps({k: ck[k] for k in ("steps", "channels_seen", "minutes", "val_nmse_db", "n_params")}))


if __name__ == "__main__":
    main()
