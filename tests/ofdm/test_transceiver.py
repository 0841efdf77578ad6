import numpy as np

from gnuradio.gdm import FrameSpec
from gnuradio.gdm.ofdm import framing
from gnuradio.gdm.ofdm.modem import demodulate, occupied
from gnuradio.gdm.ofdm.transceiver import decode_batch, random_payload, transmit


def test_noiseless_roundtrip_all_modulations_and_streams():
    for n_tx in (1, 2):
        for mod in ("qpsk", "16qam", "64qam"):
            for fec in ("none", "ldpc12"):
                spec = FrameSpec.preset("nr72", n_tx=n_tx, modulation=mod, fec=fec)
                n = framing.max_payload_bytes(spec.info_bits_per_frame)
                pl = [random_payload(i, n) for i in range(2)]
                x, grids, _ = transmit(pl, [10, 11], spec)
                g = np.stack([occupied(demodulate(x, spec, b * spec.frame_len), spec) for b in range(2)])
                X = g / spec.tx_amplitude  # [B, n_tx(rx=tx here), S, K] identity channel per stream
                d = decode_batch(X, np.full(X.shape, 1e-3, np.float32), spec)
                assert [f.payload for f in d] == pl and [f.seq for f in d] == [10, 11], (n_tx, mod, fec)


def test_nonfinite_frame_is_reported_not_decoded():
    spec = FrameSpec.preset("nr72")
    x, grids, _ = transmit([b"abc"], [0], spec)
    X = grids.copy()
    X[0, 0, 5, 3] = np.nan
    d = decode_batch(X, np.ones(X.shape, np.float32), spec)[0]
    assert not d.crc_ok and "non-finite" in d.reason
