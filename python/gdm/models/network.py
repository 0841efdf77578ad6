"""The denoiser network: a small U-Net over the [2, n_sym, n_occ] grid of one link.

D(x, sigma | cond) estimates the clean channel H from x = H + sigma * CN(0, 1) given the pilot
conditioning. Two bodies share the preconditioning below (``NetConfig.arch``): "unet", three
resolutions (14x72, 14x36, 7x18), and "patch", which cuts the grid into 2x4 patches and works on
the 7x18 patch grid only, ~15x cheaper per link on CPU (what the network adds over the bank
posterior is a smooth correction, so the full resolution buys little; see the model card). Preconditioning (EDM, Karras et al. 2022) is done *around the bank posterior*:
with m the bank mean and s the bank's per-RE posterior std (cond planes 0-2),

    D = m + c_skip (x - m) + c_out F(c_in (x - m), sigma, cond),
    c_skip = s^2 / (s^2 + sigma^2),  c_out = sigma s / sqrt(s^2 + sigma^2),  c_in = 1 / sqrt(s^2 + sigma^2),

so F = 0 is already the per-RE Gaussian denoiser of the bank posterior and the network only
learns what the Gaussian mixture misses. The output layer starts at zero for that reason.

ONNX-friendly by construction: plain Conv2d, SiLU, linear FiLM, nearest upsampling, mean
pooling; no normalisation layers (nothing exports as GroupNormalization); sigma enters as a
tensor.
"""
from __future__ import annotations

import dataclasses
import math

import torch
from torch import nn
import torch.nn.functional as F_

from .layout import N_COND, N_GLOBAL, START_FLAG  # noqa: F401  (re-exported)


@dataclasses.dataclass(frozen=True)
class NetConfig:
    widths: tuple[int, ...] = (24, 32, 48)  # unet: per resolution; patch: widths[0]
    emb: int = 64
    arch: str = "unet"  # or "patch"
    blocks: int = 3  # patch: residual blocks on the patch grid
    patch: tuple[int, int] = (2, 4)  # patch: symbols x carriers per patch

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


class ResBlock(nn.Module):
    """conv - SiLU - FiLM(embedding) - conv, residual; the second conv starts small so a deep
    stack begins close to identity without normalisation layers."""

    def __init__(self, c: int, emb: int):
        super().__init__()
        self.c1 = nn.Conv2d(c, c, 3, padding=1)
        self.c2 = nn.Conv2d(c, c, 3, padding=1)
        self.film = nn.Linear(emb, 2 * c)
        with torch.no_grad():
            self.c2.weight.mul_(0.1)
            self.film.weight.mul_(0.1)
            self.film.bias.zero_()

    def forward(self, h, e):
        scale, shift = self.film(e)[:, :, None, None].chunk(2, 1)
        y = F_.silu(self.c1(F_.silu(h)))
        y = y * (1 + scale) + shift
        return h + self.c2(y)


class _Preconditioned(nn.Module):
    """The EDM preconditioning around the bank posterior; a subclass's ``body(inp, e)`` is F."""

    def _embedder(self, e: int) -> None:
        self.embed = nn.Sequential(nn.Linear(N_GLOBAL + 2 + 16, e), nn.SiLU(), nn.Linear(e, e), nn.SiLU())
        self.register_buffer("freqs", torch.exp(torch.linspace(0, math.log(64.0), 8)), persistent=False)

    def embedding(self, sigma, s_mean, glob):
        ls = torch.log(sigma)[:, None]
        ang = ls * self.freqs[None]
        feats = torch.cat([ls / 4, torch.log(s_mean)[:, None] / 4, glob, torch.sin(ang), torch.cos(ang)], 1)
        return self.embed(feats)

    def forward(self, x, sigma, cond, glob):
        """x [B, 2, S, K], sigma [B], cond [B, N_COND, S, K], glob [B, N_GLOBAL] -> D [B, 2, S, K]."""
        m = cond[:, 0:2]
        s2 = torch.exp(2 * cond[:, 2:3])
        sg2 = (sigma * sigma)[:, None, None, None]
        c_in = torch.rsqrt(s2 + sg2)
        c_skip = s2 / (s2 + sg2)
        c_out = torch.sqrt(sg2 * s2) * c_in
        e = self.embedding(sigma, torch.sqrt(s2.mean((1, 2, 3))), glob)
        return m + c_skip * (x - m) + c_out * self.body(torch.cat([(x - m) * c_in, cond], 1), e)


class Denoiser(_Preconditioned):
    """The U-Net body (``arch="unet"``)."""

    def __init__(self, cfg: NetConfig = NetConfig()):
        super().__init__()
        self.cfg = cfg
        c0, c1, c2 = cfg.widths
        e = cfg.emb
        self._embedder(e)
        self.stem = nn.Conv2d(2 + N_COND, c0, 3, padding=1)
        self.b0 = ResBlock(c0, e)
        self.d1 = nn.Conv2d(c0, c1, 3, stride=(1, 2), padding=1)  # 14x72 -> 14x36
        self.b1 = ResBlock(c1, e)
        self.d2 = nn.Conv2d(c1, c2, 3, stride=2, padding=1)  # 14x36 -> 7x18
        self.b2a = ResBlock(c2, e)
        self.ctx = nn.Linear(c2, c2)  # global context: what the whole frame says
        self.b2b = ResBlock(c2, e)
        self.u1 = nn.Conv2d(c2 + c1, c1, 3, padding=1)
        self.b1u = ResBlock(c1, e)
        self.u0 = nn.Conv2d(c1 + c0, c0, 3, padding=1)
        self.b0u = ResBlock(c0, e)
        self.head = nn.Conv2d(c0, 2, 3, padding=1)
        nn.init.zeros_(self.head.weight)
        nn.init.zeros_(self.head.bias)

    def body(self, inp, e):
        h0 = self.b0(self.stem(inp), e)
        h1 = self.b1(self.d1(h0), e)
        h2 = self.b2a(self.d2(h1), e)
        h2 = h2 + self.ctx(h2.mean((2, 3)))[:, :, None, None]
        h2 = self.b2b(h2, e)
        u = F_.interpolate(h2, size=h1.shape[2:], mode="nearest")
        u = self.b1u(self.u1(torch.cat([u, h1], 1)), e)
        u = F_.interpolate(u, size=h0.shape[2:], mode="nearest")
        u = self.b0u(self.u0(torch.cat([u, h0], 1)), e)
        return self.head(F_.silu(u))


class PatchDenoiser(_Preconditioned):
    """The patch body (``arch="patch"``): a strided conv cuts the grid into patches, residual
    blocks (with the global context after the first half) work on the patch grid, and a
    transposed conv with overlapping 2x-patch kernels paints the correction back smoothly."""

    def __init__(self, cfg: NetConfig):
        super().__init__()
        self.cfg = cfg
        c, e, (ps, pk) = cfg.widths[0], cfg.emb, cfg.patch
        self._embedder(e)
        self.stem = nn.Conv2d(2 + N_COND, c, (ps, pk), stride=(ps, pk))
        self.blocks = nn.ModuleList([ResBlock(c, e) for _ in range(cfg.blocks)])
        self.ctx = nn.Linear(c, c)
        self.head = nn.ConvTranspose2d(c, 2, (2 * ps, 2 * pk), stride=(ps, pk), padding=(ps // 2, pk // 2))
        nn.init.zeros_(self.head.weight)
        nn.init.zeros_(self.head.bias)

    def body(self, inp, e):
        S, K = inp.shape[2:]
        ps, pk = self.cfg.patch
        if S % ps or K % pk:
            raise ValueError(f"patch denoiser: grid {S}x{K} is not a whole number of {ps}x{pk} patches")
        h = self.stem(inp)
        for i, b in enumerate(self.blocks):
            h = b(h, e)
            if i == (len(self.blocks) - 1) // 2:
                h = h + self.ctx(h.mean((2, 3)))[:, :, None, None]
        return self.head(F_.silu(h))


def make_denoiser(cfg: NetConfig) -> _Preconditioned:
    if cfg.arch == "unet":
        return Denoiser(cfg)
    if cfg.arch == "patch":
        return PatchDenoiser(cfg)
    raise ValueError(f"unknown denoiser arch {cfg.arch!r}: use 'unet' or 'patch'")


def n_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
