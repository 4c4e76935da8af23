"""Progress of long commands: a bar on a terminal, periodic log lines otherwise.

``Progress(what, total=None)``; call ``update(n)`` as work is done and ``close()`` at the end.
When stderr is a terminal, one line is redrawn in place at most 5 times a second:
``[#########.......] 56% 1.2M/2.1M frames 15.2k frames/s 0:41 left`` (the bar and the time left
only when the total is known). When it is not (logs of run.pl, slurm.pl, CI), a ``progress``
log line with the same figures as ``key=value`` is written every ``period`` seconds, so long
jobs show life in their log without flooding it.
"""

from __future__ import annotations

import logging
import sys
import time

from nnetavg.log import kv

log = logging.getLogger("nnetavg.progress")


def _si(x: float) -> str:
    for unit, scale in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(x) >= scale:
            return f"{x / scale:.1f}{unit}"
    return f"{x:.0f}"


def _clock(seconds: float) -> str:
    s = int(seconds)
    return f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}" if s >= 3600 else f"{s // 60}:{s % 60:02d}"


class Progress:
    def __init__(self, what: str = "frames", total: float | None = None, period: float = 60.0,
                 stream=None, tty: bool | None = None, width: int = 24):
        self.what, self.total, self.period, self.width = what, total, period, width
        self.stream = stream if stream is not None else sys.stderr
        self.tty = self.stream.isatty() if tty is None else tty
        self.done = 0.0
        self.start = self.last_draw = self.last_log = time.perf_counter()
        self._drawn = False

    def rate(self, now: float | None = None) -> float:
        return self.done / max((now or time.perf_counter()) - self.start, 1e-9)

    def line(self, now: float) -> str:
        rate = self.rate(now)
        parts = []
        if self.total:
            frac = min(1.0, self.done / self.total)
            fill = int(round(frac * self.width))
            parts.append(f"[{'#' * fill}{'.' * (self.width - fill)}] {100 * frac:3.0f}% "
                         f"{_si(self.done)}/{_si(self.total)} {self.what}")
        else:
            parts.append(f"{_si(self.done)} {self.what}")
        parts.append(f"{_si(rate)} {self.what}/s")
        if self.total and rate > 0:
            parts.append(f"{_clock(max(0.0, self.total - self.done) / rate)} left")
        else:
            parts.append(f"{_clock(now - self.start)} elapsed")
        return " ".join(parts)

    def update(self, n: float = 1) -> None:
        self.done += n
        now = time.perf_counter()
        if self.tty:
            if now - self.last_draw >= 0.2:
                self.stream.write("\r" + self.line(now) + "\033[K")
                self.stream.flush()
                self.last_draw, self._drawn = now, True
        elif now - self.last_log >= self.period:
            figures = {f"{self.what}_done": int(self.done), f"{self.what}_per_s": round(self.rate(now), 1)}
            if self.total:
                figures["percent"] = round(100 * self.done / self.total, 1)
                figures["seconds_left"] = round(max(0.0, self.total - self.done) / max(self.rate(now), 1e-9))
            log.info("progress %s", kv(**figures))
            self.last_log = now

    def close(self) -> None:
        if self.tty and self._drawn:
            self.stream.write("\r" + self.line(time.perf_counter()) + "\033[K\n")
            self.stream.flush()
