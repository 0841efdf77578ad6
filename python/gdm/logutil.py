"""Rate limit for warnings that can repeat on every frame (inference fallbacks, dropped PDUs).

A receiver fed bad input for days must not fill the disk with identical lines, yet no occurrence
may go unaccounted: the first few of each kind are logged as they come, later ones at most once
per interval with the number folded into that line, and every occurrence is counted."""
from __future__ import annotations

import logging
import threading
import time


class Throttle:
    def __init__(self, first: int = 5, every_s: float = 60.0, clock=time.monotonic):
        self.first, self.every_s, self.clock = int(first), float(every_s), clock
        self.counts: dict[str, int] = {}
        self._held: dict[str, int] = {}  # occurrences since the last line of that kind
        self._last: dict[str, float] = {}
        self._lock = threading.Lock()  # blocks call from their own scheduler threads

    def warning(self, log: logging.Logger, key: str, msg: str, *args) -> bool:
        """Logs ``msg % args`` unless this kind was logged less than ``every_s`` ago after its
        first ``first`` lines; returns whether a line was written."""
        with self._lock:
            n = self.counts[key] = self.counts.get(key, 0) + 1
            held = self._held.get(key, 0)
            now = self.clock()
            if n > self.first and now - self._last.get(key, -float("inf")) < self.every_s:
                self._held[key] = held + 1
                return False
            self._held[key] = 0
            self._last[key] = now
        if held:
            msg += f" [{held} more like this since the last report, {n} in all]"
        elif n == self.first:
            msg += f" [repeats are now logged at most every {self.every_s:g} s, with a count]"
        log.warning(msg, *args)
        return True


THROTTLE = Throttle()  # one per process: its counts are what a user sees summarised in the log


def warn_throttled(log: logging.Logger, key: str, msg: str, *args) -> bool:
    return THROTTLE.warning(log, key, msg, *args)
