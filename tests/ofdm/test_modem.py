import numpy as np

from gnuradio.gdm import FrameSpec
from gnuradio.gdm.ofdm.modem import build_grid, demodulate, extract_data, modulate, occupied


def test_modulate_demodulate_roundtrip_two_streams():
    spec = FrameSpec.preset("nr72", n_tx=2)
    rng = np.random.default_rng(0)
    data = (rng.standard_normal((3, 2, spec.n_data)) + 1j * rng.standard_normal((3, 2, spec.n_data))).astype(np.complex64)
    grid = build_grid(data, spec)
    x = modulate(grid, spec)
    assert x.shape == (2, 3 * spec.frame_len)
    for b in range(3):
        g = occupied(demodulate(x, spec, b * spec.frame_len), spec)
        assert np.allclose(g / spec.tx_amplitude, grid[b], atol=1e-5)
    assert np.allclose(extract_data(grid, spec), data)
