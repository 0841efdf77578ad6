"""Fuzz bookkeeping. Every property test runs each generated case inside ``fuzz.case(input_class)``:
the case is counted, an exception escaping it is counted as a crash (and fails the test), a case
slower than GDM_FUZZ_HANG_S seconds (default 20) counts as a hang and fails the test, and a case
that never returns ends the run after 3x that with every thread's traceback (faulthandler). The
test reports what the receiver did with the case (``rec.add(accepted=..., rejected=...)``; rejected
means refused *and counted* by the code under test, the test asserts that).

Profiles: HYPOTHESIS_PROFILE=ci (default, `make test`) or long (GDM_FUZZ_EXAMPLES, default 3000,
examples a property).
``GDM_FUZZ_TABLE=out/fuzz_table.md pytest tests/fuzz`` writes the per-class table (markdown) there
and prints it; without the variable nothing is printed.
"""
from __future__ import annotations

import collections
import contextlib
import faulthandler
import os
import resource
import sys
import time
from pathlib import Path

from hypothesis import HealthCheck, settings

PROFILE = os.environ.get("HYPOTHESIS_PROFILE", "ci")
_health = dict(deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture,
                                                      HealthCheck.data_too_large])
settings.register_profile("ci", max_examples=25, **_health)
settings.register_profile("long", max_examples=int(os.environ.get("GDM_FUZZ_EXAMPLES", "3000")), **_health)
settings.load_profile(PROFILE)


def examples(ci: int):
    """Settings decorator: ``ci`` examples under the (short) ci profile, the profile's count otherwise."""
    return settings(max_examples=ci) if PROFILE == "ci" else settings()


HANG_S = float(os.environ.get("GDM_FUZZ_HANG_S", "20"))


def _rss_mb() -> float:
    try:
        return int(Path("/proc/self/statm").read_text().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
    except OSError:
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


class _Tally:
    def __init__(self):
        self.cases = self.crashes = self.hangs = 0
        self.counts: collections.Counter = collections.Counter()
        self.slowest = 0.0
        self.rss_first = self.rss_last = None


class _Case:
    def __init__(self, tally: _Tally):
        self.tally = tally

    def add(self, **counts: int) -> None:
        """What went in and what the code under test did with it: items (frames, files ... in
        the case), accepted, rejected (refused and counted)."""
        self.tally.counts.update({k: int(v) for k, v in counts.items()})


class FuzzBook:
    COLUMNS = (("accepted", "accepted"), ("rejected", "rejected, counted"))

    def __init__(self):
        self.classes: dict[str, _Tally] = {}
        self.notes: dict[str, str] = {}

    @contextlib.contextmanager
    def case(self, input_class: str, note: str = ""):
        t = self.classes.setdefault(input_class, _Tally())
        if note:
            self.notes[input_class] = note
        if t.rss_first is None:
            t.rss_first = _rss_mb()
        t.cases += 1
        faulthandler.dump_traceback_later(3 * HANG_S, exit=True, file=sys.__stderr__)
        t0 = time.monotonic()
        try:
            yield _Case(t)
        except BaseException:
            t.crashes += 1
            raise
        finally:
            faulthandler.cancel_dump_traceback_later()
            dt = time.monotonic() - t0
            t.slowest = max(t.slowest, dt)
            t.rss_last = _rss_mb()
        if dt > HANG_S:
            t.hangs += 1
            raise AssertionError(f"fuzz case of class {input_class!r} took {dt:.1f} s (> {HANG_S:g} s): a hang")

    def table(self) -> str:
        rows = ["| input class | cases | crashes | hangs | items in | accepted | rejected, counted | "
                "slowest case s | RSS change MB |",
                "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
        for name, t in self.classes.items():
            rss = (t.rss_last or 0) - (t.rss_first or 0)
            rows.append(f"| {name} | {t.cases} | {t.crashes} | {t.hangs} | {t.counts['items']} | "
                        f"{t.counts['accepted']} | {t.counts['rejected']} | {t.slowest:.2f} | {rss:+.0f} |")
        notes = sorted(set(self.notes.values()))
        return "\n".join(rows) + "\n" + "".join(f"\n- {n}" for n in notes) + ("\n" if notes else "")


BOOK = FuzzBook()
