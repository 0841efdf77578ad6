"""Training of the diffusion symbol denoiser: ``train(DenoiserTrainConfig(...)) -> checkpoint``.

Objective (continuous diffusion for categorical data): the data are constellation points, the
forward process adds complex Gaussian noise of variance sigma^2 per RE, and the denoiser
predicts the categorical posterior of the point - here through an equivalent observation
(z, w) whose Gaussian likelihoods are the logits, i.e. exactly what the soft demapper computes
from the block's output - trained with cross-entropy on the bits (bit-wise, as the LDPC decoder
uses them). Two kinds of training input per frame:
- start states (probability 1 - p_diffusion): the real equalized frame from the link simulator
  with random channel, SNR and impairments, at its own noise level sigma^2 = v (the post-eq
  variance: the SNR-matched start step of the reverse process);
- diffusion states: the clean frame x + CN(0, kappa v), kappa log-uniform, at sigma^2 = kappa v.
  Their optimum is the identity (z = y, w = sigma^2), which anchors the network to plain
  demapping wherever the input looks Gaussian, such as on a clean channel.
Frames come from denoising.data on the fly (seeded; no dataset on disk); the checkpoint keeps
the generator states, so an interrupted run resumes where it stopped.
"""
from __future__ import annotations

import dataclasses
import json
import time
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from ..frame import FrameSpec
from ..models.train import _save, cosine_lr, ema_update, load_checkpoint, resume
from ..ofdm import qam
from .data import TRAIN_PURPOSE, VAL_PURPOSE, ImpairmentMix, LinkMix, mixed_frames, purpose_rng
from .features import MODULATIONS, prepare
from .network import NetConfig, SymbolNet, n_params


@dataclasses.dataclass
class DenoiserTrainConfig:
    out_dir: str = "out/train_denoiser"
    preset: str = "nr72"
    steps: int = 1500
    batch: int = 16  # frames per step
    lr: float = 2e-3
    lr_final: float = 0.05
    ema: float = 0.995
    seed: int = 11
    width: int = 32
    blocks: int = 3
    modulations: tuple = MODULATIONS
    modulation_p: tuple = (0.2, 0.6, 0.2)
    snr_db: tuple = (-2.0, 30.0)
    n_rx: tuple = (1, 2, 4)
    n_rx_p: tuple = (0.25, 0.55, 0.2)
    profiles: tuple = ("TDL-A", "TDL-B", "TDL-C")
    delay_spread: tuple = (10e-9, 600e-9)
    doppler: tuple = (0.0, 200.0)
    p_clean: float = 0.2  # of the start states: no impairment at all
    p_diffusion: float = 0.25  # of the frames: diffusion state instead of the start state
    kappa: tuple = (0.1, 10.0)  # diffusion noise level / the frame's post-eq variance
    cpe: bool = True  # classical (tracking) CPE before the network, in training and inference
    focus_bce: float = 0.25  # frames weighted towards this plain-demapping cross-entropy (0: off)
    focus_width: float = 0.7  # ... in log units
    per_scenario: int = 8
    threads: int = 1
    ckpt_every: int = 100
    val_every: int = 100
    val_frames: int = 96
    resume: bool = True
    progress: bool = True

    def spec(self, modulation: str | None = None) -> FrameSpec:
        return FrameSpec.preset(self.preset, **({"modulation": modulation} if modulation else {}))

    def link_mix(self) -> LinkMix:
        return LinkMix(profiles=tuple(self.profiles), delay_spread=tuple(self.delay_spread),
                       doppler=tuple(self.doppler), snr_db=tuple(self.snr_db), n_rx=tuple(self.n_rx),
                       n_rx_p=tuple(self.n_rx_p), impairments=ImpairmentMix(p_clean=self.p_clean))

    def net(self) -> NetConfig:
        return NetConfig(width=self.width, blocks=self.blocks)

    def to_dict(self) -> dict:
        return json.loads(json.dumps(dataclasses.asdict(self)))

    @classmethod
    def from_dict(cls, d: dict) -> "DenoiserTrainConfig":
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in d.items() if k in known})


def model_from_checkpoint(path_or_ckpt, ema: bool = True) -> tuple[SymbolNet, DenoiserTrainConfig]:
    ck = load_checkpoint(path_or_ckpt) if not isinstance(path_or_ckpt, dict) else path_or_ckpt
    if ck.get("kind") != "denoiser":
        raise ValueError("not a symbol-denoiser checkpoint (kind missing or different); "
                         "use `gr-gdm export --kind estimator` for channel-estimator checkpoints")
    cfg = DenoiserTrainConfig.from_dict(ck["config"])
    net = SymbolNet(cfg.net())
    net.load_state_dict(ck["ema" if ema else "model"])
    net.eval()
    return net, cfg


# ---- batches -----------------------------------------------------------------------------
def make_batch(cfg: DenoiserTrainConfig, rng: np.random.Generator, n: int | None = None,
               modulation: str | None = None, p_diffusion: float | None = None) -> dict:
    """One batch (single modulation): network inputs, the transmitted points x and whether each
    frame is a diffusion state."""
    n = n or cfg.batch
    mod = modulation or str(rng.choice(cfg.modulations, p=cfg.modulation_p))
    spec = cfg.spec(mod)
    f = mixed_frames(spec, cfg.link_mix(), n, rng, cfg.per_scenario)
    z, v, x = f["z"][:, 0], f["v"][:, 0], f["x"][:, 0]
    pd = cfg.p_diffusion if p_diffusion is None else p_diffusion
    diff = rng.random(len(z)) < pd
    if diff.any():
        lo, hi = np.log(cfg.kappa[0]), np.log(cfg.kappa[1])
        kappa = np.exp(rng.uniform(lo, hi, int(diff.sum())))[:, None, None]
        vd = (v[diff] * kappa).astype(np.float32)
        noise = (rng.standard_normal(vd.shape) + 1j * rng.standard_normal(vd.shape)) * np.sqrt(vd / 2)
        z = z.copy()
        v = v.copy()
        z[diff] = (x[diff] + noise).astype(np.complex64)
        v[diff] = vd
    inp = prepare(z, v, spec, cfg.cpe)
    return dict(**inp, x=x, diffusion=diff, modulation=mod, spec=spec)


# ---- loss ----------------------------------------------------------------------------------
def _axis_tables(modulation: str):
    pam, table = qam._axis(modulation)
    return torch.tensor(pam, dtype=torch.float32), torch.tensor(table, dtype=torch.bool)


def bit_llrs(out: torch.Tensor, x: np.ndarray, modulation: str):
    """Exact bit LLRs of the equivalent observation out [B, 3, S, K] (z.re, z.im, log w) and the
    signs (+1: bit 0) of x's bits, both [B, S, K, bits]."""
    pam, table = _axis_tables(modulation)
    w = torch.exp(out[:, 2])[..., None]
    xs = torch.from_numpy(np.ascontiguousarray(x))
    llrs, signs = [], []
    for comp, xa in ((out[:, 0], xs.real), (out[:, 1], xs.imag)):
        lg = -(comp[..., None] - pam) ** 2 / w  # [B, S, K, L]; per-axis noise w/2 -> exp(-d^2/w)
        bits = table[torch.argmin((xa[..., None] - pam).abs(), -1)]  # [B, S, K, nb]
        for j in range(table.shape[1]):
            llrs.append(torch.logsumexp(lg[..., ~table[:, j]], -1) - torch.logsumexp(lg[..., table[:, j]], -1))
            signs.append(1.0 - 2.0 * bits[..., j].float())
    return torch.stack(llrs, -1), torch.stack(signs, -1)


def frame_scale(llr: torch.Tensor, sign: torch.Tensor, mask: torch.Tensor, iters: int = 4) -> torch.Tensor:
    """Per-frame LLR scale t >= 0 minimising the bit cross-entropy (Newton steps from 1, no
    gradient): the LDPC decoder (normalised min-sum) does not care about a frame's LLR scale,
    so neither should the loss."""
    with torch.no_grad():
        a = (sign * llr) * mask[None, :, :, None]  # margin per bit, 0 off the data REs
        t = torch.ones(llr.shape[0], 1, 1, 1)
        for _ in range(iters):
            p = torch.sigmoid(-t * a)  # d/dt softplus(-t a) = -a p
            g = (-a * p).sum((1, 2, 3), keepdim=True)
            h = (a * a * p * (1 - p)).sum((1, 2, 3), keepdim=True)
            t = (t - g / h.clamp(min=1e-9)).clamp(0.05, 20.0)
        return t


def bit_bce(out: torch.Tensor, x: np.ndarray, spec: FrameSpec, modulation: str, per_frame: bool = False,
            free_scale: bool = True):
    """Mean binary cross-entropy (nats per bit) of the exact bit LLRs of out at the data REs,
    each frame's LLRs at their best scale (``free_scale``), against the bits of x."""
    llr, sign = bit_llrs(out, x, modulation)
    mask = torch.from_numpy(spec.data_mask)
    if free_scale:
        llr = llr * frame_scale(llr, sign, mask)
    bce = torch.nn.functional.softplus(-sign * llr) * mask[None, :, :, None]
    per = bce.sum((1, 2, 3)) / (mask.sum() * llr.shape[-1])
    return per if per_frame else per.mean()


def frame_weights(ref: torch.Tensor, cfg: DenoiserTrainConfig) -> torch.Tensor:
    """Per-frame loss weights from the cross-entropy of plain demapping: frames near the LDPC
    decoding threshold (rate 1/2: around 0.25 nats/bit) count most; frames decoded anyway or
    hopeless keep a tenth, so the network spends itself where BER is decided."""
    if not cfg.focus_bce:
        return torch.ones_like(ref)
    return 0.1 + torch.exp(-torch.log(ref.clamp(min=1e-6) / cfg.focus_bce) ** 2 / (2 * cfg.focus_width ** 2))


def identity_output(b: dict) -> torch.Tensor:
    return torch.from_numpy(np.concatenate([b["y"], b["logv"]], 1))


def _tensors(b: dict) -> tuple:
    return tuple(torch.from_numpy(np.ascontiguousarray(b[k])) for k in ("y", "logv", "cond", "glob"))


# ---- validation ----------------------------------------------------------------------------
def validation_set(cfg: DenoiserTrainConfig) -> list[dict]:
    """Fixed start-state batches (16-QAM, the link mix incl. clean frames), seeded apart from
    training."""
    rng = purpose_rng(cfg.seed, VAL_PURPOSE)
    return [make_batch(cfg, rng, cfg.val_frames, "16qam", p_diffusion=0.0)]


@torch.no_grad()
def validate(net: SymbolNet, val: list[dict], cfg: DenoiserTrainConfig | None = None) -> dict:
    """Bit cross-entropy (each frame at its best LLR scale) of the network and of the classical
    input (CPE-corrected when the model uses CPE, else plain) on the start states (nats/bit),
    plain and with the training's frame weights (``w_``)."""
    res = {}
    cfg = cfg or DenoiserTrainConfig()
    for i, b in enumerate(val):
        net_f = bit_bce(net(*_tensors(b)), b["x"], b["spec"], b["modulation"], per_frame=True)
        ref_f = bit_bce(identity_output(b), b["x"], b["spec"], b["modulation"], per_frame=True)
        w = frame_weights(ref_f, cfg)
        res[f"bce_net{i}"] = round(float(net_f.mean()), 5)
        res[f"bce_classical{i}"] = round(float(ref_f.mean()), 5)
        res[f"w_bce_net{i}"] = round(float((w * net_f).sum() / w.sum()), 5)
        res[f"w_bce_classical{i}"] = round(float((w * ref_f).sum() / w.sum()), 5)
    return res


# ---- training ------------------------------------------------------------------------------
def train(config: DenoiserTrainConfig, until: int | None = None) -> Path:
    """Train (or resume) and return ``<out_dir>/checkpoint.pt``. ``until``: stop after that
    many steps with a checkpoint, as an interruption would."""
    cfg = config
    torch.set_num_threads(cfg.threads)
    out = Path(cfg.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    ck_path = out / "checkpoint.pt"
    torch.manual_seed(cfg.seed)
    net, ema = SymbolNet(cfg.net()), SymbolNet(cfg.net())
    ema.load_state_dict(net.state_dict())
    opt = torch.optim.Adam(net.parameters(), lr=cfg.lr)
    rng = purpose_rng(cfg.seed, TRAIN_PURPOSE)
    step, history, elapsed = 0, [], 0.0
    if cfg.resume and ck_path.exists():
        step, history, elapsed = resume(load_checkpoint(ck_path), ck_path, cfg, net, ema, opt, rng)
    val = validation_set(cfg)

    def state():
        return dict(kind="denoiser", model=net.state_dict(), ema=ema.state_dict(), opt=opt.state_dict(),
                    step=step, config=cfg.to_dict(), rng=rng.bit_generator.state,
                    torch_rng=torch.get_rng_state(), history=history, elapsed_s=elapsed, n_params=n_params(net))

    bar = tqdm(total=cfg.steps, initial=step, disable=not cfg.progress, desc="train denoiser", unit="step")
    t0 = time.time() - elapsed
    loss_avg, skipped = None, 0
    stop = cfg.steps if until is None else min(until, cfg.steps)
    while step < stop:
        lr = cosine_lr(opt, cfg, step)
        b = make_batch(cfg, rng)
        net.train()
        o = net(*_tensors(b))
        per = bit_bce(o, b["x"], b["spec"], b["modulation"], per_frame=True)
        with torch.no_grad():
            wts = frame_weights(bit_bce(identity_output(b), b["x"], b["spec"], b["modulation"], per_frame=True), cfg)
        loss = (wts * per).sum() / wts.sum()
        opt.zero_grad(set_to_none=True)
        if torch.isfinite(loss):
            loss.backward()
            torch.nn.utils.clip_grad_norm_(net.parameters(), 1.0)
            opt.step()
        else:  # never let one bad batch poison the weights
            skipped += 1
            bar.write(f"step {step}: non-finite loss, batch skipped ({skipped} so far)")
        ema_update(ema, net, step, cfg.ema)
        step += 1
        if torch.isfinite(loss):
            loss_avg = loss.item() if loss_avg is None else 0.98 * loss_avg + 0.02 * loss.item()
        bar.update(1)
        bar.set_postfix(loss=f"{loss_avg:.4f}", lr=f"{lr:.1e}")
        if step % cfg.val_every == 0 or step == cfg.steps:
            ema.eval()
            rec = dict(step=step, loss=round(loss_avg or float("nan"), 5), elapsed_s=round(time.time() - t0, 1),
                       cpu_s=round(time.process_time(), 1), **validate(ema, val, cfg))
            history.append(rec)
            bar.write(json.dumps(rec))
        if step % cfg.ckpt_every == 0 or step == cfg.steps:
            elapsed = time.time() - t0
            _save(ck_path, state())
    bar.close()
    elapsed = time.time() - t0
    _save(ck_path, state())
    return ck_path


def config_from_args(argv=None) -> DenoiserTrainConfig:
    from ..models.train import config_from_args as parse

    return parse(argv, DenoiserTrainConfig, "train the gr-gdm diffusion symbol denoiser")


if __name__ == "__main__":
    print(train(config_from_args()))
