"""Denoiser network for the XL-MIMO channel prior.

``XLDenoiser(x, sigma) -> h0``: x float32 [B, 2, N, K] (real/imag, antenna, subcarrier) is a
channel plus white complex Gaussian noise of variance sigma^2 per entry (channels normalised to
E|h|^2 = 1 per entry); sigma float32 [B]; h0 float32 [B, 2, N, K] estimates E[h | x] (Tweedie).

Inside: a unitary DFT across the antennas (angle domain, where near-field paths are compact),
a 1-D U-Net over the circular angle axis that is shared by all subcarriers and exchanges
information between them through per-block subcarrier means (so it is equivariant to subcarrier
permutations and runs for any K), noise-level conditioning through FiLM, and EDM
preconditioning: h0 = c_skip x + c_out F(c_in x, log sigma), which makes the estimate tend to the
input as sigma -> 0. The DFT is a fixed matmul so the exported graph is self-contained.
"""
from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn
import torch.nn.functional as F


def dft_mats(n: int):
    k = np.arange(n)
    Fm = np.exp(-2j * np.pi * np.outer(k, k) / n) / np.sqrt(n)
    return (torch.tensor(Fm.real, dtype=torch.float32), torch.tensor(Fm.imag, dtype=torch.float32))


class CConv(nn.Module):
    """Conv1d with circular padding (the DFT angle axis wraps around)."""

    def __init__(self, cin, cout, k=3, stride=1):
        super().__init__()
        self.pad = (k - 1) // 2
        self.conv = nn.Conv1d(cin, cout, k, stride=stride)

    def forward(self, x):
        if self.pad:
            x = torch.cat([x[..., -self.pad:], x, x[..., :self.pad]], dim=-1)
        return self.conv(x)


class Block(nn.Module):
    """Residual block: conv - FiLM(sigma) - SiLU - conv, plus the subcarrier-mean exchange."""

    def __init__(self, ch, emb, k):
        super().__init__()
        self.c1 = CConv(ch, ch, k)
        self.c2 = CConv(ch, ch, k)
        self.mix = nn.Conv1d(ch, ch, 1)
        self.film = nn.Linear(emb, 2 * ch)

    def forward(self, h, e, K):
        # h [B*K, C, L], e [B*K, emb]
        BK, C, L = h.shape
        m = h.reshape(BK // K, K, C, L).mean(1)                     # [B, C, L]
        m = self.mix(m).repeat_interleave(K, dim=0)                 # [B*K, C, L]
        s, b = self.film(e).unsqueeze(-1).chunk(2, dim=1)
        z = self.c1(F.silu(h + m))
        z = z * (1 + s) + b
        z = self.c2(F.silu(z))
        return h + z


class XLDenoiser(nn.Module):
    def __init__(self, n_ant: int = 256, ch=(32, 48, 64, 96), k: int = 5, emb: int = 64,
                 sigma_data: float = 1.0):
        super().__init__()
        self.n_ant, self.ch, self.k, self.emb_dim, self.sigma_data = n_ant, tuple(ch), k, emb, sigma_data
        fr, fi = dft_mats(n_ant)
        self.register_buffer("fr", fr)
        self.register_buffer("fi", fi)
        self.freqs = nn.Parameter(torch.randn(emb // 2) * 2.0, requires_grad=False)
        self.emb = nn.Sequential(nn.Linear(emb, emb), nn.SiLU(), nn.Linear(emb, emb))
        self.stem = CConv(3, ch[0], k)
        self.down_blocks = nn.ModuleList()
        self.downs = nn.ModuleList()
        for i, c in enumerate(ch):
            self.down_blocks.append(Block(c, emb, k))
            if i + 1 < len(ch):
                self.downs.append(nn.Conv1d(c, ch[i + 1], 2, stride=2))
        self.mid = Block(ch[-1], emb, k)
        self.glob = nn.Linear(ch[-1], ch[-1])
        self.ups = nn.ModuleList()
        self.up_blocks = nn.ModuleList()
        for i in reversed(range(len(ch) - 1)):
            self.ups.append(nn.ConvTranspose1d(ch[i + 1], ch[i], 2, stride=2))
            self.up_blocks.append(Block(ch[i], emb, k))
        self.head = CConv(ch[0], 2, k)

    def _angle(self, xr, xi):
        # x [B, N, K] -> F x along N
        return (torch.einsum("mn,bnk->bmk", self.fr, xr) - torch.einsum("mn,bnk->bmk", self.fi, xi),
                torch.einsum("mn,bnk->bmk", self.fr, xi) + torch.einsum("mn,bnk->bmk", self.fi, xr))

    def _antenna(self, ar, ai):
        # F^H a
        return (torch.einsum("nm,bmk->bnk", self.fr, ar) + torch.einsum("nm,bmk->bnk", self.fi, ai),
                torch.einsum("nm,bmk->bnk", self.fr, ai) - torch.einsum("nm,bmk->bnk", self.fi, ar))

    def _precond(self, sigma):
        sd2 = self.sigma_data ** 2
        c_in = 1 / torch.sqrt(sigma ** 2 + sd2)
        c_skip = sd2 / (sigma ** 2 + sd2)
        c_out = sigma * self.sigma_data / torch.sqrt(sigma ** 2 + sd2)
        return c_in, c_skip, c_out

    def trunk(self, x, sigma):
        """U-Net features [B*K, ch[0], N] of the angle-domain input."""
        B, _, N, K = x.shape
        c_in, _, _ = self._precond(sigma)
        ar, ai = self._angle(x[:, 0], x[:, 1])                       # [B, N, K]
        ar, ai = ar * c_in.view(B, 1, 1), ai * c_in.view(B, 1, 1)
        pw = torch.sqrt((ar ** 2 + ai ** 2).mean(2, keepdim=True)).expand(B, N, K)
        h = torch.stack([ar, ai, pw], 1)                             # [B, 3, N, K]
        h = h.permute(0, 3, 1, 2).reshape(B * K, 3, N)
        t = torch.log(sigma).unsqueeze(1) * self.freqs.unsqueeze(0)
        e = self.emb(torch.cat([torch.sin(t), torch.cos(t)], 1))     # [B, emb]
        e = e.repeat_interleave(K, dim=0)
        h = self.stem(h)
        skips = []
        for i, blk in enumerate(self.down_blocks):
            h = blk(h, e, K)
            if i < len(self.downs):
                skips.append(h)
                h = self.downs[i](h)
        h = self.mid(h, e, K)
        g = h.mean(-1).reshape(B, K, -1).mean(1)                     # global context [B, C]
        h = h + self.glob(g).repeat_interleave(K, dim=0).unsqueeze(-1)
        for up, blk in zip(self.ups, self.up_blocks):
            h = up(h) + skips.pop()
            h = blk(h, e, K)
        return h

    def residual(self, h, B, N, K):
        """Head: features -> antenna-domain [B, 2, N, K]."""
        o = self.head(h).reshape(B, K, 2, N)
        fr_, fi_ = self._antenna(o[:, :, 0].transpose(1, 2), o[:, :, 1].transpose(1, 2))
        return torch.stack([fr_, fi_], 1)

    def forward(self, x, sigma):
        B, _, N, K = x.shape
        sigma = sigma.reshape(B)
        _, c_skip, c_out = self._precond(sigma)
        h = self.trunk(x, sigma)
        out = self.residual(h, B, N, K)
        return c_skip.view(B, 1, 1, 1) * x + c_out.view(B, 1, 1, 1) * out


def make_model(kind: str = "unet", **arch) -> XLDenoiser:
    if kind != "unet":
        raise ValueError(f"unknown prior network {kind!r} (available: unet)")
    return XLDenoiser(**arch)


def n_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
