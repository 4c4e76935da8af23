"""Restricted Boltzmann machines trained with one step of contrastive divergence (CD-1), as
Kaldi nnet1's ``rbm-train-cd1-frmshuff`` (``src/nnet/nnet-rbm.h``, ``src/nnetbin/rbm-train-cd1-frmshuff.cc``).

Energy of a Bernoulli-Bernoulli RBM (visible v, hidden h, W hidden x visible)::

    E(v, h) = -b_v . v - b_h . h - h . W v                                              (1)
    F(v)    = -b_v . v - sum_j log(1 + exp(b_h[j] + W_j . v))      (free energy)           (2)

and of a Gaussian-Bernoulli one with unit variances (inputs normalised to zero mean, unit
variance by the feature transform's CMVN, which is why nnet1 puts it there)::

    E(v, h) = |v - b_v|^2 / 2 - b_h . h - h . W v                                        (3)
    F(v)    = |v - b_v|^2 / 2 - sum_j log(1 + exp(b_h[j] + W_j . v))                      (4)

CD-1 on a minibatch v0 (N frames, frame-shuffled)::

    h0 = sigmoid(v0 W^T + b_h)               hidden probabilities                        (5)
    h  ~ Bernoulli(h0)                       (Gaussian hidden units: h0 + N(0, 1))        (6)
    v1 = h W + b_v                           Gaussian visible: the mean, no noise;
                                             Bernoulli visible: sigmoid of it, no sampling (7)
    h1 = sigmoid(v1 W^T + b_h)                                                           (8)
    dW   = mom dW   + (lr/N)(h0^T v0 - h1^T v1) - lr l2 W;   W   += dW                   (9)
    db_v = mom db_v + (lr/N) sum(v0 - v1);                   b_v += db_v
    db_h = mom db_h + (lr/N) sum(h0 - h1);                   b_h += db_h

Guard against exploding Gaussian RBMs (nnet1): when ``2 std(v0) < std(v1)`` (over all matrix
elements), W, b_v and b_h are scaled by ``std(v0)/std(v1)``, the learning rate by 0.9 until the
next step of the momentum schedule sets it afresh (as nnet1's ``Rbm::RbmUpdate`` changes the
RBM's own copy of the options), the momentum buffers are zeroed and the update is skipped, with a
warning; the minibatch still counts (frames, error, the after-minibatch hook).

The reconstruction error reported is nnet1's ``MseProgress``: half the squared error, per frame.

Learning rate and momentum (nnet1, defaults): with ``n = frames_seen // momentum_step_period``
(500000 frames) and ``m_n = momentum + n (momentum_max - momentum) / momentum_steps`` (0.5 to 0.9
over 40 steps), the rate is ``learn_rate (1 - m_n)`` (the effective rate stays about constant), and
the momentum is ``m_n`` -- or, with nnet1's default ``--with-bug=true``, ``momentum_max`` from the
first minibatch. Defaults: learn_rate 0.4 (0.01 and twice the passes for the Gaussian first layer),
L2 0.0002, minibatch 100.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from typing import Callable, Iterator

import numpy as np

from nnetavg.backend import get_array_module, to_device
from nnetavg.data.randomizer import FrameRandomizer
from nnetavg.errors import NnetavgError
from nnetavg.io.tables import MATRIX, SequentialReader
from nnetavg.log import kv
from nnetavg.progress import Progress
from nnetavg.nnet.components import AffineTransform, Rbm, Sigmoid, sigmoid
from nnetavg.nnet.network import Network

log = logging.getLogger(__name__)


@dataclasses.dataclass
class RbmTrainOptions:
    learn_rate: float = dataclasses.field(default=0.4, metadata={"help": "Learning rate (nnet1: 0.4; 0.01 for a Gaussian visible layer)"})
    momentum: float = dataclasses.field(default=0.5, metadata={"help": "Initial momentum"})
    momentum_max: float = dataclasses.field(default=0.9, metadata={"help": "Final momentum"})
    momentum_steps: int = dataclasses.field(default=40, metadata={"help": "Steps from --momentum to --momentum-max"})
    momentum_step_period: int = dataclasses.field(default=500000, metadata={"help": "Frames per momentum step"})
    l2_penalty: float = dataclasses.field(default=0.0002, metadata={"help": "L2 penalty"})
    minibatch_size: int = dataclasses.field(default=100, metadata={"help": "Frames per minibatch"})
    randomizer_size: int = dataclasses.field(default=32768, metadata={"help": "Frames in the shuffling buffer"})
    randomizer_seed: int = dataclasses.field(default=777, metadata={"help": "Seed of the shuffling and of the hidden samples"})
    num_iters: int = dataclasses.field(default=1, metadata={"help": "Passes over the data"})
    with_bug: bool = dataclasses.field(default=True, metadata={"help": "nnet1's default: momentum at its maximum from the start"})
    report_period: int = dataclasses.field(default=200000, metadata={"help": "Frames between progress lines"})
    drop_data: float = dataclasses.field(default=0.0, metadata={"help": "Drop each frame with this probability "
                                                                      "(subsampling, as nnet1: 0 keeps all)"})


def free_energy(rbm: Rbm, v) -> np.ndarray:
    """F(v) per row (2) or (4)."""
    xp = get_array_module(v)
    W, bv, bh = rbm.param("weight"), rbm.param("visible_bias"), rbm.param("hidden_bias")
    act = v @ W.T + bh
    softplus = xp.logaddexp(0, act).sum(axis=1)
    if rbm.visible_type == "gauss":
        return 0.5 * ((v - bv) ** 2).sum(axis=1) - softplus
    return -(v @ bv) - softplus


def new_rbm(visible_dim: int, hidden_dim: int, visible_type: str = "bern", hidden_type: str = "bern",
            param_stddev: float = 0.1, seed: int = 777, visible_bias=None, hidden_bias: float = 0.0) -> Network:
    """An RBM as nnet1's ``Rbm::InitData``: W ~ N(0, stddev^2), biases zero (or given)."""
    for t in (visible_type, hidden_type):
        if t not in Rbm.TYPES:
            raise NnetavgError(f"RBM unit types are bern or gauss, not {t!r}")
    rng = np.random.default_rng(seed)
    r = Rbm(visible_dim, hidden_dim, visible_type, hidden_type)
    r.init["weight"] = (rng.standard_normal((hidden_dim, visible_dim)) * param_stddev).astype(np.float32)
    if visible_bias is not None:
        r.init["visible_bias"] = np.asarray(visible_bias, np.float32)
    r.init["hidden_bias"] = np.full(hidden_dim, hidden_bias, np.float32)
    return Network([r])


def visible_bias_from_mean(mean: np.ndarray) -> np.ndarray:
    """nnet1's Bernoulli visible-bias initialisation: logit of the mean activation, clipped."""
    p = np.clip(mean, 1e-4, 0.9999)
    return np.log(p / (1 - p)).astype(np.float32)


def rbm_to_nnet(rbm: Rbm) -> list:
    """``rbm-convert-to-nnet``: ``<AffineTransform>`` (W, b_h) and ``<Sigmoid>`` for Bernoulli
    hidden units; the visible bias is dropped."""
    a = AffineTransform(rbm.input_dim, rbm.output_dim)
    a.init = {"linearity": np.asarray(rbm.param("weight"), np.float32).copy(),
              "bias": np.asarray(rbm.param("hidden_bias"), np.float32).copy()}
    return [a, Sigmoid(rbm.output_dim, rbm.output_dim)] if rbm.hidden_type == "bern" else [a]


def frames(feats_rspecifier: str, transform: Network | None, dim: int, counts: dict) -> Iterator[np.ndarray]:
    """Transformed feature matrices of a table (NaN/Inf utterances skipped and counted)."""
    want = transform.input_dim if transform is not None else dim
    for key, x in SequentialReader(feats_rspecifier, MATRIX):
        if x.shape[1] != want:
            owner = "the feature transform" if transform is not None else "the RBM"
            raise NnetavgError(f"{feats_rspecifier}: utterance {key} has feature dim {x.shape[1]}, but {owner} "
                               f"expects {want}")
        if not np.all(np.isfinite(x)):
            counts["non-finite"] = counts.get("non-finite", 0) + 1
            log.warning("%s: utterance %s has NaN or Inf in its features, skipped", feats_rspecifier, key)
            continue
        x = np.asarray(x, np.float32)
        if transform is not None:
            x = np.asarray(transform.forward(x), np.float32)
        counts["utterances"] = counts.get("utterances", 0) + 1
        yield x


class RbmTrainer:
    def __init__(self, net: Network, opts: RbmTrainOptions,
                 after_minibatch: Callable[[int, Network], None] | None = None):
        if len(net.components) != 1 or not isinstance(net.components[0], Rbm):
            raise NnetavgError("CD-1 training needs a model that is one <Rbm> component")
        self.net, self.rbm, self.opts = net, net.components[0], opts
        xp = net.xp
        self._delta_flat = xp.zeros_like(net.params)
        self.delta = net.views(self._delta_flat)[0]
        self.rng = np.random.default_rng(opts.randomizer_seed + 1)
        self.frames_seen = 0
        self.minibatch = 0
        self.lr = opts.learn_rate * (1 - opts.momentum)
        self.mom = opts.momentum_max if opts.with_bug else opts.momentum
        self._step_n = -1
        self.explosions = 0
        self.after_minibatch = after_minibatch

    def _schedule(self) -> None:
        o = self.opts
        n = self.frames_seen // o.momentum_step_period
        if n > self._step_n:
            self._step_n = n
            m = min(o.momentum_max, o.momentum + n * (o.momentum_max - o.momentum) / max(o.momentum_steps, 1))
            self.lr = o.learn_rate * (1 - m)
            self.mom = o.momentum_max if o.with_bug else m

    def step(self, v0_host: np.ndarray) -> float:
        """One CD-1 update; returns half the summed squared reconstruction error (nnet1's)."""
        self._schedule()
        xp = self.net.xp
        r, d, o = self.rbm, self.delta, self.opts
        W, bv, bh = r.params["weight"], r.params["visible_bias"], r.params["hidden_bias"]
        v0 = to_device(v0_host, xp)
        n = v0.shape[0]
        h0 = v0 @ W.T + bh                                                             # (5)
        if r.hidden_type == "bern":
            h0 = sigmoid(h0)
            u = to_device(self.rng.random(h0.shape, dtype=np.float32), xp)
            hs = (h0 > u).astype(h0.dtype)                                             # (6)
        else:
            hs = h0 + to_device(self.rng.standard_normal(h0.shape, dtype=np.float32), xp)
        v1 = hs @ W + bv                                                               # (7)
        if r.visible_type == "bern":
            v1 = sigmoid(v1)
        h1 = v1 @ W.T + bh                                                             # (8)
        if r.hidden_type == "bern":
            h1 = sigmoid(h1)
        err = 0.5 * float(((v0 - v1) ** 2).sum())
        if r.visible_type == "gauss" and self._exploding(v0, v1):
            return self._done(n, err)
        lr_n = self.lr / n
        d["weight"] *= self.mom                                                        # (9)
        d["weight"] += lr_n * (h0.T @ v0 - h1.T @ v1)
        d["weight"] -= (self.lr * o.l2_penalty) * W
        d["visible_bias"] *= self.mom
        d["visible_bias"] += lr_n * (v0 - v1).sum(axis=0)
        d["hidden_bias"] *= self.mom
        d["hidden_bias"] += lr_n * (h0 - h1).sum(axis=0)
        self.net.params += self._delta_flat
        return self._done(n, err)

    def _done(self, n: int, err: float) -> float:
        self.frames_seen += n
        self.minibatch += 1
        if self.after_minibatch is not None:
            self.after_minibatch(self.minibatch, self.net)
        return err

    def _exploding(self, v0, v1) -> bool:
        """nnet1's guard for Gaussian visible units (see the module docstring); True: skip the update."""
        s0, s1 = float(v0.std()), float(v1.std())
        if not 2 * s0 < s1:
            return False
        scale = s0 / s1
        r = self.rbm
        for p in (r.params["weight"], r.params["visible_bias"], r.params["hidden_bias"]):
            p *= scale
        self._delta_flat[...] = 0
        self.explosions += 1
        self.lr *= 0.9
        log.warning("RBM: danger of weight explosion (std of reconstruction %.3g > 2 x std of data %.3g); "
                    "shrinking the parameters by %.3g and the learning rate to %.3g until the next schedule step",
                    s1, s0, scale, self.lr)
        return True

    def train_pass(self, feats_rspecifier: str, transform: Network | None, counts: dict | None = None,
                   seed_offset: int = 0) -> tuple[int, float]:
        """One pass; returns (frames, mean squared reconstruction error per frame)."""
        counts = counts if counts is not None else {}
        o = self.opts
        rand = FrameRandomizer(o.randomizer_size, o.minibatch_size, o.randomizer_seed + seed_offset)
        total_f, total_e, win_f, win_e = 0, 0.0, 0, 0.0
        t0 = time.perf_counter()
        bar = Progress("frames", period=float("inf"))  # a bar on a terminal; the log gets the lines below

        def run(final):
            nonlocal total_f, total_e, win_f, win_e
            for xb, _ in rand.minibatches(final=final):
                e = self.step(xb)
                bar.update(xb.shape[0])
                if not np.isfinite(e):
                    raise NnetavgError(f"the RBM reconstruction error became {e} after {self.frames_seen} frames; "
                                       f"lower --learn-rate")
                total_f += xb.shape[0]
                total_e += e
                win_f += xb.shape[0]
                win_e += e
                if win_f >= o.report_period:
                    log.info("progress %s", kv(frames_done=self.frames_seen, reconstruction_mse=win_e / win_f,
                                               learn_rate=self.lr, momentum=self.mom))
                    win_f, win_e = 0, 0.0
        if not 0.0 <= o.drop_data < 1.0:
            raise NnetavgError(f"--drop-data={o.drop_data}: must be in [0, 1)")
        drop = np.random.default_rng(o.randomizer_seed + 7919 + seed_offset)
        for x in frames(feats_rspecifier, transform, self.rbm.input_dim, counts):
            if o.drop_data > 0.0:
                x = x[drop.random(x.shape[0]) >= o.drop_data]
                if x.shape[0] == 0:
                    continue
            rand.add(x, np.zeros(x.shape[0], np.int32))
            if rand.full():
                run(False)
        run(True)
        bar.close()
        log.info("pass %s", kv(frames=total_f, reconstruction_mse=total_e / max(total_f, 1),
                               seconds=round(time.perf_counter() - t0, 2), learn_rate=self.lr, momentum=self.mom))
        return total_f, total_e / max(total_f, 1)
