"""Combination of the last models of a training run on held-out frames.

:func:`average_last` is today's ``nnet3-combine``: the average of the last ``n`` models, ``n``
chosen among 1..K by the held-out cross-entropy, forward passes only (K of them); ``n = 1`` keeps
the last model. It is the default of ``nnet-combine`` and ``steps/train_parallel.sh``.

:func:`combine` (``nnet-combine --method bfgs``) is nnet2's older method: the final model is ``sum_k w[k, c] * model_k`` for each updatable component
``c``, with the weights chosen to minimise the cross-entropy on the held-out frames, starting
from the plain average (``w = 1/K``). As nnet3's defaults (positive weights summing to one), the
weights are a softmax over the models of free parameters ``u[k, c]``: the combination
interpolates between the models and cannot extrapolate (unconstrained weights fitted on a small
held-out set went to -5.9 and +7.0 on the synthetic recipe's output layer).

The objective's gradient in the weights is exact and cheap: with ``g`` the gradient of the
held-out loss at the combined parameters, ``dL/dw[k, c] = <g_c, model_k,c>``, and through the
softmax ``dL/du[k, c] = w[k, c] (dL/dw[k, c] - sum_j w[j, c] dL/dw[j, c])``. ``u`` (K x C numbers)
is optimised by BFGS with a backtracking (Armijo) line search, a few dozen forward and backward
passes over the held-out frames. As nnet3 does, the result is kept only when it beats
the best single model and the plain average on the held-out objective; otherwise the better of
those is returned (``CombineResult.chosen`` says which; the combination starts at the average and
only improves on it, so "combination" also stands for the average when BFGS found nothing better).
"""

from __future__ import annotations

import dataclasses
import logging

import numpy as np

from nnetavg.backend import to_device
from nnetavg.errors import NnetavgError
from nnetavg.nnet.network import Network
from nnetavg.train.trainer import mean_cross_entropy, xent_and_derivative

log = logging.getLogger(__name__)


@dataclasses.dataclass
class CombineResult:
    network: Network
    weights: np.ndarray        # K x C (models x updatable components)
    objective: float           # held-out cross-entropy per frame of the returned network
    average_objective: float
    single_objectives: list[float]
    chosen: str                # "combination" | "model-K" (1-based) | "last-n" (average_last)
    evaluations: int


class _HeldOut:
    """The held-out loss and its parameter gradient at given parameters of ``net``."""

    def __init__(self, net: Network, x: np.ndarray, t: np.ndarray, chunk: int = 8192):
        self.net, self.x, self.t, self.chunk = net, x, t, chunk

    def loss(self, params) -> float:
        self.net.params[...] = params
        return mean_cross_entropy(self.net, self.x, self.t, self.chunk)

    def loss_and_grad(self, params):
        net = self.net
        net.params[...] = params
        grad = net.xp.zeros_like(net.params)
        views = net.views(grad)
        total = 0.0

        def collect(i, comp, x, y, dy):
            for name, g in comp.param_gradients(x, y, dy).items():
                views[i][name] += g

        for i in range(0, len(self.t), self.chunk):
            acts = net.forward_train(to_device(self.x[i:i + self.chunk].astype(net.dtype, copy=False), net.xp))
            dy = acts[-1]
            total += xent_and_derivative(dy, to_device(self.t[i:i + self.chunk], net.xp))[0]
            net.backward(acts, dy, collect)
        return total / len(self.t), grad / len(self.t)


def combine(models: list[Network], x: np.ndarray, t: np.ndarray, max_iters: int = 30,
            per_component: bool = True) -> CombineResult:
    """Combines ``models`` (same topology) on held-out frames ``x`` with pdf targets ``t``."""
    if not models:
        raise NnetavgError("no models to combine")
    for m in models[1:]:
        m.check_same_topology(models[0], "combine: ")
    xp = models[0].xp
    work = models[0].copy()
    ranges = [(s, e) for _, s, e in work.param_ranges()]
    if not ranges:
        raise NnetavgError("combine: the models have no parameters")
    thetas = [m.params for m in models]
    K, C = len(models), len(ranges) if per_component else 1
    held = _HeldOut(work, x, t)

    def params_of(w):
        w = w.reshape(K, C)
        out = xp.zeros_like(thetas[0])
        for c, (s, e) in enumerate(ranges):
            cc = c if per_component else 0
            for k in range(K):
                out[s:e] += float(w[k, cc]) * thetas[k][s:e]
        return out

    def weights_of(u):
        """Softmax over the models, per component: positive weights summing to one."""
        u = u.reshape(K, C)
        e = np.exp(u - u.max(axis=0))
        return (e / e.sum(axis=0)).reshape(-1)

    def f_and_grad(u):
        w = weights_of(u)
        loss, g = held.loss_and_grad(params_of(w))
        dw = np.zeros((K, C))
        for c, (s, e) in enumerate(ranges):
            cc = c if per_component else 0
            for k in range(K):
                dw[k, cc] += float(xp.dot(g[s:e], thetas[k][s:e]))
        w = w.reshape(K, C)
        du = w * (dw - (w * dw).sum(axis=0))          # through the softmax
        return loss, du.reshape(-1)

    singles = [held.loss(th) for th in thetas]
    w = np.zeros(K * C)                                # u = 0: the plain average
    f, g = f_and_grad(w)
    average = f
    evals = 1
    H = np.eye(K * C)                       # inverse-Hessian estimate
    for it in range(max_iters):
        if not np.isfinite(f) or np.linalg.norm(g) < 1e-7:
            break
        step = -H @ g
        if step @ g >= 0:                   # not a descent direction: restart from the gradient
            H, step = np.eye(K * C), -g
        alpha = 1.0
        while True:
            w_new = w + alpha * step
            f_new, g_new = f_and_grad(w_new)
            evals += 1
            if np.isfinite(f_new) and f_new <= f + 1e-4 * alpha * (step @ g):
                break
            alpha *= 0.5
            if alpha < 1e-6:
                break
        if alpha < 1e-6 or f - f_new < 1e-7 * max(1.0, abs(f)):
            if np.isfinite(f_new) and f_new < f:
                w, f, g = w_new, f_new, g_new
            break
        s, y = w_new - w, g_new - g
        if s @ y > 1e-12:
            rho = 1.0 / (s @ y)
            eye = np.eye(K * C)
            H = (eye - rho * np.outer(s, y)) @ H @ (eye - rho * np.outer(y, s)) + rho * np.outer(s, s)
        w, f, g = w_new, f_new, g_new
        log.debug("combine iteration %d: held-out cross-entropy %.6g", it + 1, f)
    w = weights_of(w)
    best_single = int(np.argmin(singles))
    # BFGS starts at the plain average and accepts only improvements: the combination is never
    # worse than the average, so the only other candidate is the best single model
    candidates = [(f, "combination", w),
                  (singles[best_single], f"model-{best_single + 1}", np.eye(K)[best_single].repeat(C))]
    obj, chosen, w_final = min(candidates, key=lambda c: c[0] if np.isfinite(c[0]) else np.inf)
    work.params[...] = params_of(w_final)
    return CombineResult(work, w_final.reshape(K, C), obj, average, singles, chosen, evals)


def average_last(models: list[Network], x: np.ndarray, t: np.ndarray) -> CombineResult:
    """The average of the last ``n`` of ``models`` (oldest first) with the lowest cross-entropy on
    ``x``/``t``, over n = 1..K; ties go to the smaller ``n``. ``chosen`` is ``last-n``."""
    if not models:
        raise NnetavgError("no models to combine")
    for m in models[1:]:
        m.check_same_topology(models[0], "combine: ")
    work = models[0].copy()
    K = len(models)
    total = work.xp.zeros_like(work.params)
    losses = []
    for n in range(1, K + 1):
        total += models[K - n].params
        work.params[...] = total / n
        losses.append(mean_cross_entropy(work, x, t))
        log.info("held-out cross-entropy of the average of the last %d model(s): %.6g", n, losses[-1])
    finite = [v if np.isfinite(v) else np.inf for v in losses]
    n = int(np.argmin(finite)) + 1
    work.params[...] = sum(models[K - k].params for k in range(1, n + 1)) / n if n > 1 else models[-1].params
    weights = np.zeros((K, 1))
    weights[K - n:] = 1.0 / n
    return CombineResult(work, weights, losses[n - 1], losses[-1], [losses[0]], f"last-{n}", K)


def weights_table(result: CombineResult) -> str:
    return "; ".join(f"model {k + 1}: " + " ".join(f"{v:.3f}" for v in row) for k, row in enumerate(result.weights))

