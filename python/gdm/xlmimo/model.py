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


class AtomDenoiser(XLDenoiser):
    """XLDenoiser trunk with a physics output layer: sparse spherical-wave atoms.

    Every DFT bin m may hold one path. From the subcarrier-pooled features the network gives a
    path logit and coarse parameters: direction theta_m = grid_m + (2 / N) max_offset tanh(.) and
    inverse distance rho_m in [0, rho_max] (1/wavelengths). ``newton`` safeguarded Newton steps on
    sum_k |b(theta, rho)^H x_k|^2 then refine (theta_m, rho_m) on the noisy input itself, so the
    atoms are placed to a precision a regression head cannot reach; b_m is the exact near-field
    response, computed in the graph. Amplitudes: matched filter b_m^H x_k weighted by the gate
    g_{m,k} = sigmoid(path logit_m + slice logit_{m,k}), refined by ``landweber`` gated
    least-squares passes a <- a + g (B^H (x - B a)). Output: B a + w(sigma) (x - B a) +
    c_out * residual: the drawn paths, a learned fraction w <= c_skip of the unexplained input
    (w starts at c_skip, i.e. the identity at low noise, as in EDM) and a U-Net head. At high noise the gates shrink (posterior
    weighting); at low noise the estimate is a sum of exactly drawn near-field paths.

    Training may add auxiliary targets (``forward(..., aux=True)`` returns the path logits and
    coarse parameters) to teach the detector quickly where the paths are.
    """

    def __init__(self, n_ant: int = 256, ch=(32, 48, 64, 96), k: int = 5, emb: int = 64,
                 sigma_data: float = 1.0, spacing_wl: float = 0.5, rho_max_wl: float = 1.2e-3,
                 max_offset: float = 0.75, landweber: int = 2, newton: int = 3):
        super().__init__(n_ant=n_ant, ch=ch, k=k, emb=emb, sigma_data=sigma_data)
        self.spacing_wl, self.rho_max_wl = spacing_wl, rho_max_wl
        self.max_offset, self.landweber, self.newton = max_offset, landweber, newton
        c0 = ch[0]
        self.atom_head = CConv(c0, 3, 3)          # path logit, offset, rho logit (pooled)
        self.gate_head = CConv(c0, 1, 3)          # per-subcarrier gate correction
        self.keep = nn.Linear(emb, 1)             # how much of the unexplained input to keep
        with torch.no_grad():
            self.keep.weight.zero_()
            self.keep.bias.fill_(4.0)
        with torch.no_grad():
            self.atom_head.conv.bias.copy_(torch.tensor([-3.0, 0.0, 0.0]))
            self.gate_head.conv.weight.mul_(0.1)
            self.gate_head.conv.bias.zero_()
        xw = (np.arange(n_ant) - (n_ant - 1) / 2) * spacing_wl
        self.register_buffer("xw", torch.tensor(xw, dtype=torch.float32))
        grid = ((2 * np.arange(n_ant) / n_ant + 1) % 2) - 1      # direction of DFT bin m
        self.register_buffer("grid", torch.tensor(grid, dtype=torch.float32))

    def params(self, hp):
        """hp [B, C0, N] -> path logit, coarse theta, rho (1/wavelength), each [B, N_atoms]."""
        p = self.atom_head(hp)
        theta = self.grid + (2.0 / self.n_ant) * self.max_offset * torch.tanh(p[:, 1])
        rho = self.rho_max_wl * torch.sigmoid(p[:, 2])
        return p[:, 0], theta, rho

    def steer(self, theta, rho, derivs: bool = False):
        """Exact unit-norm responses (b_re, b_im) [B, Na, N]; with derivs also the phase
        derivatives: exact first order, Fresnel second order (for the Newton Hessian)."""
        x = self.xw
        th, rh = theta.unsqueeze(-1), rho.unsqueeze(-1)
        u = rh * x ** 2 - 2 * x * th
        s = torch.sqrt(1 + rh * u)
        D = s + 1
        ph = -2 * math.pi * u / D
        sc = 1 / math.sqrt(self.n_ant)
        br, bi = torch.cos(ph) * sc, torch.sin(ph) * sc
        if not derivs:
            return br, bi
        d_t = -2 * math.pi * (-2 * x * D + u * rh * x / s) / D ** 2
        d_r = -2 * math.pi * (x ** 2 * D - u * (u + rh * x ** 2) / (2 * s)) / D ** 2
        d_tt = 2 * math.pi * x ** 2 * rh
        d_tr = 2 * math.pi * x ** 2 * th
        return br, bi, d_t, d_r, d_tt, d_tr

    def refine(self, theta, rho, xr, xi):
        """One safeguarded Newton step per atom towards the maximum of sum_k |b^H x_k|^2; the
        step is scaled (jointly) to at most half a bin in theta and rho_max / 4 in rho."""
        br, bi, pt, pr, ptt, ptr = self.steer(theta, rho, derivs=True)

        def mf(w):   # sum_n w_n conj(b_n) x_nk  -> (re, im) [B, Na, K]
            return self._analysis(br * w, bi * w, xr, xi)

        cr, ci = self._analysis(br, bi, xr, xi)
        m_r, m_i = mf(pt)
        ct_r, ct_i = m_i, -m_r                     # c_p = -j M[phi_p]
        m_r, m_i = mf(pr)
        cp_r, cp_i = m_i, -m_r
        a_r, a_i = mf(ptt)                         # c_pq = -j M[phi_pq] - M[phi_p phi_q]
        b_r, b_i = mf(pt * pt)
        ctt_r, ctt_i = a_i - b_r, -a_r - b_i
        a_r, a_i = mf(ptr)
        b_r, b_i = mf(pt * pr)
        ctr_r, ctr_i = a_i - b_r, -a_r - b_i
        b_r, b_i = mf(pr * pr)
        crr_r, crr_i = -b_r, -b_i

        def re_dot(ur, ui, vr, vi):  # 2 Re sum_k conj(u) v
            return 2 * (ur * vr + ui * vi).sum(-1)

        g_t = re_dot(cr, ci, ct_r, ct_i)
        g_r = re_dot(cr, ci, cp_r, cp_i)
        h_tt = re_dot(ct_r, ct_i, ct_r, ct_i) + re_dot(cr, ci, ctt_r, ctt_i)
        h_rr = re_dot(cp_r, cp_i, cp_r, cp_i) + re_dot(cr, ci, crr_r, crr_i)
        h_tr = re_dot(cp_r, cp_i, ct_r, ct_i) + re_dot(cr, ci, ctr_r, ctr_i)
        det = h_tt * h_rr - h_tr ** 2
        ok = (h_tt < 0) & (det > 0)
        one = torch.ones_like(det)
        safe = torch.where(ok, det, one)
        # joint Newton step where the Hessian is negative definite, otherwise a Newton step
        # along each coordinate with negative curvature (and none along the others)
        dt_n = -(h_rr * g_t - h_tr * g_r) / safe
        dr_n = -(h_tt * g_r - h_tr * g_t) / safe
        lim_t, lim_r = 1.0 / self.n_ant, 0.25 * self.rho_max_wl
        # ... and a fixed uphill step of half the limit where the curvature is not negative
        dt_d = torch.where(h_tt < 0, -g_t / torch.where(h_tt < 0, h_tt, -one), 0.5 * lim_t * torch.sign(g_t))
        dr_d = torch.where(h_rr < 0, -g_r / torch.where(h_rr < 0, h_rr, -one), 0.5 * lim_r * torch.sign(g_r))
        d_t = torch.where(ok, dt_n, dt_d)
        d_r = torch.where(ok, dr_n, dr_d)
        scale = torch.minimum(lim_t / (d_t.abs() + 1e-12), lim_r / (d_r.abs() + 1e-12)).clamp(max=1.0)
        scale = scale.detach()
        return theta + scale * d_t, (rho + scale * d_r).clamp(0.0, self.rho_max_wl)

    @staticmethod
    def _analysis(br, bi, xr, xi):
        return br @ xr + bi @ xi, br @ xi - bi @ xr

    @staticmethod
    def _synthesis(br, bi, ar, ai):
        bt_r, bt_i = br.transpose(1, 2), bi.transpose(1, 2)
        return bt_r @ ar - bt_i @ ai, bt_r @ ai + bt_i @ ar

    def forward(self, x, sigma, aux: bool = False):
        B, _, N, K = x.shape
        sigma = sigma.reshape(B)
        _, c_skip, c_out = self._precond(sigma)
        h = self.trunk(x, sigma)                                      # [B*K, C0, N]
        C0 = h.shape[1]
        hp = h.reshape(B, K, C0, N).mean(1)
        logit, theta0, rho0 = self.params(hp)
        xr, xi = x[:, 0], x[:, 1]
        # Newton refinement without gradients through it (its Hessian inverse makes them
        # spiky): the coarse head gets straight-through gradients of the refined atoms.
        with torch.no_grad():
            theta_r, rho_r = theta0.detach(), rho0.detach()
            for _ in range(self.newton):
                theta_r, rho_r = self.refine(theta_r, rho_r, xr, xi)
        theta = theta0 + (theta_r - theta0).detach()
        rho = rho0 + (rho_r - rho0).detach()
        br, bi = self.steer(theta, rho)
        g_slice = self.gate_head(h).reshape(B, K, N).transpose(1, 2)  # [B, Na, K]
        gate = torch.sigmoid(logit.unsqueeze(-1) + g_slice)
        cr, ci = self._analysis(br, bi, xr, xi)
        ar, ai = gate * cr, gate * ci
        for _ in range(self.landweber):
            sr, si = self._synthesis(br, bi, ar, ai)
            cr, ci = self._analysis(br, bi, xr - sr, xi - si)
            ar, ai = ar + gate * cr, ai + gate * ci
        sr, si = self._synthesis(br, bi, ar, ai)
        res = self.residual(h, B, N, K)
        t = torch.log(sigma).unsqueeze(1) * self.freqs.unsqueeze(0)
        e = self.emb(torch.cat([torch.sin(t), torch.cos(t)], 1))
        keep = (c_skip * torch.sigmoid(self.keep(e).reshape(B))).view(B, 1, 1, 1)
        drawn = torch.stack([sr, si], 1)
        out = drawn + keep * (x - drawn) + c_out.view(B, 1, 1, 1) * res
        if aux:
            return out, {"logit": logit, "theta0": theta0, "rho0": rho0, "theta": theta, "rho": rho}
        return out


def make_model(kind: str = "unet", **arch) -> XLDenoiser:
    return {"unet": XLDenoiser, "atom": AtomDenoiser}[kind](**arch)


def n_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
