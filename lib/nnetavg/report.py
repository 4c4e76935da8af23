"""Reading figures back from nnetavg's logs (every figure is logged as ``key=value``).

The log format is fixed by :mod:`nnetavg.log`: ``LOG (prog rank r/n HH:MM:SS) words key=value ...``,
and commands that print results to stdout print bare ``key=value`` lines. These functions turn
such lines into numbers for tables and plots.
"""

from __future__ import annotations

import math
import re

from nnetavg.errors import NnetavgError

_KV = re.compile(r"(?<![\w-])([A-Za-z][\w-]*)=(\S+)")
_RANK = re.compile(r"^\w+(?:\[\d+\])? \(\S+ rank (\d+)/\d+ ")


def parse_line(line: str) -> dict[str, float]:
    """The numeric ``key=value`` figures of one line."""
    out = {}
    for k, v in _KV.findall(line):
        try:
            out[k] = float(v)
        except ValueError:
            continue
    return out


def figures(paths: list[str], grep: str = "", rank: int | None = None) -> list[dict[str, float]]:
    """Figures of every line of ``paths`` containing ``grep`` (and logged by ``rank``)."""
    rows = []
    for path in paths:
        try:
            with open(path, encoding="utf-8", errors="replace") as f:
                lines = f.readlines()
        except OSError as exc:
            raise NnetavgError(f"cannot read log {path}: {exc.strerror}") from None
        for line in lines:
            if grep and grep not in line:
                continue
            if rank is not None:
                m = _RANK.match(line)
                if not m or int(m.group(1)) != rank:
                    continue
            f = parse_line(line)
            if f:
                rows.append(f)
    return rows


def summarise(rows: list[dict[str, float]], last=(), total=(), maximum=(), ratio=()) -> list[float]:
    """Values in order: the last value of each ``last`` key, the sum of each ``total`` key, the
    maximum of each ``maximum`` key, and sum(a)/sum(b) for each ``a/b`` in ``ratio``."""
    def column(key):
        vals = [r[key] for r in rows if key in r]
        if not vals:
            raise NnetavgError(f"no figure {key} in the log lines selected")
        return vals
    out = [column(k)[-1] for k in last]
    out += [math.fsum(column(k)) for k in total]
    out += [max(column(k)) for k in maximum]
    for r in ratio:
        a, b = r.split("/")
        out.append(math.fsum(column(a)) / math.fsum(column(b)))
    return out
