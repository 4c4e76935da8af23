"""Fused kernels: the numpy twin against the plain expression, the CuPy kernel against the twin
(on a GPU), and the CUDA source compiled by nvcc --ptx wherever nvcc exists (so a syntax error in
a kernel fails CI even without a GPU). Also the GPU memory-pool cap's parsing."""

import shutil
import subprocess

import numpy as np
import pytest

from nnetavg.backend import parse_memory_limit
from nnetavg.errors import NnetavgError
from nnetavg.kernels import SIGMOID_BACKWARD_CU, sigmoid_backward


def test_sigmoid_backward_twin_and_device(xp):
    rng = np.random.default_rng(0)
    for shape, dtype in (((37, 129), np.float32), ((5, 3), np.float64), ((0, 4), np.float32)):
        y = 1 / (1 + np.exp(-rng.standard_normal(shape)))
        dy = rng.standard_normal(shape)
        y, dy = y.astype(dtype), dy.astype(dtype)
        ref = dy.astype(np.float64) * y * (1 - y)
        yd, dyd = xp.asarray(y), xp.asarray(dy)
        out = sigmoid_backward(yd, dyd)
        assert out.dtype == dtype and out.shape == shape
        np.testing.assert_allclose(xp.asnumpy(out) if xp is not np else out, ref, rtol=1e-6, atol=1e-7)
        np.testing.assert_array_equal(xp.asnumpy(yd) if xp is not np else yd, y)  # inputs untouched


@pytest.mark.skipif(shutil.which("nvcc") is None, reason="nvcc not installed")
def test_cuda_source_compiles_with_nvcc(tmp_path):
    src = tmp_path / "k.cu"
    src.write_text(SIGMOID_BACKWARD_CU)
    p = subprocess.run(["nvcc", "--ptx", "-arch=sm_80", str(src), "-o", str(tmp_path / "k.ptx")],
                       capture_output=True, text=True)
    assert p.returncode == 0, p.stderr
    assert ".entry sigmoid_backward" in (tmp_path / "k.ptx").read_text()


def test_memory_limit_parsing():
    assert parse_memory_limit("8G") == ("size", 8 * 2**30)
    assert parse_memory_limit("512m") == ("size", 512 * 2**20)
    assert parse_memory_limit("0.45") == ("fraction", 0.45)
    assert parse_memory_limit("1000000") == ("size", 1000000)
    for bad in ("lots", "-1", "0"):
        with pytest.raises(NnetavgError):
            parse_memory_limit(bad)
