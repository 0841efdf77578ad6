"""The CMake build installs a module that imports as gnuradio.gdm from the prefix alone."""
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.skipif(shutil.which("cmake") is None, reason="cmake not installed")
def test_cmake_build_and_install(tmp_path):
    build, prefix = tmp_path / "build", tmp_path / "prefix"
    run = lambda *a: subprocess.run(a, check=True, capture_output=True, text=True)  # noqa: E731
    run("cmake", "-S", str(ROOT), "-B", str(build), f"-DCMAKE_INSTALL_PREFIX={prefix}")
    run("cmake", "--build", str(build))
    run("cmake", "--install", str(build))
    pkgs = list(prefix.glob("lib/python3*/*-packages/gnuradio/gdm/__init__.py"))
    assert len(pkgs) == 1
    assert (pkgs[0].parent / "blocks" / "channel_estimator.py").exists()
    blocks = sorted(p.name for p in (prefix / "share/gnuradio/grc/blocks").glob("gdm_*.block.yml"))
    assert len(blocks) >= 7 and (prefix / "share/gnuradio/grc/blocks/gdm.tree.yml").exists()
    env = {**os.environ, "PYTHONPATH": str(pkgs[0].parents[2])}
    out = subprocess.run([sys.executable, "-c", "from gnuradio import gdm; print(gdm.__file__); "
                          "print(gdm.ofdm_tx.__name__)"], env=env, capture_output=True, text=True, check=True)
    assert str(prefix) in out.stdout and "ofdm_tx" in out.stdout
    app = (prefix / "bin" / "gr-gdm").read_text().splitlines()[0]
    assert app.startswith("#!/") and "python3" in app
