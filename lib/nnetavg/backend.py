"""The one module that knows about devices: numpy (the reference, always present) or CuPy.

Math code is written once against the array module of its inputs::

    xp = get_array_module(x)
    y = xp.tanh(x)

``--use-gpu`` has Kaldi's meaning:

* ``no``       -- numpy on the CPU;
* ``optional`` -- CuPy when it is installed and a GPU is usable, else numpy (with a log line);
* ``yes``      -- CuPy, and a clear error when no usable GPU exists.

On a GPU, ``NNETAVG_GPU_MEMORY_LIMIT`` caps CuPy's memory pool for the process: bytes with an
optional K/M/G suffix (``8G``), or a fraction of the device's memory (``0.45``: two processes per
GPU). Unset: no cap (CuPy's default).

CuPy is imported lazily, only by :func:`select_device` with ``yes``/``optional``, so importing
nnetavg never imports cupy (``pip install cupy-cuda12x`` succeeds on machines without a GPU, but
``cupy.zeros`` then raises; we never get that far).
"""

from __future__ import annotations

import logging
import os
import types

import numpy as np

from nnetavg.errors import NnetavgError

log = logging.getLogger(__name__)

USE_GPU_CHOICES = ("yes", "no", "optional")

_device_xp: types.ModuleType = np


def _try_cupy() -> tuple[types.ModuleType | None, str]:
    """Returns (cupy, "") when a GPU is usable, else (None, reason)."""
    try:
        import cupy  # noqa: PLC0415  (lazy on purpose)
    except Exception as exc:  # ImportError, or a broken CUDA install
        return None, f"CuPy is not importable ({exc.__class__.__name__}: {exc}); install with ./setup.sh gpu"
    try:
        if not cupy.is_available():
            return None, "CuPy is installed but no CUDA device is usable (cupy.is_available() is False)"
        cupy.zeros(1)  # touches the driver for real
    except Exception as exc:
        return None, f"CuPy cannot use the GPU ({exc.__class__.__name__}: {exc})"
    return cupy, ""


def cupy_installed() -> bool:
    import importlib.util  # noqa: PLC0415
    return importlib.util.find_spec("cupy") is not None


def select_device(use_gpu: str, kaldi_cpu_build: bool = False) -> types.ModuleType:
    """Chooses the array module for this process from ``--use-gpu`` and returns it.
    ``kaldi_cpu_build``: behave as a Kaldi binary compiled without CUDA when CuPy is not
    installed (``--use-gpu=yes`` then computes on the CPU, with a warning); with CuPy installed
    and no usable GPU, ``yes`` is an error either way, as in Kaldi."""
    global _device_xp
    if use_gpu not in USE_GPU_CHOICES:
        raise NnetavgError(f"--use-gpu must be one of {'|'.join(USE_GPU_CHOICES)}, not {use_gpu!r}")
    if use_gpu == "yes" and kaldi_cpu_build and not cupy_installed():
        log.warning("--use-gpu=yes, but CuPy is not installed: computing on the CPU (as a Kaldi build without "
                    "CUDA does); ./setup.sh gpu installs it")
        use_gpu = "no"
    if use_gpu == "no":
        _device_xp = np
        return np
    cupy, reason = _try_cupy()
    if cupy is None:
        if use_gpu == "yes":
            raise NnetavgError(f"--use-gpu=yes but no GPU can be used: {reason}")
        log.info("no GPU, computing on the CPU: %s", reason)
        _device_xp = np
        return np
    limit = os.environ.get("NNETAVG_GPU_MEMORY_LIMIT", "")
    if limit:
        kind, value = parse_memory_limit(limit)
        pool = cupy.get_default_memory_pool()
        pool.set_limit(**{kind: value})
        log.info("GPU memory pool capped at %s bytes", pool.get_limit())
    log.info("computing on GPU %s", cupy.cuda.Device().id)
    _device_xp = cupy
    return cupy


def parse_memory_limit(text: str) -> tuple[str, float]:
    """``NNETAVG_GPU_MEMORY_LIMIT``: ("fraction", f) for 0 < f <= 1, else ("size", bytes)."""
    t = text.strip().upper()
    try:
        if t.endswith(("K", "M", "G")):
            return "size", int(float(t[:-1]) * {"K": 2**10, "M": 2**20, "G": 2**30}[t[-1]])
        v = float(t)
    except ValueError:
        raise NnetavgError(f"NNETAVG_GPU_MEMORY_LIMIT={text!r}: give bytes (e.g. 8G) or a fraction (e.g. 0.5)") from None
    if 0 < v <= 1:
        return "fraction", v
    if v > 1:
        return "size", int(v)
    raise NnetavgError(f"NNETAVG_GPU_MEMORY_LIMIT={text!r} must be positive")


def device_xp() -> types.ModuleType:
    """The array module chosen by :func:`select_device` (numpy until then)."""
    return _device_xp


def get_array_module(*arrays) -> types.ModuleType:
    """numpy or cupy, from the arrays given; mixing numpy and CuPy arrays is an error."""
    found = None
    for a in arrays:
        if a is None or isinstance(a, (int, float, np.ndarray, np.generic)):
            mod = np
        else:
            name = type(a).__module__.split(".")[0]
            if name != "cupy":
                mod = np
            else:
                import cupy  # noqa: PLC0415  (already imported when a cupy array exists)
                mod = cupy
        if found is None:
            found = mod
        elif found is not mod:
            raise TypeError("numpy and CuPy arrays mixed in one operation; move them with to_device()")
    return found if found is not None else np


def to_device(a, xp: types.ModuleType | None = None):
    """Copies ``a`` to the device of ``xp`` (default: the selected device); no copy when there."""
    xp = xp or _device_xp
    if xp is np:
        return to_numpy(a)
    return xp.asarray(a)


def to_numpy(a) -> np.ndarray:
    """A numpy array for ``a`` (copied from the GPU when it lives there)."""
    if isinstance(a, np.ndarray):
        return a
    get = getattr(a, "get", None)
    if get is not None:
        return get()
    return np.asarray(a)
