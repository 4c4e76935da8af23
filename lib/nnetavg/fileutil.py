"""Atomic output files: write to a temporary file beside the target, fsync, rename.

A crash, a kill or an exception while writing leaves the old file (or none) in place, never a
half-written model. ``-`` means standard output, and a path that exists and is not a regular file
(``/dev/null``, another device, a FIFO, ``/dev/stdout``) is written in place: renaming over it would
replace the device node with a file (Kaldi's steps/nnet/train.sh writes counts to /dev/null; as
root, that would destroy the machine's /dev/null). The file gets the mode an
ordinary ``open()`` would give it (0666 less the umask), not mkstemp's private 0600, so group
members' cluster jobs can read the models and counts.
"""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
from typing import BinaryIO, Iterator


def current_umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_output(path: str) -> Iterator[BinaryIO]:
    """Yields a binary file object; on success renames it to ``path``, on error removes it."""
    if path in ("-", ""):
        yield sys.stdout.buffer
        sys.stdout.buffer.flush()
        return
    if os.path.exists(path) and not os.path.isfile(path) and not os.path.isdir(path):
        with open(path, "wb") as f:
            yield f
        return
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix="." + os.path.basename(path) + ".", suffix=".tmp", dir=directory)
    try:
        os.fchmod(fd, 0o666 & ~current_umask())
        with os.fdopen(fd, "wb") as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
