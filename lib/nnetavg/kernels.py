"""Fused element-wise kernels: one CUDA kernel on the GPU, its numpy twin on the CPU.

A kernel is here only where fusing pays: element-wise work that the generic array code does in
several passes with temporaries. Each has its CUDA C source (compiled by CuPy's RawKernel on a GPU,
and by ``nvcc --ptx`` in the tests wherever nvcc exists) and a numpy twin, the reference, which
also does the work with as few temporaries as numpy allows.

* ``sigmoid_backward(y, dy)`` = ``dy * y * (1 - y)``: the generic expression makes three passes
  and two temporaries the size of the layer's activations; the kernel reads y and dy once and
  writes once (memory-bound: about 3x less traffic); the twin uses one temporary.
"""

from __future__ import annotations

import numpy as np

from nnetavg.backend import get_array_module

SIGMOID_BACKWARD_CU = r"""
extern "C" __global__ void sigmoid_backward(const float* y, const float* dy, float* dx, long long n) {
  long long stride = (long long)blockDim.x * gridDim.x;
  for (long long i = (long long)blockDim.x * blockIdx.x + threadIdx.x; i < n; i += stride) {
    float v = y[i];
    dx[i] = dy[i] * v * (1.0f - v);
  }
}
"""

_compiled: dict[str, object] = {}


def _raw_kernel(cupy, name: str, source: str):
    if name not in _compiled:
        _compiled[name] = cupy.RawKernel(source, name)
    return _compiled[name]


def sigmoid_backward(y, dy):
    """``dy * y * (1 - y)`` in a new array (``y`` and ``dy`` are not modified)."""
    xp = get_array_module(y, dy)
    if xp is np or y.dtype != np.float32 or dy.dtype != np.float32:
        out = xp.subtract(1.0, y, dtype=np.result_type(y, dy))
        out *= y
        out *= dy
        return out
    y, dy = xp.ascontiguousarray(y), xp.ascontiguousarray(dy)
    out = xp.empty_like(dy)
    n = out.size
    threads = 256
    blocks = min(4096, max(1, (n + threads - 1) // threads))
    _raw_kernel(xp, "sigmoid_backward", SIGMOID_BACKWARD_CU)((blocks,), (threads,), (y, dy, out, np.int64(n)))
    return out
