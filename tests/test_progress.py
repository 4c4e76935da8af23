"""Progress: a redrawn bar on a terminal (with the time left when the total is known), periodic
key=value log lines otherwise, and nothing in between."""

import io
import logging
import re
import time

from nnetavg.progress import Progress
from nnetavg.report import parse_line


class FakeTty(io.StringIO):
    def isatty(self):
        return True


def test_bar_on_a_terminal():
    out = FakeTty()
    p = Progress("frames", total=1000, stream=out)
    p.last_draw -= 1.0  # as if the last redraw was a second ago
    p.update(250)
    time.sleep(0.01)
    p.close()
    text = out.getvalue()
    assert text.startswith("\r[######..................]  25% 250/1.0k frames")
    assert re.search(r"frames/s \d+:\d\d left", text)
    assert text.endswith("\n")


def test_log_lines_when_not_a_terminal(caplog):
    out = io.StringIO()
    p = Progress("utterances", total=10, period=0.0, stream=out)
    with caplog.at_level(logging.INFO, logger="nnetavg.progress"):
        for _ in range(3):
            p.update()
        p.close()
    assert out.getvalue() == ""  # never draws a bar into a log file
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 3
    figures = parse_line(lines[-1])
    assert figures["utterances-done"] == 3 and figures["percent"] == 30.0 and "seconds-left" in figures


def test_quiet_between_periods(caplog):
    p = Progress("frames", period=3600.0, stream=io.StringIO())
    with caplog.at_level(logging.INFO, logger="nnetavg.progress"):
        for _ in range(100):
            p.update(10)
    assert not caplog.records and p.done == 1000
