"""Atomic output files: write to a temporary file beside the target, fsync, rename.

A crash, a kill or an exception while writing leaves the old file (or none) in place, never a
half-written model. ``-`` means standard output (not atomic, by nature).
"""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
from typing import BinaryIO, Iterator


@contextlib.contextmanager
def atomic_output(path: str) -> Iterator[BinaryIO]:
    """Yields a binary file object; on success renames it to ``path``, on error removes it."""
    if path in ("-", ""):
        yield sys.stdout.buffer
        sys.stdout.buffer.flush()
        return
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix="." + os.path.basename(path) + ".", suffix=".tmp", dir=directory)
    try:
        with os.fdopen(fd, "wb") as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
