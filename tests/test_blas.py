"""gemm with beta on numpy's BLAS: the numbers against numpy's matmul for every transpose, strided
operands, float32/float64, and the array fallback (CuPy's path) giving the same."""

import numpy as np
import pytest

from nnetavg import blas


@pytest.fixture(params=["cblas", "fallback"])
def mode(request, monkeypatch):
    if request.param == "cblas":
        if not blas.available():
            pytest.skip("numpy's BLAS exports no CBLAS under a known name")
    else:
        monkeypatch.setattr(blas, "_load", lambda: {})
    return request.param


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("ta,tb", [(False, False), (True, False), (False, True), (True, True)])
def test_gemm_matches_matmul(mode, dtype, ta, tb):
    rng = np.random.default_rng(0)
    m, n, k = 7, 5, 9
    a = rng.standard_normal((k, m) if ta else (m, k)).astype(dtype)
    b = rng.standard_normal((n, k) if tb else (k, n)).astype(dtype)
    for alpha, beta in ((1.0, 0.0), (-0.3, 1.0), (2.0, 0.5)):
        c = rng.standard_normal((m, n)).astype(dtype)
        want = alpha * ((a.T if ta else a) @ (b.T if tb else b)) + beta * c
        blas.gemm(alpha, a, b, beta, c, trans_a=ta, trans_b=tb)
        np.testing.assert_allclose(c, want, rtol=1e-5 if dtype == np.float32 else 1e-12, atol=1e-5)


def test_strided_operands_and_shape_errors(mode):
    """The natural-gradient update passes x_hat[:, :D] (rows with a stride of D + 1)."""
    rng = np.random.default_rng(1)
    xe = rng.standard_normal((16, 11)).astype(np.float32)
    g = rng.standard_normal((16, 4)).astype(np.float32)
    W = rng.standard_normal((4, 10)).astype(np.float32)
    want = W - 0.1 * g.T @ xe[:, :10]
    blas.gemm(-0.1, g, xe[:, :10], 1.0, W, trans_a=True)
    np.testing.assert_allclose(W, want, rtol=1e-5, atol=1e-6)
    if mode == "cblas":
        with pytest.raises(ValueError, match="shapes"):
            blas.gemm(1.0, g, xe, 1.0, W, trans_a=True)
