"""``C = alpha op(A) op(B) + beta C`` in place, on numpy's own BLAS (Kaldi's ``AddMatMat``).

numpy's ``matmul`` has no ``beta``: ``W -= lr * g.T @ x`` forms the product in a new array (72 MiB
for a 2048 x 8806 output layer, freshly page-faulted every step) and then makes two more passes
over it. BLAS's gemm accumulates straight into ``W``. numpy wheels bundle OpenBLAS
(``scipy_openblas``) and export its CBLAS; this module calls that same library through ctypes
(the already loaded copy, so the same thread pool: no second pool competing for the cores).

:func:`gemm` falls back to plain array expressions (the reference, and the CuPy path) when the
arrays are not numpy float32/float64 matrices with contiguous rows, or when numpy's BLAS does not
export CBLAS under a known name. ``NNETAVG_BLAS=numpy`` forces the fallback (for comparisons);
``NNETAVG_BLAS=/path/to/libmkl_rt.so.2`` (or any library exporting LP64 ``cblas_sgemm``) makes
:func:`gemm` call that library instead (bench/fair_step.py measures MKL side by side this way).
"""

from __future__ import annotations

import ctypes
import glob
import os

import numpy as np

_ROW_MAJOR, _NO_TRANS, _TRANS = 101, 111, 112
_lib = None
_funcs: dict = {}
_int = ctypes.c_int64


def _load() -> dict:
    """{dtype: cblas ?gemm function} from numpy's bundled OpenBLAS; {} when not available."""
    global _lib, _int
    choice = os.environ.get("NNETAVG_BLAS", "")
    if _lib is not None or choice == "numpy":
        return _funcs
    _lib = False
    if choice:
        lib = ctypes.CDLL(choice)
        _bind(lib, lib.cblas_sgemm, lib.cblas_dgemm, ctypes.c_int32)
        return _funcs
    libs = sorted(glob.glob(os.path.join(os.path.dirname(np.__file__), os.pardir, "numpy.libs", "libscipy_openblas*.so*")))
    for path in libs:
        try:
            lib = ctypes.CDLL(path)
        except OSError:
            continue
        for suffix, int_type in (("64_", ctypes.c_int64), ("", ctypes.c_int32)):
            try:
                s, d = getattr(lib, f"scipy_cblas_sgemm{suffix}"), getattr(lib, f"scipy_cblas_dgemm{suffix}")
            except AttributeError:
                continue
            _bind(lib, s, d, int_type)
            return _funcs
    return _funcs


def _bind(lib, s, d, int_type) -> None:
    global _lib, _int
    _int = int_type
    for fn, ctype in ((s, ctypes.c_float), (d, ctypes.c_double)):
        fn.restype = None
        fn.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int, _int, _int, _int, ctype, ctypes.c_void_p, _int,
                       ctypes.c_void_p, _int, ctype, ctypes.c_void_p, _int]
    _funcs.update({np.dtype(np.float32): s, np.dtype(np.float64): d})
    _lib = lib


def available() -> bool:
    return bool(_load())


def ready(*arrays) -> bool:
    """Whether :func:`gemm` on these arrays goes to the BLAS (numpy arrays of one float dtype),
    not to the array fallback; callers keep their own expression otherwise (CuPy)."""
    return all(isinstance(a, np.ndarray) for a in arrays) and len({a.dtype for a in arrays}) == 1 \
        and arrays[0].dtype in _load()


def _operand(a: np.ndarray, trans: bool):
    """(pointer, leading dim, cblas trans flag) of a matrix with contiguous rows, or None."""
    if a.ndim != 2 or a.strides[1] != a.itemsize or a.strides[0] % a.itemsize or a.strides[0] < a.shape[1] * a.itemsize:
        return None
    return a.ctypes.data, a.strides[0] // a.itemsize, _TRANS if trans else _NO_TRANS


def gemm(alpha: float, a, b, beta: float, c, trans_a: bool = False, trans_b: bool = False) -> None:
    """``c = alpha * op(a) @ op(b) + beta * c``, in place; ``op(m)`` is ``m.T`` when ``trans_*``."""
    fn = None
    if isinstance(c, np.ndarray) and isinstance(a, np.ndarray) and isinstance(b, np.ndarray) \
            and a.dtype == b.dtype == c.dtype and c.flags.c_contiguous:
        fn = _load().get(c.dtype)
    pa = pb = None
    if fn is not None:
        pa, pb = _operand(a, trans_a), _operand(b, trans_b)
    if fn is None or pa is None or pb is None:
        prod = (a.T if trans_a else a) @ (b.T if trans_b else b)
        if beta == 0.0:
            c[...] = prod
            c *= alpha
        else:
            if beta != 1.0:
                c *= beta
            prod *= alpha
            c += prod
        return
    m, k = (a.shape[1], a.shape[0]) if trans_a else a.shape
    kb, n = (b.shape[1], b.shape[0]) if trans_b else b.shape
    if k != kb or c.shape != (m, n):
        raise ValueError(f"gemm: shapes {a.shape}{'T' if trans_a else ''} x {b.shape}{'T' if trans_b else ''} "
                         f"do not give {c.shape}")
    if m == 0 or n == 0:
        return
    fn(_ROW_MAJOR, pa[2], pb[2], m, n, k, alpha, pa[0], pa[1], pb[0], pb[1], beta, c.ctypes.data, n)
