import pytest


@pytest.fixture(scope="module")
def platform():
    """GRC's own platform with the block library loaded (GRC_BLOCKS_PATH includes grc/)."""
    grc_core = pytest.importorskip("gnuradio.grc.core.platform")
    from gnuradio import gr
    p = grc_core.Platform(name="gr-gdm tests", prefs=gr.prefs(), version=gr.version(),
                          version_parts=(gr.major_version(), gr.api_version(), gr.minor_version()))
    p.build_library()
    return p
