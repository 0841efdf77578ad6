"""The untrained network is plain demapping (z = y, w = v): the head starts at zero."""
import torch

from gnuradio.gdm.denoising.export import example_inputs
from gnuradio.gdm.denoising.network import NetConfig, SymbolNet
from gnuradio.gdm import FrameSpec


def test_untrained_network_is_the_identity():
    torch.manual_seed(0)
    net = SymbolNet(NetConfig(width=16, blocks=2))
    y, logv, cond, glob = example_inputs(FrameSpec.preset("nr72"), batch=3)
    out = net(y, logv, cond, glob)
    assert out.shape == (3, 3, 14, 72)
    assert torch.equal(out[:, :2], y) and torch.equal(out[:, 2:], logv)


def test_output_depends_on_the_whole_frame_once_trained_weights_move():
    torch.manual_seed(0)
    net = SymbolNet(NetConfig(width=16, blocks=1))
    torch.nn.init.normal_(net.head.weight, std=0.1)
    y, logv, cond, glob = example_inputs(FrameSpec.preset("nr72"), batch=1)
    base = net(y, logv, cond, glob)
    y2 = y.clone()
    y2[0, :, 13, 70] += 1.0  # a far-away RE of the same frame
    moved = net(y2, logv, cond, glob)
    assert (moved[0, :, 0, 0] - base[0, :, 0, 0]).abs().max() > 0  # frame context reaches (0, 0)
