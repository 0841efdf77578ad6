"""Issue #3 whole-chain check: measured 1x2 MRC BER within 0.5 dB of the closed form."""
import numpy as np

from gnuradio.gdm.metrics.sanity import implied_ebn0, measured_ber


def test_qpsk_mrc_flat_rayleigh_within_half_db_of_theory():
    for snr in (5.0, 10.0):
        eff = implied_ebn0(measured_ber(snr))
        assert abs(eff - (snr - 10 * np.log10(2))) < 0.5, (snr, eff)
