import numpy as np
import pytest

from gnuradio.gdm import FrameSpec


def test_nr72_geometry():
    s = FrameSpec.preset("nr72")
    assert (s.fft_len, s.cp_len, s.n_occ, s.n_sym) == (128, 16, 72, 14)
    assert s.sample_rate == 1.92e6 and s.subcarrier_spacing == 15e3
    assert list(s.occupied) == sorted(s.occupied) and 0 not in s.occupied
    assert s.pilot_mask(0).sum() == 2 * 72 and set(np.flatnonzero(s.pilot_mask(0).any(1))) == {2, 11}
    assert s.n_data == 12 * 72
    assert s.frame_len == 15 * 144


def test_two_tx_pilots_are_orthogonal_combs():
    s = FrameSpec.preset("nr72", n_tx=2)
    m0, m1 = s.pilot_mask(0), s.pilot_mask(1)
    assert not (m0 & m1).any() and ((m0 | m1) == s.any_pilot_mask).all()
    row = np.flatnonzero(m0[2])
    assert (row % 2 == 0).all() and (np.flatnonzero(m1[2]) % 2 == 1).all()
    assert np.allclose(np.abs(s.pilot_values(1)[m1]), 1)
    assert s.pilot_values(0)[m1].sum() == 0


def test_json_roundtrip_and_unknown_names():
    s = FrameSpec.preset("wifi64", n_tx=2)
    assert FrameSpec.from_json(s.to_json()) == s
    with pytest.raises(ValueError, match="valid presets: nr72, nr20, wifi64"):
        FrameSpec.preset("lte")
    with pytest.raises(ValueError, match="unknown modulation.*valid"):
        FrameSpec.preset("nr72", modulation="8psk")
    with pytest.raises(ValueError, match="unknown FrameSpec fields"):
        FrameSpec.from_json({"bogus": 1})


def test_preamble_has_two_identical_halves():
    from gnuradio.gdm.ofdm.modem import preamble_time
    s = FrameSpec.preset("nr72")
    body = preamble_time(s)[s.cp_len:]
    assert np.allclose(body[:64], body[64:], atol=1e-6)
    assert np.isclose(np.mean(np.abs(body) ** 2), s.n_occ / s.fft_len, rtol=0.05)
