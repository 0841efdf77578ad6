"""The denoiser's preconditioning and its ONNX-relevant structure."""
import numpy as np
import torch

from gnuradio.gdm.models.network import N_COND, N_GLOBAL, Denoiser, NetConfig, n_params


def _inputs(B=3, seed=0):
    g = torch.Generator().manual_seed(seed)
    cond = torch.randn(B, N_COND, 14, 72, generator=g)
    cond[:, 2] = -2 + 0.5 * torch.randn(B, 14, 72, generator=g)
    return torch.randn(B, 2, 14, 72, generator=g), torch.rand(B, generator=g) + 0.05, cond, torch.randn(B, N_GLOBAL, generator=g)


def test_untrained_network_is_the_gaussian_denoiser_around_the_bank():
    # head starts at zero: D must equal m + s^2/(s^2+sigma^2) (x - m) exactly
    net = Denoiser(NetConfig((8, 8, 8))).eval()
    x, sigma, cond, glob = _inputs()
    with torch.no_grad():
        d = net(x, sigma, cond, glob)
    m, s2 = cond[:, :2], torch.exp(2 * cond[:, 2:3])
    want = m + s2 / (s2 + sigma[:, None, None, None] ** 2) * (x - m)
    assert torch.allclose(d, want, atol=1e-6)


def test_output_depends_on_every_input_once_trained_weights_move():
    net = Denoiser(NetConfig((8, 8, 8))).eval()
    torch.nn.init.normal_(net.head.weight, std=0.1)
    x, sigma, cond, glob = _inputs()
    with torch.no_grad():
        base = net(x, sigma, cond, glob)
        for i, args in enumerate([(x + 0.1, sigma, cond, glob), (x, sigma * 2, cond, glob),
                                  (x, sigma, cond + 0.1, glob), (x, sigma, cond, glob + 1)]):
            assert not torch.allclose(net(*args), base), f"input {i} ignored"


def test_shipped_size_budget():
    # the shipped width must stay within the issue's ~50k-300k parameter range
    assert 50_000 <= n_params(Denoiser(NetConfig())) <= 300_000
