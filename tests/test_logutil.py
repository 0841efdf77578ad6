import logging

from gnuradio.gdm.logutil import Throttle

log = logging.getLogger("gnuradio.gdm.test_logutil")


class Clock:
    t = 0.0

    def __call__(self):
        return self.t


def test_first_lines_pass_then_one_per_interval_with_the_count(caplog):
    clock = Clock()
    th = Throttle(first=3, every_s=60, clock=clock)
    with caplog.at_level(logging.WARNING):
        written = [th.warning(log, "k", "frame %d failed", i) for i in range(10)]
    assert written == [True] * 3 + [False] * 7
    assert "repeats are now logged at most every 60 s" in caplog.records[2].getMessage()
    clock.t = 61.0
    with caplog.at_level(logging.WARNING):
        assert th.warning(log, "k", "frame %d failed", 10)
    last = caplog.records[-1].getMessage()
    assert last.startswith("frame 10 failed") and "[7 more like this since the last report, 11 in all]" in last
    assert th.counts["k"] == 11


def test_kinds_are_limited_separately(caplog):
    th = Throttle(first=1, every_s=60, clock=Clock())
    with caplog.at_level(logging.WARNING):
        assert th.warning(log, "a", "a") and th.warning(log, "b", "b")
        assert not th.warning(log, "a", "a")
    assert th.counts == {"a": 2, "b": 1}
