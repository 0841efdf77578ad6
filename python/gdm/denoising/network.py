"""The symbol-denoiser network: a per-RE MLP (1x1 convolutions) with frame context, over the
[n_sym, n_occ] grid of one stream.

Output = an equivalent observation for the soft demapper: symbols z and variance w such that
demapping z with w gives the bit LLRs. Parameterised around the input,

    z = y + a * y + b,   log w = log v + s,     (a, b complex; s real; per RE)

with the head initialised to zero, so the untrained network is plain demapping and the clean
channel's optimum (y itself, with variance v, for y = x + CN(0, v)) is F = 0: the network only
learns what impairments change (a: rotation/compression, b: image and distortion, s: the error
variance the equalizer does not know).

Frame context, since impairments are frame-wide: every block adds the mean over carriers of its
features (one vector per OFDM symbol: common phase error), the mean over symbols (one per
carrier: IQ image, slow distortion) and the mean over the frame, each through a linear map, and
a FiLM from the frame's globals; each RE also sees its neighbours along carriers (ICI) and
symbols (phase noise is a random walk: smoothing across symbols).
Channels-last inside, so each layer is one matrix product (4x faster than 1x1 convolutions on
this CPU). ONNX-friendly: MatMul, SiLU, ReduceMean, Slice/Concat; no normalisation layers.
"""
from __future__ import annotations

import dataclasses

import torch
from torch import nn
import torch.nn.functional as F_

from .features import N_COND, N_GLOBAL

N_IN = 2 + 1 + N_COND  # y, log v, cond
N_OUT = 3  # z.re, z.im, log w
LIMIT = 4.0  # |a|, |b| and the log-variance change stay within this (tanh)


@dataclasses.dataclass(frozen=True)
class NetConfig:
    width: int = 48
    blocks: int = 3
    emb: int = 32

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def _shift(h, d: int, dim: int):
    """h [B, S, K, C] shifted by d along ``dim`` (1: symbols, 2: carriers), zero-filled (ONNX:
    Slice + Concat)."""
    n = h.shape[dim]
    z = torch.zeros_like(h.narrow(dim, 0, abs(d)))
    return torch.cat([z, h.narrow(dim, 0, n - d)], dim) if d > 0 else torch.cat([h.narrow(dim, -d, n + d), z], dim)


class Block(nn.Module):
    """Channels-last ([B, S, K, C]) so every per-RE layer is one matrix product."""

    def __init__(self, c: int, emb: int):
        super().__init__()
        self.local = nn.Linear(c, 5 * c)  # from the RE itself and its neighbours along carriers and symbols
        self.row = nn.Linear(c, c)
        self.col = nn.Linear(c, c)
        self.glob = nn.Linear(c, c)
        self.film = nn.Linear(emb, 2 * c)
        self.mix = nn.Linear(c, c)
        with torch.no_grad():
            self.mix.weight.mul_(0.1)
            self.film.weight.mul_(0.1)
            self.film.bias.zero_()

    def forward(self, h, e, mask):
        u = F_.silu(h)
        row = (u * mask).sum(2, keepdim=True) / mask.sum(2, keepdim=True).clamp(min=1.0)  # [B, S, 1, C]
        col = u.mean(1, keepdim=True)  # [B, 1, K, C]
        glob = u.mean((1, 2), keepdim=True)  # [B, 1, 1, C]
        loc = self.local(u)
        c = loc.shape[-1] // 5
        t = (loc[..., :c] + _shift(loc[..., c:2 * c], 1, 2) + _shift(loc[..., 2 * c:3 * c], -1, 2)
             + _shift(loc[..., 3 * c:4 * c], 1, 1) + _shift(loc[..., 4 * c:], -1, 1)
             + self.row(row) + self.col(col) + self.glob(glob))
        scale, shift = self.film(e)[:, None, None, :].chunk(2, -1)
        return h + self.mix(F_.silu(t) * (1 + scale) + shift)


class SymbolNet(nn.Module):
    def __init__(self, cfg: NetConfig = NetConfig()):
        super().__init__()
        self.cfg = cfg
        c = cfg.width
        self.embed = nn.Sequential(nn.Linear(N_GLOBAL, cfg.emb), nn.SiLU(), nn.Linear(cfg.emb, cfg.emb), nn.SiLU())
        self.stem = nn.Linear(N_IN, c)
        self.blocks = nn.ModuleList(Block(c, cfg.emb) for _ in range(cfg.blocks))
        self.head = nn.Linear(c, 5)
        nn.init.zeros_(self.head.weight)
        nn.init.zeros_(self.head.bias)

    def forward(self, y, logv, cond, glob):
        """y [B, 2, S, K], logv [B, 1, S, K], cond [B, N_COND, S, K], glob [B, N_GLOBAL] ->
        [B, 3, S, K]: z.re, z.im, log w."""
        x = torch.cat([y, logv / 4, cond], 1).permute(0, 2, 3, 1)  # [B, S, K, N_IN]
        mask = x[..., 3 + 9:3 + 10]  # cond plane 9: data mask
        e = self.embed(glob)
        h = self.stem(x)
        for b in self.blocks:
            h = b(h, e, mask)
        o = self.head(F_.silu(h)).permute(0, 3, 1, 2)  # [B, 5, S, K]
        o = LIMIT * torch.tanh(o / LIMIT)  # bounded corrections: no overflow on any input
        a_re, a_im, b_re, b_im, s = o[:, 0:1], o[:, 1:2], o[:, 2:3], o[:, 3:4], o[:, 4:5]
        yr, yi = y[:, 0:1], y[:, 1:2]
        zr = yr + a_re * yr - a_im * yi + b_re
        zi = yi + a_re * yi + a_im * yr + b_im
        return torch.cat([zr, zi, logv + s], 1)


def n_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
