"""Make the checkout importable as gnuradio.gdm (development mode) for every test."""
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
_dev = ROOT / ".dev" / "gnuradio"
_dev.mkdir(parents=True, exist_ok=True)
if not (_dev / "gdm").exists():
    os.symlink("../../python/gdm", _dev / "gdm")
sys.path.insert(0, str(ROOT / ".dev"))
os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT / ".dev"), os.environ.get("PYTHONPATH")]))
os.environ.setdefault("GRC_BLOCKS_PATH", str(ROOT / "grc"))
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("MPLBACKEND", "Agg")


import pytest  # noqa: E402


@pytest.fixture(autouse=True)
def _fresh_warning_throttle():
    """Each test sees its own first warnings (the process-wide throttle would hide them after
    earlier tests produced the same kind)."""
    from gnuradio.gdm import logutil
    logutil.THROTTLE = logutil.Throttle()
    yield
