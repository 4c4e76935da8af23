"""Per-layer parameter updates: plain SGD with momentum, L2 and max-norm (nnet1).

The trainer calls :meth:`SGD.update` for each updatable component during back-propagation with
the component's input ``x`` and output derivative ``dy`` (seam 2 of the design), after the
input derivative has been formed with the old parameters.

nnet1's ``AffineTransform::Update`` (``src/nnet/nnet-affine-transform.h``), which we follow::

    lr   = learn_rate * LearnRateCoef,   lr_b = learn_rate * BiasLearnRateCoef
    W_corr = momentum * W_corr + dy^T x              (1)  summed over the N frames
    b_corr = momentum * b_corr + sum_rows(dy)        (2)
    W -= lr * l2 * N * W                             (3)  L2 also scales with N
    W -= lr * W_corr;   b -= lr_b * b_corr           (4)
    rows of W with norm > MaxNorm are scaled to MaxNorm (when MaxNorm > 0)   (5)

Gradients are *sums* over the minibatch, so ``learn_rate`` is a per-frame rate: doubling the
minibatch doubles the step. Momentum is not compensated by (1 - momentum) (nnet1 does not).
Typical values: learn_rate 0.008 at minibatch 256 with sigmoid units (nnet1's default), momentum 0
to 0.9, l2 0 to 1e-5. Components other than affine layers (``<AddShift>``, ``<Rescale>``,
``<ParametricRelu>``) are updated by plain SGD when their learning-rate coefficient is non-zero.

Momentum buffers live in one flat array laid out like the parameters; they are local to the job
(model averaging touches only the parameters, as in Kaldi).
"""

from __future__ import annotations

import dataclasses

from nnetavg.backend import get_array_module
from nnetavg.nnet.components import AffineTransform, Component
from nnetavg.nnet.network import Network


@dataclasses.dataclass
class SGDOptions:
    momentum: float = dataclasses.field(default=0.0, metadata={"help": "Momentum (nnet1: not (1-m) compensated)"})
    l2_penalty: float = dataclasses.field(default=0.0, metadata={"help": "L2 penalty, per frame"})


class SGD:
    def __init__(self, nnet: Network, opts: SGDOptions | None = None):
        self.nnet = nnet
        self.opts = opts or SGDOptions()
        xp = nnet.xp
        self._corr = None
        if self.opts.momentum != 0:
            self._corr_flat = xp.zeros_like(nnet.params)
            self._corr = nnet.views(self._corr_flat)

    def update(self, index: int, comp: Component, x, y, dy, learn_rate: float) -> None:
        if isinstance(comp, AffineTransform):
            self._update_affine(index, comp, x, dy, learn_rate)
            return
        for name, grad in comp.param_gradients(x, y, dy).items():
            coef = comp.learn_rate_coef(name)
            if coef:
                p = comp.params[name]
                p -= (learn_rate * coef) * grad

    def _update_affine(self, index: int, comp: AffineTransform, x, dy, learn_rate: float) -> None:
        xp = get_array_module(x)
        W, b = comp.params["linearity"], comp.params["bias"]
        n = x.shape[0]
        lr, lr_b = learn_rate * comp.lr_coef, learn_rate * comp.bias_lr_coef
        if self.opts.l2_penalty and lr:
            W *= 1.0 - lr * self.opts.l2_penalty * n                       # (3)
        if self._corr is None:
            if lr:
                W -= (dy * lr).T @ x if dy.shape[1] <= x.shape[1] else dy.T @ (x * lr)   # (1), (4)
            if lr_b:
                b -= lr_b * dy.sum(axis=0)                                  # (2), (4)
        else:
            cW, cb = self._corr[index]["linearity"], self._corr[index]["bias"]
            cW *= self.opts.momentum
            cW += dy.T @ x                                                  # (1)
            cb *= self.opts.momentum
            cb += dy.sum(axis=0)                                            # (2)
            if lr:
                W -= lr * cW                                                # (4)
            if lr_b:
                b -= lr_b * cb
        if comp.max_norm > 0:                                               # (5)
            norms = xp.sqrt((W * W).sum(axis=1))
            scale = xp.minimum(1.0, comp.max_norm / xp.maximum(norms, 1e-30))
            W *= scale[:, None]
