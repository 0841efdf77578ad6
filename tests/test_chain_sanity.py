"""Whole-chain sanity: TX -> time-domain flat Rayleigh (1x2) -> demod -> MRC with genie (true)
CSI -> hard QPSK decisions, against the closed-form BER of 2-branch MRC. Timing is ideal here:
a synchronizer drops the frames in the deepest fades, which would bias the BER low."""
from math import comb

import numpy as np
from scipy.optimize import brentq

from gnuradio.gdm import FrameSpec
from gnuradio.gdm.ofdm.equalizer import equalize
from gnuradio.gdm.ofdm.modem import demodulate, extract_data, occupied
from gnuradio.gdm.ofdm.qam import hard_decision
from gnuradio.gdm.ofdm.transceiver import random_payload, transmit
from gnuradio.gdm.sim.channel import StreamChannel


def mrc_ber(ebn0_db, L=2):
    g = 10 ** (np.asarray(ebn0_db) / 10)
    mu = np.sqrt(g / (1 + g))
    return ((1 - mu) / 2) ** L * sum(comb(L - 1 + l, l) * ((1 + mu) / 2) ** l for l in range(L))


def _measured_ber(spec, x, grids, snr, seed):
    ch = StreamChannel(1, 2, spec.sample_rate, "flat", 0, 300.0, snr, seed=seed)
    y = ch.process(x)
    errs = bits = 0
    for b in range(grids.shape[0]):
        g = occupied(demodulate(y, spec, b * spec.frame_len + ch.latency), spec)
        H = ch.frame_truth(spec, b * spec.frame_len)
        X, _ = equalize(g[None], H[None], ch.noise_var, "mrc")
        _, got = hard_decision(extract_data(X[0, 0], spec), "qpsk")
        _, ref = hard_decision(extract_data(grids[b, 0], spec), "qpsk")
        errs += np.count_nonzero(got != ref)
        bits += ref.size
    return errs, bits


def test_qpsk_mrc_flat_rayleigh_within_half_db_of_theory():
    spec = FrameSpec.preset("nr72", modulation="qpsk", fec="none")
    n = 200
    x, grids, _ = transmit([random_payload(i, 100) for i in range(n)], range(n), spec)
    x = np.concatenate([x, np.zeros((1, spec.frame_len), np.complex64)], 1)
    for snr in (5.0, 10.0):
        # several independent fading realisations: enough joint deep fades to average over
        counts = np.array([_measured_ber(spec, x, grids, snr, seed) for seed in range(5)])
        ber = counts[:, 0].sum() / counts[:, 1].sum()
        # Eb/N0 per branch that the closed form needs to produce the measured BER
        eff = brentq(lambda e: mrc_ber(e) - ber, -10, 40)
        assert abs(eff - (snr - 10 * np.log10(2))) < 0.5, (snr, ber, eff)
