import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

GRC = Path(__file__).resolve().parents[2] / "grc"

# Every subprocess (grcc, generated flowgraphs) must find the checkout's block YAML first.
_paths = [p for p in os.environ.get("GRC_BLOCKS_PATH", "").split(os.pathsep) if p]
if str(GRC) not in _paths:
    os.environ["GRC_BLOCKS_PATH"] = os.pathsep.join([str(GRC), *_paths])


@pytest.fixture(scope="module")
def platform():
    """GRC's own platform with the block library loaded (GRC_BLOCKS_PATH includes grc/)."""
    grc_core = pytest.importorskip("gnuradio.grc.core.platform")
    from gnuradio import gr
    p = grc_core.Platform(name="gr-gdm tests", prefs=gr.prefs(), version=gr.version(),
                          version_parts=(gr.major_version(), gr.api_version(), gr.minor_version()))
    p.build_library()
    return p


@pytest.fixture(scope="session")
def compiled(tmp_path_factory):
    """Every example flowgraph compiled once by grcc: the folder of generated scripts."""
    grcc = shutil.which("grcc")
    if grcc is None:
        pytest.skip("grcc not installed")
    out = tmp_path_factory.mktemp("grcc")
    files = sorted((GRC / "examples").glob("*.grc"))
    # The venv's interpreter (system site packages) so the generated code sees the same gnuradio.
    r = subprocess.run([sys.executable, grcc, "-o", str(out), *map(str, files)],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    return out
