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
import logging

import numpy as np

from nnetavg.backend import get_array_module, to_numpy
from nnetavg.blas import gemm
from nnetavg.nnet.components import AffineTransform, Component
from nnetavg.errors import NnetavgError, NonFiniteUpdate, ObjectiveError
from nnetavg.nnet.network import Network
from nnetavg.train import natural_gradient as ngmod
from nnetavg.train.checkpoint import substate

log = logging.getLogger(__name__)


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

    def state(self) -> dict[str, np.ndarray]:
        """What a checkpoint needs to continue exactly: the momentum buffer (if any)."""
        return {"momentum": to_numpy(self._corr_flat)} if self._corr is not None else {}

    def load_state(self, state: dict) -> None:
        if self._corr is not None and "momentum" in state:
            self._corr_flat[...] = self.nnet.xp.asarray(state["momentum"])

    def update(self, index: int, comp: Component, x, y, dy, learn_rate: float, x_free: bool = False) -> None:
        """``x_free``: ``x`` may be overwritten (see :meth:`Network.backward`)."""
        if isinstance(comp, AffineTransform):
            self._update_affine(index, comp, x, dy, learn_rate, x_free)
            return
        for name, grad in comp.param_gradients(x, y, dy).items():
            _check_finite(index, grad)
            coef = comp.learn_rate_coef(name)
            if coef:
                p = comp.params[name]
                p -= (learn_rate * coef) * grad

    def _update_affine(self, index: int, comp: AffineTransform, x, dy, learn_rate: float, x_free: bool) -> None:
        self._apply_affine(index, comp, dy, x, None, 1.0, learn_rate)

    def _apply_affine(self, index: int, comp: AffineTransform, g, x, bias_col, scale: float,
                      learn_rate: float) -> None:
        """Equations (1)-(5) for the direction ``scale * g^T [x, bias_col]`` (``bias_col`` None: a
        column of ones, i.e. the bias direction is ``sum_rows(g)``). ``g`` may be overwritten: the
        caller no longer needs it (back-propagation is past this layer)."""
        xp = get_array_module(x)
        W, b = comp.params["linearity"], comp.params["bias"]
        n = x.shape[0]
        lr, lr_b = learn_rate * comp.lr_coef, learn_rate * comp.bias_lr_coef

        def bias_dir(gg):
            return gg.sum(axis=0) if bias_col is None else gg.T @ bias_col

        if self._corr is not None and scale != 1.0:
            g *= scale
        # The bias direction sums every row of g: NaN or Inf anywhere in g shows in it, so it is
        # the finiteness check too, before anything of this component changes (no extra pass)
        b_dir = bias_dir(g)
        _check_finite(index, b_dir)
        if self.opts.l2_penalty and lr:
            W *= 1.0 - lr * self.opts.l2_penalty * n                       # (3)
        if self._corr is None:
            if lr:   # W -= lr scale g^T x accumulated inside the GEMM (beta = 1): no product array
                gemm(-lr * scale, g, x, 1.0, W, trans_a=True)               # (1), (4)
            if lr_b:
                b -= (lr_b * scale) * b_dir                                 # (2), (4)
        else:
            cW, cb = self._corr[index]["linearity"], self._corr[index]["bias"]
            gemm(1.0, g, x, self.opts.momentum, cW, trans_a=True)           # (1): cW = m cW + g^T x
            cb *= self.opts.momentum
            cb += b_dir                                                     # (2)
            if lr:
                W -= lr * cW                                                # (4)
            if lr_b:
                b -= lr_b * cb
        if comp.max_norm > 0:                                               # (5)
            norms = xp.sqrt((W * W).sum(axis=1))
            W *= xp.minimum(1.0, comp.max_norm / xp.maximum(norms, 1e-30))[:, None]


def _check_finite(index: int, values) -> None:
    """NaN or Inf in a component's update direction: raise before the component changes (the
    trainer skips the rest of the minibatch's updates, counts and logs it)."""
    if not np.isfinite(float(values.sum())):
        raise NonFiniteUpdate(f"NaN or Inf in the update of component {index + 1}")


OPTIMIZERS = ("sgd", "ngsgd")


def make_optimizer(name: str, nnet: Network, sgd: "SGDOptions | None" = None, ng: "NGSGDOptions | None" = None):
    """The optimizer ``--optimizer`` names (every trainer chooses it this way): sgd (nnet1's
    update) or ngsgd (natural gradient on top of it)."""
    if name == "sgd":
        return SGD(nnet, sgd)
    if name == "ngsgd":
        return NGSGD(nnet, sgd, ng)
    raise NnetavgError(f"--optimizer must be one of {'|'.join(OPTIMIZERS)}, not {name!r}")


@dataclasses.dataclass
class NGSGDOptions:
    ngsgd_variant: str = dataclasses.field(default="online", metadata={"help": "online: Kaldi's online Fisher estimate (nnet2/nnet3); simple: from the other rows of each minibatch"})
    rank_in: int = dataclasses.field(default=20, metadata={"help": "Rank of the input-side Fisher estimate"})
    rank_out: int = dataclasses.field(default=40, metadata={"help": "Rank of the output-side Fisher estimate (Kaldi's nnet2/nnet3 scripts: 80; 40 measured as accurate and cheaper, bench/RESULTS.md)"})
    rank_divisor: int = dataclasses.field(default=0, metadata={"help": "0: the ranks as given; N: each side's rank is at most its dimension / N (narrow layers get smaller ranks)"})
    update_period: int = dataclasses.field(default=16, metadata={"help": "Update the Fisher estimates every N minibatches (after the first 10; Kaldi: 4; 16 measured as accurate and cheaper, bench/RESULTS.md)"})
    num_samples_history: float = dataclasses.field(default=2000.0, metadata={"help": "Frames of memory of the Fisher estimates"})
    alpha: float = dataclasses.field(default=4.0, metadata={"help": "Smoothing of the Fisher estimates with the identity"})
    max_change_per_sample: float = dataclasses.field(default=0.075, metadata={"help": "Online variant: limit of lr * sum_i |x_i||g_i| per frame (0: none)"})
    simple_max_change: float = dataclasses.field(default=0.0, metadata={"help": "Simple variant: limit of lr * sum_i |x_i||g_i| per minibatch (AffineComponentPreconditioned's max-change; 0: none)"})


class NGSGD(SGD):
    """SGD whose affine-layer steps are natural-gradient preconditioned (nnet2's
    ``AffineComponentPreconditionedOnline``, and ``AffineComponentPreconditioned`` for the simple
    variant), see :mod:`nnetavg.train.natural_gradient`. Per affine layer and minibatch::

        X_hat, gamma_in  = precondition_in([x, 1])      (bias jointly, via the ones column)
        G_hat, gamma_out = precondition_out(dy)
        scale = gamma_in * gamma_out
        tot = lr * scale * sum_i |x_hat_i| |g_hat_i|;  f = min(1, limit / tot)
            (limit: online max_change_per_sample * N; simple: simple_max_change, off by default)
        W -= lr * LearnRateCoef     * scale * f * G_hat^T X_hat[:, :D]
        b -= lr * BiasLearnRateCoef * scale * f * G_hat^T X_hat[:, D]

    then L2 and max-norm exactly as :class:`SGD`. With momentum the buffer accumulates the
    preconditioned, limited direction ``scale * f * G_hat^T X_hat`` (nnet1's uncompensated
    momentum on top of the natural gradient; Kaldi's NG recipes use none, and so do our defaults).

    The output derivative ``dy`` is preconditioned and scaled in place (the back-propagation no
    longer needs it at that point); so is the input where the trainer gives it up (``x_free``:
    every affine layer but the first in a network of affine and non-linearity layers), else a copy
    of it. The online variant never stores the ones column (``ones_column`` of the
    preconditioner); the simple one works on a copy with it. Fisher state is per job:
    :meth:`state` / :meth:`load_state` carry it across iterations when asked (``--ng-state keep``).
    """

    def __init__(self, nnet: Network, opts: SGDOptions | None = None, ng: NGSGDOptions | None = None):
        super().__init__(nnet, opts)
        self.ng = ng or NGSGDOptions()
        if self.ng.ngsgd_variant not in ("online", "simple"):
            raise NnetavgError(f"--ngsgd-variant must be online or simple, not {self.ng.ngsgd_variant!r}")
        self._ngmod = ngmod
        self.pre: dict[int, tuple] = {}
        if self.ng.ngsgd_variant == "online":
            for i, c in enumerate(nnet.components):
                if isinstance(c, AffineTransform):
                    mk = lambda r, d: ngmod.OnlinePreconditioner(  # noqa: E731
                        self.side_rank(r, d), self.ng.update_period, self.ng.num_samples_history, self.ng.alpha)
                    self.pre[i] = (mk(self.ng.rank_in, c.input_dim + 1), mk(self.ng.rank_out, c.output_dim))
        self._xe: dict[tuple[int, int], object] = {}
        self.limited = 0    # component updates scaled down by the max-change limit ...
        self.updates = 0    # ... out of this many (the epoch logs report the fraction)

    def side_rank(self, rank: int, dim: int) -> int:
        """The rank of one side's Fisher estimate: ``rank``, or with ``rank_divisor`` N at most dim / N."""
        if self.ng.rank_divisor <= 0:
            return rank
        return max(1, min(rank, dim // self.ng.rank_divisor))

    def _input_buffer(self, index: int, x, ones: bool):
        """A reused copy of ``x`` (N x D), with a column of ones after it when ``ones``."""
        xp = get_array_module(x)
        key = (index, x.shape[0])
        buf = self._xe.get(key)
        if buf is None:
            buf = self._xe[key] = xp.empty((x.shape[0], x.shape[1] + ones), dtype=x.dtype)
        if ones:
            buf[:, -1] = 1.0
            buf[:, :-1] = x
        else:
            buf[...] = x
        return buf

    def _update_affine(self, index: int, comp: AffineTransform, x, dy, learn_rate: float, x_free: bool) -> None:
        xp = get_array_module(x)
        n, din = x.shape
        online = self.ng.ngsgd_variant == "online"
        lr = learn_rate * comp.lr_coef
        limit_cfg = self.ng.max_change_per_sample if online else self.ng.simple_max_change
        limiting = limit_cfg > 0 and lr
        try:
            if online:   # the limit needs the rows' norms: the preconditioners form them with gamma
                pin, pout = self.pre[index]
                xh = x if x_free and x.flags.c_contiguous else self._input_buffer(index, x, False)
                g_in = pin.precondition(xh, row_norms=limiting, ones_column=True)
                g_out = pout.precondition(dy, row_norms=limiting)
                gh, bias_col = dy, pin.ones_hat
            else:
                xe = self._input_buffer(index, x, True)
                xe_hat, g_in = self._ngmod.precondition_simple(xe, self.ng.alpha)
                gh, g_out = self._ngmod.precondition_simple(dy, self.ng.alpha)
                xh, bias_col = xe_hat[:, :din], xe_hat[:, din]
        except np.linalg.LinAlgError as exc:
            raise ObjectiveError(f"natural gradient of component {index + 1}: the Fisher estimate cannot be "
                                 f"decomposed ({exc}); NaN or Inf in the input or the derivatives?") from None
        scale = g_in * g_out
        if not np.isfinite(float(scale)):   # NaN/Inf in x or dy make the traces non-finite: never apply such a step
            raise NonFiniteUpdate(f"natural gradient of component {index + 1}: NaN or Inf in its input or "
                                  f"derivatives")
        self.updates += 1
        if limiting:
            if online:
                rn_x, rn_g = pin.row_norms2, pout.row_norms2
            else:
                rn_x, rn_g = ngmod.row_norms2(xe_hat), ngmod.row_norms2(gh)
            row_prod = xp.sqrt(rn_x * rn_g)
            tot = lr * scale * float(row_prod.sum())
            limit = limit_cfg * n if online else limit_cfg
            if tot > limit:
                scale *= limit / tot
                self.limited += 1
                if self.limited <= 10:
                    log.info("natural gradient: limiting the step of component %d by a factor %.3g "
                             "(%s)", index + 1, limit / tot,
                             "max-change-per-sample" if online else "simple-max-change")
        self._apply_affine(index, comp, gh, xh, bias_col, scale, learn_rate)

    # -- Fisher state across iterations (--ng-state keep)
    def state(self) -> dict[str, np.ndarray]:
        """Momentum and Fisher estimates: what a checkpoint holds."""
        return {**super().state(), **self.fisher_state()}

    def fisher_state(self) -> dict[str, np.ndarray]:
        """The Fisher estimates alone: what --ng-state keep carries from one iteration to the next."""
        out: dict[str, np.ndarray] = {}
        for i, sides in self.pre.items():
            for side, p in zip(("in", "out"), sides):
                for k, v in p.state().items():
                    out[f"{i}.{side}.{k}"] = v
        return out

    def load_state(self, state: dict) -> None:
        super().load_state(state)
        xp = self.nnet.xp
        for i, sides in self.pre.items():
            for side, p in zip(("in", "out"), sides):
                prefix = f"{i}.{side}."
                part = substate(state, prefix)
                if "t" not in part:
                    raise NnetavgError(f"natural-gradient state has nothing for component {i + 1} ({side})")
                if int(part["t"]) and part["W"].shape[1] != (self.nnet.components[i].input_dim + 1 if side == "in"
                                                            else self.nnet.components[i].output_dim):
                    raise NnetavgError(f"natural-gradient state of component {i + 1} ({side}) has dim "
                                       f"{part['W'].shape[1]}, which does not fit the network")
                p.load_state(part, xp)
