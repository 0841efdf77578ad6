import numpy as np
import pytest

from gnuradio.gdm.sim.profiles import make_profile, profile_names, tdl


@pytest.mark.parametrize("name", ["TDL-A", "TDL-B", "TDL-C", "TDL-D", "TDL-E"])
def test_normalised_and_scaled(name):
    p = tdl(name, 300e-9)
    assert np.isclose(p.powers.sum(), 1)
    # 38.901 tables are normalised to unit rms delay spread (LOS ones approximately)
    assert 0.5 * 300e-9 < p.rms_delay_spread < 1.5 * 300e-9
    assert p.los == (name in ("TDL-D", "TDL-E"))


def test_unknown_profile_lists_valid():
    with pytest.raises(ValueError, match="TDL-A, TDL-B"):
        make_profile("EPA", 1e-7)
    assert "flat" in profile_names()
