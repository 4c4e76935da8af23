"""Natural-gradient preconditioning of the factors of an affine layer's gradient.

Reference: D. Povey, X. Zhang, S. Khudanpur, "Parallel training of DNNs with Natural Gradient and
Parameter Averaging", arXiv:1410.7455 (ICLR 2015 workshop), Appendix; Kaldi
``src/nnet3/natural-gradient-online.{h,cc}`` and ``src/nnet2/nnet-precondition.{h,cc}`` (the
algorithm as implemented there, restated in ``shared/reference/kaldi-nnet.md`` section 1).

For an affine layer the minibatch gradient is ``G^T X``, with X (N x D_in+1) the inputs with a
column of ones (the bias is preconditioned jointly) and G (N x D_out) the output derivatives. The
ones column is never stored: ``precondition(X, ones_column=True)`` treats the N x D_in matrix as
``[X, 1]`` (``H = X W[:, :D]^T + W[:, D]``, the last column of X_hat is ``1 - H W[:, D]``), so the
layer's input is preconditioned where it lies, without a copy when the caller may overwrite it. The
Fisher matrix is approximated by a Kronecker product of an input-side and an output-side factor;
each factor is estimated and inverted by its own preconditioner, which multiplies the rows of its
matrix by the inverse factor. The update direction is ``gamma_in gamma_out G_hat^T X_hat``.

Online preconditioner (:class:`OnlinePreconditioner`)
-----------------------------------------------------
Each factor is "scaled identity plus low rank" (D x D, rank R)::

    F_t = R_t^T diag(d_t) R_t + rho_t I,        R_t R_t^T = I                        (1)

smoothed with the identity before inverting (alpha = 4)::

    G_t = F_t + (alpha / D) tr(F_t) I = R_t^T diag(d_t) R_t + beta_t I                (2)
    beta_t = rho_t (1 + alpha) + (alpha / D) sum_i d_t[i]                             (3)
    e_t[i] = 1 / (beta_t / d_t[i] + 1)                                               (4)

What is stored is ``W_t = diag(sqrt(e_t)) R_t`` (R x D), ``d_t``, ``rho_t`` and the counter ``t``.
By Woodbury the (beta-scaled) preconditioned matrix is::

    X_hat = beta_t X G_t^{-1} = X - X W_t^T W_t = X - H W_t,      H = X W_t^T        (5)
    gamma = sqrt(tr(X X^T) / tr(X_hat X_hat^T))   (1 when tr(X X^T) = 0)             (6)

Minibatch t is preconditioned with the estimate from minibatches < t; then, on minibatches
t <= 10 and every ``update_period``-th after, the estimate is moved towards the minibatch's
scatter S_t = X^T X / N with the forgetting factor::

    eta = min(0.9, 1 - exp(-N / num_samples_history))                                (7)
    T_t = eta S_t + (1 - eta) F_t,    Y_t = R_t T_t,    Z_t = Y_t Y_t^T (R x R)       (8)

Z_t is formed in float64 from J = H^T X, K = J J^T and L = H^T H::

    Z[i,j] = (eta/N)^2 K[i,j] / sqrt(e_i e_j)
           + (eta/N)(1-eta) L[i,j] ((d_i + rho) + (d_j + rho)) / sqrt(e_i e_j)
           + [i = j] (1-eta)^2 (d_i + rho)^2                                         (9)

and scaled by 1 / max(1, tr Z) before a float64 symmetric eigendecomposition
``Z = U diag(c) U^T`` (Kaldi converts Z to float before it; float64 is at least as good), with c
sorted by decreasing absolute value and floored at ``(rho_t (1 - eta))^2`` (the smallest possible
eigenvalue of T_t^2). The new estimate conserves the trace of T_t::

    rho_{t+1} = [ (eta/N) tr(X X^T) + (1-eta)(D rho_t + sum d_t) - sum sqrt(c) ] / (D - R)   (10)
    d_{t+1} = sqrt(c) - rho_{t+1};   both floored at max(epsilon, delta max sqrt(c))          (11)
    R_{t+1} = diag(c)^{-1/2} U^T Y_t     (one step of the power method)                     (12)
    W_{t+1} = diag(sqrt(e_{t+1})) R_{t+1} = A B,
        B = J + diag((1-eta)/(eta/N) (d_t + rho_t)) W_t,
        A[i,j] = (eta/N) sqrt(e_{t+1}[i]) / sqrt(c_i) U[j,i] / sqrt(e_t[j])                  (13)

When c_0 > 1e6 c_{R-1} or an eigenvalue was floored, the rows of R_{t+1} are re-orthogonalised
(14): with ``O = diag(e^-1/2) W W^T diag(e^-1/2)``, nothing if O is within 1e-3 of I; else
``O = C C^T`` (Cholesky) and ``W <- diag(sqrt e) C^-1 diag(e^-1/2) W`` (lower-triangular, so
the leading directions are kept), or Gram-Schmidt when the Cholesky fails or ``|C^-1| >= 100``.

Initialisation (15): ``rho = d = epsilon``, R_0 with row r non-zero at columns r, r+R, r+2R, ...
(first entry 1.1, the rest 1, normalised: no combination of rows is the all-ones vector),
``W_0 = sqrt(E) R_0`` with ``E = 1 / (2 + alpha (D + R) / D)``; then 3 updating passes over the
first minibatch (1 if it has no more than R rows) on a copy, after which the real first call
updates once more with the same minibatch (as Kaldi does).

Constants and why:

=========================  ========  =====================================================
constant                   value     reason
=========================  ========  =====================================================
alpha                      4.0       smoothing with the identity (2); large, because the
                                     estimate is noisy and the inverse must stay bounded
num_samples_history        2000      frames of memory of the estimate (7)
update_period              4         Fisher updates every 4th minibatch after the first 10 (Kaldi;
                                     NGSGD's default is 16, see below):
                                     the estimate changes slowly, updates cost 3NDR
initial updates            10        the first 10 minibatches all update, to settle fast
eta cap                    0.9       never forget (almost) everything at once (7)
epsilon                    1e-10     absolute floor of rho and d (11)
delta                      5e-4      relative floor of rho and d vs max sqrt(c) (11);
                                     Kaldi's code (its header says 1e-5)
condition threshold        1e6       re-orthogonalise when c_0 / c_{R-1} exceeds it (14)
orthogonality tolerance    1e-3      O within this of I needs no work (14)
Cholesky sanity bound      100       larger |C^-1| means O is nearly singular (14)
init passes                3         a cheap substitute for an eigendecomposition (15)
rank in / out              20 / 80   nnet2 scripts; reduced to D - 1 when D <= rank (NGSGD's
                                     defaults: 20 / 40)
=========================  ========  =====================================================

Simple preconditioner (:func:`precondition_simple`)
---------------------------------------------------
nnet2's ``PreconditionDirectionsAlphaRescaled``: each row r_i of the N x D matrix is multiplied by
the inverse of a Fisher estimate built from the *other* rows of the same minibatch::

    p_i = (lambda I + 1/(N-1) sum_{j != i} r_j r_j^T)^{-1} r_i,
    lambda = alpha / (N D) tr(R^T R)                                                  (16)

computed with one D x D (N >= D) or N x N (N < D) inverse ``q_i = (lambda I + R^T R/(N-1))^{-1}
r_i`` and the Sherman-Morrison correction ``p_i = (1 + g_i / (N-1-g_i)) q_i``, ``g_i = r_i . q_i``
(17); gamma rescales P to the Frobenius norm of R (6). With one row there are no other rows: the
row is returned unchanged.
"""

from __future__ import annotations

import logging
import math

import numpy as np

from nnetavg import blas
from nnetavg.backend import get_array_module, to_numpy

log = logging.getLogger(__name__)

EPSILON = 1.0e-10
DELTA = 5.0e-4
ETA_CAP = 0.9
NUM_INITIAL_UPDATES = 10
CONDITION_THRESHOLD = 1.0e6
ORTHOGONALITY_TOLERANCE = 1.0e-3
CHOLESKY_BOUND = 100.0
INIT_PASSES = 3
# Outside these traces of X X^T a float32 minibatch is processed in float64: K = J J^T grows as
# tr(X X^T)^2 and would overflow (or underflow) float32.
_SAFE_TRACE = (1.0e-15, 1.0e15)


def row_norms2(X):
    """The squared norms of the rows of X (their sum is tr(X X^T)). ``vecdot`` (numpy >= 2) is one
    vectorised pass, 2.5-3x faster than the equivalent einsum on the CPU."""
    xp = get_array_module(X)
    vecdot = getattr(xp, "vecdot", None)
    return vecdot(X, X) if vecdot is not None else xp.einsum("ij,ij->i", X, X)


def _trace_xxt(X) -> float:
    xp = get_array_module(X)
    flat = X.reshape(-1)
    return float(xp.dot(flat, flat))


class OnlinePreconditioner:
    """One side (input or output) of one affine layer; see the module docstring."""

    def __init__(self, rank: int = 40, update_period: int = 1, num_samples_history: float = 2000.0,
                 alpha: float = 4.0):
        if rank < 1 or update_period < 1 or num_samples_history <= 0 or alpha < 0:
            raise ValueError("rank and update period >= 1, history > 0, alpha >= 0")
        self.rank = rank
        self.update_period = update_period
        self.num_samples_history = float(num_samples_history)
        self.alpha = float(alpha)
        self.W = None          # R x D, the dtype and device of the data
        self.d = None          # R, float64 on the host
        self.rho = 0.0
        self.t = 0
        self.dim = 0
        self._scratch = None   # N x D buffer for H W, reused: no fresh large allocation per call
        self.row_norms2 = None  # squared row norms of the last X_hat, when asked for
        self.ones_hat = None    # with ones_column: the last column of the last X_hat (N)

    # ------------------------------------------------------------------ helpers
    def eta(self, num_rows: int) -> float:
        return min(ETA_CAP, 1.0 - math.exp(-num_rows / self.num_samples_history))     # (7)

    def updating(self) -> bool:
        return self.t <= NUM_INITIAL_UPDATES or (self.t - NUM_INITIAL_UPDATES) % self.update_period == 0

    def _beta_e(self, d: np.ndarray, rho: float, D: int) -> tuple[float, np.ndarray]:
        beta = rho * (1.0 + self.alpha) + self.alpha / D * float(d.sum())                 # (3)
        return beta, 1.0 / (beta / d + 1.0)                                               # (4)

    def _init_default(self, D: int, xp, dtype) -> None:                                   # (15)
        R = self.rank
        self.rho = EPSILON
        self.d = np.full(R, EPSILON)
        R0 = np.zeros((R, D))
        for r in range(R):
            R0[r, r::R] = 1.0
            R0[r, r] = 1.1
        R0 /= np.linalg.norm(R0, axis=1, keepdims=True)
        E = 1.0 / (2.0 + self.alpha * (D + R) / D)
        self.W = xp.asarray((math.sqrt(E) * R0).astype(dtype))

    def _init(self, X0, ones_column: bool = False) -> None:
        N, D = X0.shape[0], X0.shape[1] + ones_column
        xp = get_array_module(X0)
        if self.rank >= D:
            log.warning("natural gradient: rank %d >= dimension %d, reducing the rank to %d", self.rank, D, D - 1)
            self.rank = D - 1
        self.dim = D
        helper = OnlinePreconditioner(self.rank, self.update_period, self.num_samples_history, self.alpha)
        helper.dim = D
        helper._init_default(D, xp, X0.dtype)
        helper.t = 1   # updating, and no recursion into _init
        for _ in range(1 if N <= self.rank else INIT_PASSES):
            helper.precondition(X0.copy(), ones_column=ones_column)
        self.W, self.d, self.rho = helper.W, helper.d, helper.rho

    # ------------------------------------------------------------------ the call
    def precondition(self, X, row_norms: bool = False, ones_column: bool = False) -> float:
        """Replaces X (N x D) by X_hat (5) and returns gamma (6); updates the estimate when due.
        NaN or Inf in X: returns NaN and leaves X and the estimate untouched (the caller must not
        take the step). ``row_norms``: also leaves the squared norms of X_hat's rows in
        ``self.row_norms2`` (what the max-change-per-sample limit needs; their sum is
        tr(X_hat X_hat^T), so it costs no extra pass). ``ones_column``: X stands for ``[X, 1]``
        (dimension D + 1); X gets X_hat's first D columns and ``self.ones_hat`` its last one."""
        N, D = X.shape[0], X.shape[1] + ones_column
        self.row_norms2 = self.ones_hat = None
        if D == 1:
            if row_norms:
                self.row_norms2 = row_norms2(X)
            return 1.0
        if self.t != 0 and D != self.dim:
            raise ValueError(f"natural gradient: matrix of dim {D} for a preconditioner of dim {self.dim}")
        tr_before = _trace_xxt(X) + (N if ones_column else 0)
        if not math.isfinite(tr_before):
            return float("nan")
        if self.t == 0:
            self._init(X, ones_column)
        work = X
        if X.dtype != np.float64 and not (tr_before == 0.0 or _SAFE_TRACE[0] < tr_before < _SAFE_TRACE[1]):
            work = X.astype(np.float64)           # extreme scales: no overflow, no underflow
            tr_before = _trace_xxt(work) + (N if ones_column else 0)
        ones_hat = self._precondition_internal(work, tr_before, self.updating(), ones_column)
        self.t += 1
        if work is not X:
            X[...] = work
            ones_hat = None if ones_hat is None else ones_hat.astype(X.dtype)
        self.ones_hat = ones_hat
        if row_norms:
            self.row_norms2 = row_norms2(X)
            if ones_hat is not None:
                self.row_norms2 += ones_hat * ones_hat
            tr_after = float(self.row_norms2.sum())
        else:
            tr_after = _trace_xxt(X) + (0.0 if ones_hat is None else _trace_xxt(ones_hat))
        if tr_before <= 0.0 or not tr_after > 0.0 or not math.isfinite(tr_after):
            return 1.0
        return math.sqrt(tr_before / tr_after)                                            # (6)

    def _subtract_hw(self, X, H, W) -> None:
        """X -= H W: on the CPU one GEMM accumulating into X (beta = 1), else through a reused
        scratch buffer."""
        if blas.ready(X, H, W) and X.flags.c_contiguous:
            blas.gemm(-1.0, H, W, 1.0, X)
            return
        xp = get_array_module(X)
        buf = self._scratch
        if buf is None or buf.shape != X.shape or buf.dtype != X.dtype or get_array_module(buf) is not xp:
            buf = self._scratch = xp.empty_like(X)
        xp.matmul(H, W, out=buf)
        X -= buf

    def _precondition_internal(self, X, tr_x: float, updating: bool, ones_column: bool = False):
        """X_hat (5) in place, and the estimate's update (7)-(14) when ``updating``. With
        ``ones_column`` X stands for [X, 1] and X_hat's last column (N) is returned (else None)."""
        xp = get_array_module(X)
        W = self.W if self.W.dtype == X.dtype else self.W.astype(X.dtype)
        Wx = W[:, :-1] if ones_column else W      # the columns that multiply X
        H = X @ Wx.T                                                                       # (5)
        if ones_column:
            H += W[:, -1]
        ones_hat = 1.0 - H @ W[:, -1] if ones_column else None   # X_hat's last column
        if not updating:
            self._subtract_hw(X, H, Wx)
            return ones_hat
        N, D = X.shape[0], W.shape[1]
        R = self.rank
        eta = self.eta(N)
        d, rho = self.d, self.rho
        J = H.T @ X                               # H^T [X, 1] with the ones column
        if ones_column:
            J = xp.concatenate([J, H.sum(axis=0)[:, None]], axis=1)
        K = to_numpy(J @ J.T).astype(np.float64)
        L = to_numpy(H.T @ H).astype(np.float64)
        K = 0.5 * (K + K.T)
        L = 0.5 * (L + L.T)
        _, e = self._beta_e(d, rho, D)
        inv_sqrt_e = 1.0 / np.sqrt(e)
        z1, z2 = eta / N, 1.0 - eta
        dr = d + rho
        outer = np.outer(inv_sqrt_e, inv_sqrt_e)
        Z = (z1 * z1) * K * outer + (z1 * z2) * L * outer * (dr[:, None] + dr[None, :])     # (9)
        Z[np.diag_indices(R)] += (z2 * dr) ** 2
        scale = max(1.0, float(np.trace(Z)))
        c, U = np.linalg.eigh(Z / scale)
        order = np.argsort(-np.abs(c), kind="stable")
        c, U = c[order] * scale, U[:, order]
        must_reorth = not c[0] <= CONDITION_THRESHOLD * c[-1]
        c_floor = (rho * z2) ** 2
        if np.any(c < c_floor):
            must_reorth = True
            c = np.maximum(c, c_floor)
        self._subtract_hw(X, H, Wx)                                                        # (5)
        sqrt_c = np.sqrt(c)
        rho_new = (z1 * tr_x + z2 * (D * rho + float(d.sum())) - float(sqrt_c.sum())) / (D - R)   # (10)
        floor = max(EPSILON, DELTA * float(sqrt_c.max()))
        rho_new = max(rho_new, floor)
        d_new = np.maximum(sqrt_c - rho_new, floor)                                        # (11)
        _, e_new = self._beta_e(d_new, rho_new, D)
        B = J + xp.asarray((z2 / z1 * dr).astype(X.dtype))[:, None] * W                    # (13)
        A = z1 * (np.sqrt(e_new) / sqrt_c)[:, None] * U.T * inv_sqrt_e[None, :]
        W_new = xp.asarray(A.astype(X.dtype)) @ B
        if must_reorth:
            W_new = self._reorthogonalize(W_new, e_new)
        self.W = W_new if self.W.dtype == W_new.dtype else W_new.astype(self.W.dtype)
        self.d, self.rho = d_new, rho_new
        return ones_hat

    @staticmethod
    def _reorthogonalize(W, e: np.ndarray):                                                # (14)
        xp = get_array_module(W)
        sqrt_e = np.sqrt(e)
        inv_sqrt_e = 1.0 / sqrt_e
        O = inv_sqrt_e[:, None] * to_numpy(W @ W.T).astype(np.float64) * inv_sqrt_e[None, :]
        if np.max(np.abs(O - np.eye(O.shape[0]))) <= ORTHOGONALITY_TOLERANCE:
            return W
        try:
            C = np.linalg.cholesky(O)
            Cinv = np.linalg.inv(C)
            if not np.all(np.isfinite(Cinv)) or np.max(np.abs(Cinv)) >= CHOLESKY_BOUND:
                raise np.linalg.LinAlgError("ill-conditioned")
        except np.linalg.LinAlgError:
            Wd = to_numpy(W).astype(np.float64) * inv_sqrt_e[:, None]
            Q, _ = np.linalg.qr(Wd.T)           # Gram-Schmidt of the rows of R
            return xp.asarray((sqrt_e[:, None] * Q.T).astype(W.dtype))
        M = sqrt_e[:, None] * Cinv * inv_sqrt_e[None, :]
        return xp.asarray(M.astype(W.dtype)) @ W

    # ------------------------------------------------------------------ state
    def __deepcopy__(self, memo):
        import copy  # noqa: PLC0415
        new = copy.copy(self)
        new.W = None if self.W is None else self.W.copy()
        new.d = None if self.d is None else self.d.copy()
        new._scratch = None
        return new

    def state(self) -> dict[str, np.ndarray]:
        if self.W is None:
            return {"t": np.array(0)}
        return {"W": to_numpy(self.W), "d": self.d.copy(), "rho": np.array(self.rho), "t": np.array(self.t),
                "rank": np.array(self.rank), "dim": np.array(self.dim)}

    def load_state(self, state: dict, xp) -> None:
        if int(state["t"]) == 0:
            self.W, self.t = None, 0
            return
        self.W = xp.asarray(state["W"])
        self.d = np.asarray(state["d"], dtype=np.float64)
        self.rho = float(state["rho"])
        self.t = int(state["t"])
        self.rank = int(state["rank"])
        self.dim = int(state["dim"])


def precondition_simple(Rm, alpha: float = 4.0):
    """Returns (P, gamma) for the N x D matrix ``Rm`` (16, 17); Rm is not modified."""
    xp = get_array_module(Rm)
    N, D = Rm.shape
    if N <= 1:
        return Rm.copy(), 1.0
    R64 = Rm.astype(np.float64)
    tr = float((R64 * R64).sum())
    if not math.isfinite(tr):   # NaN or Inf in Rm: no preconditioned step (gamma NaN tells the caller)
        return Rm.copy(), float("nan")
    lam = alpha / (N * D) * max(tr, 1.0e-20)                                               # (16)
    if N >= D:
        A = R64.T @ R64 / (N - 1) + lam * xp.eye(D)
        Q = xp.linalg.solve(A, R64.T).T
    else:
        S = R64 @ R64.T / (N - 1) + lam * xp.eye(N)
        Q = xp.linalg.solve(S, R64)
    g = (R64 * Q).sum(axis=1)
    P = Q * (1.0 + g / (N - 1 - g))[:, None]                                               # (17)
    tr_p = float((P * P).sum())
    gamma = math.sqrt(tr / tr_p) if tr > 0 and tr_p > 0 else 1.0                           # (6)
    return P.astype(Rm.dtype), gamma
