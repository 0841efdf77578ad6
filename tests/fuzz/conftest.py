"""The ``fuzz`` fixture (fuzzbook.BOOK) and the per-class table at the end of a run when
GDM_FUZZ_TABLE names a file (see fuzzbook.py)."""
import os
from pathlib import Path

import pytest

from fuzzbook import BOOK, PROFILE


@pytest.fixture(scope="session")
def fuzz():
    return BOOK


def pytest_terminal_summary(terminalreporter):
    path = os.environ.get("GDM_FUZZ_TABLE")
    if not path or not BOOK.classes:
        return
    text = BOOK.table()
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text(text)
    terminalreporter.write_line(f"fuzz table ({PROFILE} profile) -> {path}")
    terminalreporter.write(text)
