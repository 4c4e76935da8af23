"""The online preconditioner's small parts, exactly: the forgetting factor, the update schedule,
the validation, the initial subspace (15), the state, float32 kept as float32, the fallback
product without BLAS, re-orthogonalisation (14) on each of its paths, and the simple variant's
edge cases."""

import copy
import math

import numpy as np
import pytest

from nnetavg.train import natural_gradient as ngmod
from nnetavg.train.natural_gradient import OnlinePreconditioner, precondition_simple


def test_eta_and_the_update_schedule():
    p = OnlinePreconditioner(rank=4, update_period=4, num_samples_history=2000.0)
    assert p.eta(256) == 1.0 - math.exp(-256 / 2000.0)
    assert p.eta(100000) == 0.9                                      # capped
    due = []
    for t in range(30):
        p.t = t
        due.append(p.updating())
    assert [t for t, u in enumerate(due) if u] == list(range(11)) + [14, 18, 22, 26]
    p.update_period = 3                                              # counted from minibatch 10
    assert [t for t in range(11, 30) if (setattr(p, "t", t) or p.updating())] == [13, 16, 19, 22, 25, 28]


def test_constructor_defaults_and_validation():
    p = OnlinePreconditioner()
    assert (p.rank, p.update_period, p.num_samples_history, p.alpha) == (40, 1, 2000.0, 4.0)
    assert p.W is None and p.t == 0 and p.rho == 0.0 and p.dim == 0 and p._scratch is None and p.row_norms2 is None
    OnlinePreconditioner(rank=1, update_period=1, num_samples_history=1e-9, alpha=0.0)   # the boundaries are allowed
    for kw in ({"rank": 0}, {"update_period": 0}, {"num_samples_history": 0.0}, {"alpha": -1e-9}):
        with pytest.raises(ValueError, match=r"^rank and update period >= 1, history > 0, alpha >= 0$"):
            OnlinePreconditioner(**kw)


def test_initial_subspace_is_equation_15():
    p = OnlinePreconditioner(rank=3, alpha=4.0)
    p._init_default(7, np, np.float64)
    R0 = np.array([[1.1, 0, 0, 1, 0, 0, 1], [0, 1.1, 0, 0, 1, 0, 0], [0, 0, 1.1, 0, 0, 1, 0]])
    R0 /= np.linalg.norm(R0, axis=1, keepdims=True)
    E = 1.0 / (2.0 + 4.0 * (7 + 3) / 7)
    np.testing.assert_allclose(p.W, math.sqrt(E) * R0, rtol=1e-15)
    assert p.W.dtype == np.float64 and p.rho == 1e-10 and np.array_equal(p.d, np.full(3, 1e-10))
    p._init_default(7, np, np.float32)
    assert p.W.dtype == np.float32


def test_first_call_runs_three_passes_then_updates_again(monkeypatch):
    """The first minibatch: 3 updating passes on a copy (1 when it has no more rows than the rank),
    then the real call, which updates once more."""
    calls = []
    real = OnlinePreconditioner._precondition_internal

    def spy(self, X, tr, updating, ones_column=False):
        calls.append((X.shape[0], updating))
        return real(self, X, tr, updating, ones_column)
    monkeypatch.setattr(OnlinePreconditioner, "_precondition_internal", spy)
    rng = np.random.default_rng(0)
    OnlinePreconditioner(rank=4).precondition(rng.standard_normal((10, 9)))
    assert calls == [(10, True)] * 4
    calls.clear()
    OnlinePreconditioner(rank=4).precondition(rng.standard_normal((4, 9)))
    assert calls == [(4, True)] * 2
    calls.clear()
    OnlinePreconditioner(rank=4).precondition(rng.standard_normal((5, 9)))
    assert calls == [(5, True)] * 4


def test_state_round_trip_fresh_and_used():
    rng = np.random.default_rng(1)
    fresh = OnlinePreconditioner(rank=3)
    assert set(fresh.state()) == {"t"} and int(fresh.state()["t"]) == 0
    used = OnlinePreconditioner(rank=3, update_period=2)
    for _ in range(5):
        used.precondition(rng.standard_normal((16, 8)))
    st = used.state()
    twin = OnlinePreconditioner(rank=3, update_period=2)
    twin.load_state(st, np)
    assert (twin.t, twin.rank, twin.dim, twin.rho) == (used.t, 3, 8, used.rho) and twin.d.dtype == np.float64
    X = rng.standard_normal((16, 8))
    a, b = X.copy(), X.copy()
    assert used.precondition(a) == twin.precondition(b) and np.array_equal(a, b)
    twin.load_state({"t": np.array(0)}, np)       # a fresh state resets: the next call initialises again
    assert twin.W is None and twin.t == 0
    c = copy.deepcopy(used)
    assert c._scratch is None and c.W is not used.W and np.array_equal(c.W, used.W)


def test_float32_stays_float32_and_matches_float64():
    rng = np.random.default_rng(2)
    p32, p64 = OnlinePreconditioner(rank=4, update_period=2), OnlinePreconditioner(rank=4, update_period=2)
    for i in range(14):
        X = rng.standard_normal((32, 10)) * np.linspace(3, 0.5, 10)
        x32 = X.astype(np.float32)
        g32, g64 = p32.precondition(x32, row_norms=True), p64.precondition(X, row_norms=True)
        assert x32.dtype == np.float32 and p32.W.dtype == np.float32 and p32.row_norms2.dtype == np.float32
        np.testing.assert_allclose(x32, X, rtol=2e-3, atol=2e-4)
        assert g32 == pytest.approx(g64, rel=1e-4)
    # extreme scales go through float64 and come back as float32
    big = (rng.standard_normal((32, 10)) * 1e9).astype(np.float32)
    ref = big.astype(np.float64)
    q32, q64 = copy.deepcopy(p32), copy.deepcopy(p64)
    q64.W = q64.W.astype(np.float64)
    r64 = copy.deepcopy(q32)                # the same estimate, in float64: the reference X_hat
    r64.W = r64.W.astype(np.float64)
    ref_hat = ref.copy()
    r64.precondition(ref_hat)
    g = q32.precondition(big, row_norms=True)
    assert big.dtype == np.float32 and np.isfinite(big).all() and q32.W.dtype == np.float32
    np.testing.assert_allclose(big, ref_hat, rtol=1e-5, atol=1e-6 * np.abs(ref_hat).max())   # written back
    assert not np.allclose(big, ref, rtol=1e-3)
    np.testing.assert_allclose(q32.row_norms2, (big.astype(np.float64) ** 2).sum(axis=1), rtol=1e-5)
    assert g == pytest.approx(math.sqrt((ref ** 2).sum() / (big.astype(np.float64) ** 2).sum()), rel=1e-5)


def test_without_blas_the_product_goes_through_a_reused_buffer(monkeypatch):
    """X - H W through numpy (a non-contiguous X, or no BLAS): the numbers of the BLAS path; the
    scratch buffer is kept and reused while its shape and dtype fit."""
    rng = np.random.default_rng(3)
    batches = [rng.standard_normal((16, 9)) for _ in range(12)]
    a, b = OnlinePreconditioner(rank=4, update_period=3), OnlinePreconditioner(rank=4, update_period=3)
    ref = []
    for X in batches:                                  # BLAS (C-contiguous float64)
        Y = X.copy()
        ref.append((a.precondition(Y), Y))
    monkeypatch.setattr(ngmod.blas, "ready", lambda *arrays: False)
    for X, (ga, Ya) in zip(batches, ref):
        F = np.asfortranarray(X)
        gb = b.precondition(F)
        assert gb == pytest.approx(ga, rel=1e-12)
        np.testing.assert_allclose(F, Ya, rtol=1e-12, atol=1e-14)
        buf = b._scratch
        assert buf is not None and buf.shape == (16, 9) and buf.dtype == np.float64
    assert copy.deepcopy(b)._scratch is None                          # a copy does not share the buffer
    kept = b._scratch
    b.precondition(rng.standard_normal((16, 9)))
    assert b._scratch is kept                                         # same shape and dtype: reused
    b.precondition(rng.standard_normal((8, 9)))
    assert b._scratch is not kept and b._scratch.shape == (8, 9)      # another shape: a new buffer
    b.precondition(rng.standard_normal((8, 9)).astype(np.float32))
    assert b._scratch.dtype == np.float32


def test_reorthogonalization_paths(monkeypatch):
    qr_calls = []
    real_qr = np.linalg.qr
    monkeypatch.setattr(np.linalg, "qr", lambda a, *k, **kw: qr_calls.append(1) or real_qr(a, *k, **kw))
    rng = np.random.default_rng(4)
    e = np.array([0.5, 0.3, 0.2])
    Q, _ = np.linalg.qr(rng.standard_normal((8, 3)))
    qr_calls.clear()
    W = np.sqrt(e)[:, None] * Q.T                        # rows of R orthonormal: left as it is
    assert OnlinePreconditioner._reorthogonalize(W, e) is W
    skew = W + 0.05 * rng.standard_normal(W.shape)       # Cholesky path: lower-triangular, leading rows kept
    out = OnlinePreconditioner._reorthogonalize(skew, e)
    R = out / np.sqrt(e)[:, None]
    np.testing.assert_allclose(R @ R.T, np.eye(3), atol=1e-12)
    r0 = skew[0] / np.sqrt(e[0])
    np.testing.assert_allclose(R[0], r0 / np.linalg.norm(r0), rtol=1e-12)      # the first direction kept
    assert qr_calls == []                                                       # (not by Gram-Schmidt)
    near = W.copy()
    near[2] = near[1] * np.sqrt(e[2] / e[1]) * (1 + 1e-6)   # two nearly parallel rows: |C^-1| huge -> Gram-Schmidt
    out = OnlinePreconditioner._reorthogonalize(near, e)
    R = out / np.sqrt(e)[:, None]
    np.testing.assert_allclose(R @ R.T, np.eye(3), atol=1e-9)
    assert out.dtype == near.dtype and qr_calls == [1]
    out32 = OnlinePreconditioner._reorthogonalize(skew.astype(np.float32), e)
    assert out32.dtype == np.float32


def test_first_call_initialises_as_equation_15_says():
    """The state after the first call's initialisation equals three updating passes, written out
    here, of a fresh estimate (15) with this preconditioner's own history and alpha."""
    rng = np.random.default_rng(6)
    X0 = rng.standard_normal((20, 9)) * np.linspace(2, 0.5, 9)
    p = OnlinePreconditioner(rank=3, update_period=5, num_samples_history=300.0, alpha=2.0)
    p.dim = 9
    p._init(X0)
    ref = OnlinePreconditioner(rank=3, update_period=5, num_samples_history=300.0, alpha=2.0)
    ref.dim = 9
    ref._init_default(9, np, np.float64)
    ref.t = 1
    for _ in range(3):
        Y = X0.copy()
        ref._precondition_internal(Y, float((Y * Y).sum()), True)
        ref.t += 1
    np.testing.assert_allclose(p.W, ref.W, rtol=1e-12)
    assert p.rho == pytest.approx(ref.rho, rel=1e-12) and np.allclose(p.d, ref.d, rtol=1e-12)


def test_dimension_one_rank_equal_dimension_and_a_wrong_dimension(caplog):
    import logging

    p = OnlinePreconditioner(rank=2)
    X = np.array([[2.0], [-3.0]])
    assert p.precondition(X, row_norms=True) == 1.0 and np.array_equal(X, [[2.0], [-3.0]])
    np.testing.assert_array_equal(p.row_norms2, [4.0, 9.0])
    q = OnlinePreconditioner(rank=5)
    with caplog.at_level(logging.WARNING, logger="nnetavg.train.natural_gradient"):
        q.precondition(np.random.default_rng(0).standard_normal((8, 5)))
    assert q.rank == 4 and [r.getMessage() for r in caplog.records] == [
        "natural gradient: rank 5 >= dimension 5, reducing the rank to 4"]
    with pytest.raises(ValueError, match=r"^natural gradient: matrix of dim 6 for a preconditioner of dim 5$"):
        q.precondition(np.ones((8, 6)))


def test_simple_variant_edges():
    one = np.array([[1.0, -2.0, 3.0]])
    P, g = precondition_simple(one)
    assert g == 1.0 and np.array_equal(P, one) and P is not one
    P, g = precondition_simple(np.zeros((4, 3)))        # no energy: gamma 1, no NaN
    assert g == 1.0 and np.isfinite(P).all()
    bad = np.ones((4, 3))
    bad[1, 1] = np.nan
    P, g = precondition_simple(bad)
    assert math.isnan(g)
    x32 = np.random.default_rng(5).standard_normal((6, 3)).astype(np.float32)
    P, g = precondition_simple(x32)
    assert P.dtype == np.float32
    a4, a1 = precondition_simple(x32.astype(np.float64))[0], precondition_simple(x32.astype(np.float64), 1.0)[0]
    assert not np.allclose(a4, a1)                      # alpha matters (default 4)
    np.testing.assert_allclose(precondition_simple(x32.astype(np.float64), 4.0)[0], a4, rtol=0)
    # two rows, and data of small energy (tr < 1): the formula still applies, gamma from the traces
    rng = np.random.default_rng(7)
    for R in (rng.standard_normal((2, 3)), 0.01 * rng.standard_normal((5, 3))):
        P, g = precondition_simple(R)
        N, D = R.shape
        lam = 4.0 / (N * D) * (R * R).sum()
        ref = np.array([np.linalg.solve(lam * np.eye(D) + sum(np.outer(R[j], R[j]) for j in range(N) if j != i)
                                        / (N - 1), R[i]) for i in range(N)])
        np.testing.assert_allclose(P, ref, rtol=1e-9)
        assert g == pytest.approx(np.linalg.norm(R) / np.linalg.norm(ref), rel=1e-9)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_ones_column_implicit_equals_stored(dtype):
    """``ones_column=True`` on X is the preconditioner of [X, 1]: the same X_hat (its last column in
    ones_hat), gamma, row norms and estimates, over updating and non-updating calls."""
    rng = np.random.default_rng(11)
    mix = rng.standard_normal((10, 10)) * (0.8 ** np.arange(10))[:, None]
    a, b = OnlinePreconditioner(rank=3, update_period=2), OnlinePreconditioner(rank=3, update_period=2)
    tol = 1e-12 if dtype == np.float64 else 2e-5
    for _ in range(16):
        X = (rng.standard_normal((24, 10)) @ mix + 0.4).astype(dtype)
        Xe = np.concatenate([X, np.ones((24, 1), dtype)], axis=1)
        ga, gb = a.precondition(Xe, row_norms=True), b.precondition(X, row_norms=True, ones_column=True)
        assert b.ones_hat.dtype == dtype and X.dtype == dtype
        np.testing.assert_allclose(X, Xe[:, :-1], rtol=tol, atol=tol)
        np.testing.assert_allclose(b.ones_hat, Xe[:, -1], rtol=tol, atol=tol)
        np.testing.assert_allclose(b.row_norms2, a.row_norms2, rtol=tol)
        assert gb == pytest.approx(ga, rel=tol)
        np.testing.assert_allclose(b.W, a.W, rtol=tol, atol=tol)
    assert b.dim == 11 and a.ones_hat is None


def test_ones_column_at_extreme_scales_goes_through_float64_too():
    """A float32 input at 1e9 with the implicit ones column: the float64 detour gives what the
    stored ones column gives (its trace counts the N ones), X_hat's last column comes back float32."""
    rng = np.random.default_rng(13)
    a, b = OnlinePreconditioner(rank=3, update_period=1), OnlinePreconditioner(rank=3, update_period=1)
    for scale in (1.0, 1e9, 1e9):
        X = (rng.standard_normal((24, 9)) * np.linspace(2, 0.5, 9) * scale).astype(np.float32)
        Xe = np.concatenate([X, np.ones((24, 1), np.float32)], axis=1)
        ga, gb = a.precondition(Xe, row_norms=True), b.precondition(X, row_norms=True, ones_column=True)
        assert b.ones_hat.dtype == np.float32 and X.dtype == np.float32
        np.testing.assert_allclose(X, Xe[:, :-1], rtol=1e-5, atol=1e-5 * np.abs(Xe).max())
        np.testing.assert_allclose(b.ones_hat, Xe[:, -1], rtol=1e-5, atol=1e-5)
        assert gb == pytest.approx(ga, rel=1e-5)
        np.testing.assert_allclose(b.row_norms2, a.row_norms2, rtol=1e-5)


def test_row_norms_without_vecdot_use_einsum(monkeypatch):
    """numpy < 2 has no vecdot: the einsum fallback gives the same squared row norms."""
    X = np.random.default_rng(14).standard_normal((7, 5))
    expect = (X * X).sum(axis=1)
    np.testing.assert_allclose(ngmod.row_norms2(X), expect, rtol=1e-14)
    monkeypatch.delattr(np, "vecdot")
    np.testing.assert_allclose(ngmod.row_norms2(X), expect, rtol=1e-14)
