"""One log format for every command, rank-aware, with figures as ``key=value``.

A line looks like::

    LOG (nnet-train-simple rank 0/1 02:41:07) epoch-done frames=120000 cross-entropy=1.234 ...

The level word follows Kaldi (``LOG``, ``WARNING``, ``ERROR``, ``VLOG[1]``), so people used to
grepping Kaldi logs find what they expect; :func:`kv` formats figures so scripts can parse them
with one regular expression (``(\\S+)=(\\S+)``).

The commands that stand in for Kaldi's own binaries (``nnet-train-frmshuff`` ...) log with
Kaldi's prefix instead, one field wide, so the awk field numbers of Kaldi's scripts hold::

    LOG (nnet-train-frmshuff[nnetavg-0.1.0]:main():nnet_train_frmshuff.py:88) AvgLoss: 1.234 (Xent), ...
"""

from __future__ import annotations

import logging
import sys
import time

_LEVEL_WORD = {logging.DEBUG: "VLOG[1]", logging.INFO: "LOG", logging.WARNING: "WARNING",
               logging.ERROR: "ERROR", logging.CRITICAL: "ERROR"}


class _KaldiFormatter(logging.Formatter):
    def __init__(self, prog: str, rank: int, size: int):
        super().__init__()
        self.prog, self.rank, self.size = prog, rank, size

    def format(self, record: logging.LogRecord) -> str:
        word = _LEVEL_WORD.get(record.levelno, record.levelname)
        stamp = time.strftime("%H:%M:%S", time.localtime(record.created))
        return f"{word} ({self.prog} rank {self.rank}/{self.size} {stamp}) {record.getMessage()}"


class _KaldiBinaryFormatter(logging.Formatter):
    """Kaldi's own prefix: ``LOG (prog[version]:function():file:line) message``."""

    def __init__(self, prog: str):
        super().__init__()
        from nnetavg import __version__  # noqa: PLC0415
        self.prog, self.version = prog, __version__

    def format(self, record: logging.LogRecord) -> str:
        word = _LEVEL_WORD.get(record.levelno, record.levelname)
        return (f"{word} ({self.prog}[nnetavg-{self.version}]:{record.funcName}():{record.filename}:{record.lineno}) "
                f"{record.getMessage()}")


def setup(prog: str, verbose: int = 0, rank: int = 0, size: int = 1, kaldi_prefix: bool = False) -> None:
    """Sends the ``nnetavg`` loggers to stderr in the common format (``kaldi_prefix``: Kaldi's)."""
    root = logging.getLogger("nnetavg")
    for h in list(root.handlers):
        root.removeHandler(h)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_KaldiBinaryFormatter(prog) if kaldi_prefix else _KaldiFormatter(prog, rank, size))
    root.addHandler(handler)
    root.setLevel(logging.DEBUG if verbose > 0 else logging.INFO)
    root.propagate = False


def fmt(value) -> str:
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)


def kv(**figures) -> str:
    """``key=value`` pairs, underscores in keys written as dashes."""
    return " ".join(f"{k.replace('_', '-')}={fmt(v)}" for k, v in figures.items())
