"""Whole-chain sanity check: TX -> time-domain flat Rayleigh (1x2) -> demod -> MRC with genie (true)
CSI -> hard QPSK decisions, against the closed-form BER of 2-branch MRC. Timing is ideal here: a
synchronizer drops the frames in the deepest fades, which would bias the BER low.

    python -m gnuradio.gdm.metrics.sanity      # prints the table
"""
from __future__ import annotations

from math import comb

import numpy as np
from scipy.optimize import brentq

from ..frame import FrameSpec
from ..ofdm.equalizer import equalize
from ..ofdm.modem import demodulate, extract_data, occupied
from ..ofdm.qam import hard_decision
from ..ofdm.transceiver import random_payload, transmit
from ..sim.channel import StreamChannel


def mrc_ber(ebn0_db, L: int = 2):
    """Closed-form BER of BPSK/Gray-QPSK bits with L-branch MRC on Rayleigh fading."""
    g = 10 ** (np.asarray(ebn0_db) / 10)
    mu = np.sqrt(g / (1 + g))
    return ((1 - mu) / 2) ** L * sum(comb(L - 1 + l, l) * ((1 + mu) / 2) ** l for l in range(L))


def measured_ber(snr_db: float, seeds=range(5), n_frames: int = 200) -> float:
    spec = FrameSpec.preset("nr72", modulation="qpsk", fec="none")
    x, grids, _ = transmit([random_payload(i, 100) for i in range(n_frames)], range(n_frames), spec)
    x = np.concatenate([x, np.zeros((1, spec.frame_len), np.complex64)], 1)
    errs = bits = 0
    for seed in seeds:  # independent fading realisations: enough joint deep fades to average over
        ch = StreamChannel(1, 2, spec.sample_rate, "flat", 0, 300.0, snr_db, seed=seed)
        y = ch.process(x)
        for b in range(n_frames):
            g = occupied(demodulate(y, spec, b * spec.frame_len + ch.latency), spec)
            X, _ = equalize(g[None], ch.frame_truth(spec, b * spec.frame_len)[None], ch.noise_var, "mrc")
            _, got = hard_decision(extract_data(X[0, 0], spec), "qpsk")
            _, ref = hard_decision(extract_data(grids[b, 0], spec), "qpsk")
            errs += np.count_nonzero(got != ref)
            bits += ref.size
    return errs / bits


def implied_ebn0(ber: float) -> float:
    """Per-branch Eb/N0 [dB] at which the closed form gives ``ber``."""
    return brentq(lambda e: mrc_ber(e) - ber, -10, 40)


def main(snrs=(0.0, 5.0, 10.0, 15.0)):
    for snr in snrs:
        ber = measured_ber(snr)
        ebn0 = snr - 10 * np.log10(2)  # 2 bits per QPSK symbol
        print(f"SNR {snr:4.1f} dB  BER {ber:.3e}  closed form {mrc_ber(ebn0):.3e}  "
              f"implied Eb/N0 {implied_ebn0(ber):.2f} vs {ebn0:.2f} dB")


if __name__ == "__main__":
    main()
