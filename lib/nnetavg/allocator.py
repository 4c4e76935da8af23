"""Keeps freed activation buffers in the process's heap, so that a training step does not pay
the kernel for fresh pages every minibatch.

A step allocates the same arrays every minibatch (activations, derivatives, temporaries of a few
MiB each) and frees them at its end. glibc's malloc serves blocks above its mmap threshold
(128 KiB, rising on its own only as far as the largest block freed so far) with ``mmap`` and
gives them back with ``munmap``, and trims the top of the heap when more than twice that
threshold is free: every step then page-faults its buffers in again, and the kernel zeroes each
page first. On the 440-3x512-68 network the SGD step is 1.27-1.32x faster without that
(bench/RESULTS.md, same run). :func:`keep_freed_memory` raises the mmap threshold to glibc's maximum
(32 MiB) and the trim threshold to 1 GiB, once per process: freed blocks of up to 32 MiB are
reused from the heap. Peak memory did not grow (bench/memory.py: the same arrays are alive at the peak); the
process keeps up to 1 GiB of freed heap instead of returning it at once.

It is set by the training and forward commands at their entry (``tune_malloc`` in
``bin/_common.py``), once per process, with a log line; importing the library or building a
Trainer changes nothing. Only where the C library is glibc (others are left alone);
``NNETAVG_MALLOC=default`` leaves malloc's own settings (for comparisons), and so does a
``GLIBC_TUNABLES`` that sets any ``glibc.malloc`` tunable (the user's choice wins). CuPy arrays have
their own pool and are not affected.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import os

log = logging.getLogger(__name__)

_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3     # glibc's malloc.h
MMAP_THRESHOLD = 32 << 20                          # glibc's upper bound for M_MMAP_THRESHOLD (64-bit)
TRIM_THRESHOLD = 1 << 30
_in_effect: bool | None = None                     # None: not tried yet in this process


def keep_freed_memory(announce: bool = False) -> bool:
    """Sets glibc's thresholds (the first call does it); True when they are in effect.
    ``announce``: log (once) what was done and why."""
    global _in_effect
    if _in_effect is None:
        if os.environ.get("NNETAVG_MALLOC", "") == "default":
            why, _in_effect = "NNETAVG_MALLOC=default", False
        elif "glibc.malloc" in os.environ.get("GLIBC_TUNABLES", ""):
            why, _in_effect = "GLIBC_TUNABLES sets malloc", False
        else:
            _in_effect = _set_thresholds()
            why = "" if _in_effect else "not glibc, or mallopt refused"
        if announce:
            if _in_effect:
                log.info("malloc: freed blocks up to %d MiB are reused, up to %d MiB of free heap kept "
                         "(NNETAVG_MALLOC=default: malloc's own settings)", MMAP_THRESHOLD >> 20, TRIM_THRESHOLD >> 20)
            else:
                log.info("malloc: its own settings (%s)", why)
    return _in_effect


def _set_thresholds() -> bool:
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
        libc.gnu_get_libc_version   # glibc only: other C libraries' mallopt differ
    except (OSError, AttributeError):
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    if mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD) != 1 or mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD) != 1:
        log.debug("mallopt refused the thresholds; malloc keeps its own")
        return False
    return True
