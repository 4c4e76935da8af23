"""The one training loop every trainer binary uses, and evaluation on held-out data.

One pass over a features table with pdf alignments (nnet1's ``nnet-train-frmshuff``):
utterances -> feature transform -> frame randomizer -> minibatches of exactly
``minibatch_size`` frames -> forward -> softmax + cross-entropy -> backward with per-layer updates.

Hooks, so later capabilities plug in without touching the loop:

* ``schedule.learning_rate(minibatch, frames_seen)`` is asked before every minibatch (seam 4);
* ``optimizer.update(index, component, x, y, dy, learn_rate, x_free=...)`` is called per updatable
  component (seam 2: SGD, natural gradient); ``x_free``: the trainer gave the activations up and
  nothing below reads ``x`` any more (see :meth:`Network.backward`), so it may be overwritten;
* ``after_minibatch(minibatch, network)`` is called after every update (seam 3: MPI mixing every
  K minibatches plugs in here).

Steps that cannot blow up (Kaldi nnet3's ``max-change`` and ``max-param-change``), for every
optimizer: with ``max_change`` M > 0 the change of each component's parameters in one minibatch
(whatever the optimizer made of it: momentum, L2, natural gradient) is scaled down to 2-norm M
when it is larger (2M for the last updatable component, as nnet3's recipes give the output layer
twice the hidden layers' limit); with ``max_param_change`` P > 0 the change of the whole model is
then scaled down to norm P. Measured on the flat buffer (the parameters before the minibatch are
kept in a second buffer), so it costs two passes over the parameters per minibatch, only when on.

The cross-entropy is ``-sum_t log(y_t[target_t] + 1e-20)`` (nnet1's ``Xent``), reported per frame.
A NaN or infinite objective stops the pass with :class:`ObjectiveError` before the model is
written, so a diverged run never leaves a NaN model behind.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from typing import Callable

import numpy as np

from nnetavg.backend import get_array_module, to_device, to_numpy
from nnetavg.data.randomizer import FrameRandomizer
from nnetavg.data.utterances import LENGTH_TOLERANCE, DataStats, TargetWeights, labelled_utterances
from nnetavg.errors import NnetavgError, NonFiniteUpdate, ObjectiveError
from nnetavg.train.checkpoint import Preempted
from nnetavg.log import kv
from nnetavg.progress import Progress
from nnetavg.nnet.network import Network
from nnetavg.train.schedules import make_schedule
from nnetavg.data.targets import SoftTargets, soft_xent_and_derivative

log = logging.getLogger(__name__)


@dataclasses.dataclass
class TrainOptions:
    learn_rate: float = dataclasses.field(default=0.008, metadata={"help": "Learning rate per frame (gradients are summed over the minibatch)"})
    minibatch_size: int = dataclasses.field(default=256, metadata={"help": "Frames per minibatch"})
    randomizer_size: int = dataclasses.field(default=32768, metadata={"help": "Frames in the shuffling buffer"})
    randomizer_seed: int = dataclasses.field(default=777, metadata={"help": "Seed of the frame shuffling"})
    length_tolerance: int = dataclasses.field(default=LENGTH_TOLERANCE, metadata={"help": "Frames of feature/alignment length difference tolerated (the longer is truncated); more is skipped"})
    report_period: int = dataclasses.field(default=200000, metadata={"help": "Frames between progress lines in the log"})
    lr_schedule: str = dataclasses.field(default="constant", metadata={"help": "Within the pass: constant | minibatch-decay (lr * decay^t) | xu (lr (1 + a lr t)^-c)"})
    lr_decay: float = dataclasses.field(default=0.999, metadata={"help": "Per-minibatch factor of --lr-schedule=minibatch-decay"})
    xu_a: float = dataclasses.field(default=1.0, metadata={"help": "a of --lr-schedule=xu"})
    xu_c: float = dataclasses.field(default=0.75, metadata={"help": "c of --lr-schedule=xu"})
    max_change: float = dataclasses.field(default=0.0, metadata={"help": "Largest parameter change of one component in one minibatch (2-norm; nnet3's max-change, twice this for the output layer; 0: no limit)"})
    max_param_change: float = dataclasses.field(default=0.0, metadata={"help": "Largest change of the whole model in one minibatch (2-norm; nnet3's max-param-change; 0: no limit)"})
    randomize: bool = dataclasses.field(default=True, metadata={"help": "Shuffle frames within the randomizer buffer (false: minibatches in data order)"})
    frame_weights: str = dataclasses.field(default="", metadata={"help": "Per-frame weights (rspecifier of float vectors) scaling each frame's gradient and objective"})
    utt_weights: str = dataclasses.field(default="", metadata={"help": "Per-utterance weights (rspecifier of floats) multiplying the frame weights; 0 drops the utterance"})


@dataclasses.dataclass
class PassStats:
    """Objective and accuracy over a pass (training or evaluation). ``weight`` is the sum of the
    frame weights (the frames, unless soft or weighted targets say otherwise) and divides the
    sums; ``entropy_sum`` is the targets' entropy (0 for alignments), so ``avg_loss`` is Kaldi's
    ``AvgLoss``."""
    frames: int = 0
    loss_sum: float = 0.0
    correct: float = 0
    seconds: float = 0.0
    step_seconds: float = 0.0   # of ``seconds``, inside the training steps (the rest: reading, shuffling)
    minibatches: int = 0
    weight: float = 0.0
    entropy_sum: float = 0.0

    @property
    def cross_entropy(self) -> float:
        return self.loss_sum / self.weight if self.weight else float("nan")

    @property
    def avg_loss(self) -> float:
        return (self.loss_sum - self.entropy_sum) / self.weight if self.weight else float("nan")

    @property
    def frame_accuracy(self) -> float:
        return self.correct / self.weight if self.weight else float("nan")

    @property
    def frames_per_sec(self) -> float:
        return self.frames / self.seconds if self.seconds > 0 else 0.0

    def add(self, frames: int, loss: float, correct: float, weight: float | None = None, entropy: float = 0.0) -> None:
        self.frames += frames
        self.loss_sum += loss
        self.correct += correct
        self.weight += frames if weight is None else weight
        self.entropy_sum += entropy

    def figures(self) -> str:
        return kv(frames=self.frames, cross_entropy=self.cross_entropy, frame_accuracy=self.frame_accuracy,
                  frames_per_sec=round(self.frames_per_sec, 1))


def _require_softmax(nnet: Network) -> None:
    if not nnet.ends_in_softmax():
        raise NnetavgError("cross-entropy training and evaluation need a network that ends in <Softmax>")


def objective(y, targets, compute_derivative: bool = True) -> tuple[float, float, float, float]:
    """(loss sum, correct, weight, entropy sum) for alignments or :class:`SoftTargets` on ``y``'s
    device; ``y`` becomes the derivative when ``compute_derivative``."""
    if isinstance(targets, SoftTargets):
        return soft_xent_and_derivative(y, targets, compute_derivative)
    loss, correct = xent_and_derivative(y, targets, compute_derivative)
    return loss, correct, float(targets.shape[0]), 0.0


def _to_device_targets(t, xp):
    return t.to(xp) if isinstance(t, SoftTargets) else to_device(t, xp)


def xent_and_derivative(y, targets, compute_derivative: bool = True) -> tuple[float, int]:
    """Cross-entropy sum and number of correct frames for softmax outputs ``y`` (N x C);
    replaces ``y`` by ``y - onehot(targets)`` (the derivative w.r.t. the softmax input) when
    ``compute_derivative``."""
    xp = get_array_module(y)
    rows = xp.arange(y.shape[0])
    p = y[rows, targets]
    loss = -xp.log(p + 1e-20).sum()
    correct = (y.argmax(axis=1) == targets).sum()
    if compute_derivative:
        y[rows, targets] -= 1.0
    return float(loss), int(correct)


def held_out_scores(nnet, x: np.ndarray, t: np.ndarray, chunk: int = 8192) -> tuple[float, float]:
    """(cross-entropy per frame, frame accuracy) of ``nnet`` on host frames ``x`` with pdf targets
    ``t``, forwarded ``chunk`` frames at a time."""
    loss = correct = 0.0
    for i in range(0, len(t), chunk):
        y = nnet.forward(nnet.xp.asarray(x[i:i + chunk].astype(nnet.dtype, copy=False)))
        l, c = xent_and_derivative(y, nnet.xp.asarray(t[i:i + chunk]), compute_derivative=False)
        loss, correct = loss + l, correct + c
    return loss / len(t), correct / len(t)


def mean_cross_entropy(nnet, x: np.ndarray, t: np.ndarray, chunk: int = 8192) -> float:
    """Cross-entropy per frame of ``nnet`` on host frames ``x`` with pdf targets ``t``."""
    return held_out_scores(nnet, x, t, chunk)[0]


class Trainer:
    def __init__(self, nnet: Network, optimizer, opts: TrainOptions, schedule=None,
                 after_minibatch: Callable[[int, Network], None] | None = None):
        _require_softmax(nnet)
        self.nnet = nnet
        self.optimizer = optimizer
        self.opts = opts
        if schedule is None:
            try:
                schedule = make_schedule(opts.lr_schedule, opts.learn_rate, opts.lr_decay, opts.xu_a, opts.xu_c)
            except ValueError as exc:
                raise NnetavgError(str(exc)) from None
        self.schedule = schedule
        self.after_minibatch = after_minibatch
        self.minibatch = 0
        self.frames_seen = 0
        self.nonfinite_skipped = 0   # minibatches whose update was NaN/Inf and not applied (below some component)
        self.resume_stats: tuple[int, float, float, float, float] | None = None
        self.expected_frames: int | None = None  # frames of the pass, for the progress bar's time left
        self.last_lr = self.schedule.learning_rate(0, 0)
        self.last_step: tuple[int, float, float] = (0, 0.0, 0)   # frames, loss sum, correct of the last minibatch
        self.last_weight_entropy: tuple[float, float] = (0.0, 0.0)  # and its target weight and entropy sums
        if opts.max_change < 0 or opts.max_param_change < 0:
            raise NnetavgError("--max-change and --max-param-change must be >= 0 (0: no limit)")
        self._limiter = ChangeLimiter(nnet, opts.max_change, opts.max_param_change) \
            if (opts.max_change or opts.max_param_change) else None

    # ------------------------------------------------------------------ state (checkpoints)
    def state_dict(self, pass_stats: "PassStats | None" = None, minibatches_in_pass: int = 0) -> dict:
        """Everything a checkpoint needs to continue exactly: parameters, optimizer state
        (``opt.*``), the counters that drive the schedules, and the position and objective sums of
        the pass in progress. Host arrays, ready for :func:`~nnetavg.train.checkpoint.write_npz`."""
        from nnetavg.train.checkpoint import optimizer_state  # noqa: PLC0415  (checkpoint imports us)
        stats = pass_stats if pass_stats is not None else PassStats()
        return {"params": to_numpy(self.nnet.params), **optimizer_state(self.optimizer),
                "trainer.minibatch": np.array(self.minibatch), "trainer.frames_seen": np.array(self.frames_seen),
                "pass.minibatches": np.array(minibatches_in_pass), "pass.frames": np.array(stats.frames),
                "pass.loss_sum": np.array(stats.loss_sum), "pass.correct": np.array(stats.correct),
                "pass.weight": np.array(stats.weight), "pass.entropy_sum": np.array(stats.entropy_sum)}

    def load_state_dict(self, state: dict, path: str = "checkpoint", params_and_optimizer: bool = True) -> int:
        """The inverse of :meth:`state_dict`; returns the minibatches of the pass to skip.
        ``params_and_optimizer=False``: only the counters and the pass position (the caller has
        loaded the rest)."""
        from nnetavg.train.checkpoint import substate  # noqa: PLC0415
        if params_and_optimizer:
            params = state["params"]
            if params.shape != tuple(self.nnet.params.shape):
                raise NnetavgError(f"{path}: has {params.size} parameters, the model has {self.nnet.params.size}")
            self.nnet.params[...] = self.nnet.xp.asarray(params)
            opt = substate(state, "opt.")
            if opt:
                self.optimizer.load_state(opt)
        self.minibatch = int(state["trainer.minibatch"])
        self.frames_seen = int(state["trainer.frames_seen"])
        frames = int(state["pass.frames"])
        self.resume_stats = (frames, float(state["pass.loss_sum"]), float(state["pass.correct"]),
                             float(state.get("pass.weight", frames)), float(state.get("pass.entropy_sum", 0.0)))
        return int(state["pass.minibatches"])

    def step(self, x_host: np.ndarray, t_host: np.ndarray) -> tuple[float, int]:
        """One minibatch: forward, objective, backward with updates. Returns (loss sum, correct)."""
        xp = self.nnet.xp
        x = to_device(x_host.astype(self.nnet.dtype, copy=False), xp)
        t = _to_device_targets(t_host, xp)
        lr = self.schedule.learning_rate(self.minibatch, self.frames_seen)
        self.last_lr = lr
        acts = self.nnet.forward_train(x)
        loss, correct, weight, entropy = objective(acts[-1], t)
        self.last_weight_entropy = (weight, entropy)
        if not np.isfinite(loss):
            raise ObjectiveError(f"the objective became {loss} at minibatch {self.minibatch} "
                                 f"(after {self.frames_seen} frames, learning rate {lr:g}); "
                                 f"the model is not written: lower --learn-rate")
        if self._limiter is not None:
            self._limiter.before()
        try:   # the optimizer raises NonFiniteUpdate before it changes a component (optim._check_finite)
            self.nnet.backward(acts, acts[-1],   # the activations are ours: updates may overwrite them
                               lambda i, comp, xi, yi, dy, free: self.optimizer.update(i, comp, xi, yi, dy, lr,
                                                                                       x_free=free),
                               free_inputs=True)
        except NonFiniteUpdate as exc:   # the components above were updated (finite); this one and below not
            self.nonfinite_skipped += 1
            if self.nonfinite_skipped <= 10:
                log.warning("minibatch %d: %s: update skipped for it and the components below (%d skipped so far)",
                            self.minibatch, exc, self.nonfinite_skipped)
        if self._limiter is not None:
            self._limiter.after(self.minibatch)
        self.minibatch += 1
        self.frames_seen += x_host.shape[0]
        self.last_step = (x_host.shape[0], loss, correct)   # for after-minibatch hooks
        if self.after_minibatch is not None:
            self.after_minibatch(self.minibatch, self.nnet)
        return loss, correct

    def train_pass(self, feats_rspecifier: str, ali_rspecifier: str, feature_transform: Network | None,
                   data_stats: DataStats | None = None, skip_minibatches: int = 0,
                   should_stop: Callable[[], bool] | None = None) -> PassStats:
        """One pass over the data (an epoch of this job's archive).

        ``skip_minibatches``: the first minibatches of the pass are read and shuffled as usual but
        not trained on (resuming from a checkpoint, see :mod:`nnetavg.train.checkpoint`; the
        trainer's counters and ``resume_stats`` come from the checkpoint). ``should_stop``: checked
        after every minibatch; when it returns True the pass raises :class:`Preempted` carrying
        the minibatches done and the statistics so far.
        """
        opts = self.opts
        data_stats = data_stats if data_stats is not None else DataStats()
        rand = FrameRandomizer(opts.randomizer_size, opts.minibatch_size, opts.randomizer_seed, opts.randomize)
        total, window = PassStats(), PassStats()
        if skip_minibatches and self.resume_stats is not None:
            total.frames, total.loss_sum, total.correct, total.weight, total.entropy_sum = self.resume_stats
        start = last_report = time.perf_counter()
        bar = Progress("frames", total=self.expected_frames, period=float("inf"))  # a bar on a terminal only
        done = 0  # minibatches of this pass, skipped ones included

        def run(final: bool) -> None:
            nonlocal last_report, done
            for xb, tb in rand.minibatches(final=final):
                done += 1
                if done <= skip_minibatches:
                    continue
                t0 = time.perf_counter()
                loss, correct = self.step(xb, tb)
                total.step_seconds += time.perf_counter() - t0
                bar.update(xb.shape[0])
                total.add(xb.shape[0], loss, correct, *self.last_weight_entropy)
                window.add(xb.shape[0], loss, correct, *self.last_weight_entropy)
                if window.frames >= opts.report_period:
                    now = time.perf_counter()
                    window.seconds = now - last_report
                    log.info("progress %s %s", kv(frames_done=total.frames, learn_rate=self.last_lr),
                             window.figures().replace("frames=", "window-frames="))
                    window.__init__()
                    last_report = now
                if should_stop is not None and should_stop():
                    bar.close()
                    raise Preempted(done, total)

        for _, x, t in labelled_utterances(feats_rspecifier, ali_rspecifier, self.nnet.output_dim,
                                           self.nnet.input_dim, feature_transform, data_stats,
                                           opts.length_tolerance,
                                           weights=TargetWeights(opts.frame_weights, opts.utt_weights)):
            rand.add(x, t)
            if rand.full():
                run(final=False)
        run(final=True)
        bar.close()
        if skip_minibatches > done:
            raise NnetavgError(f"the checkpoint is {skip_minibatches} minibatches into the pass, but the data has "
                               f"only {done}: not the same data or options as the interrupted run")
        total.seconds = time.perf_counter() - start
        total.minibatches = self.minibatch
        self.pass_minibatches = done
        if rand.dropped:
            log.info("%d frames left over at the end (less than a minibatch) were not used", rand.dropped)
        if self._limiter is not None:
            log.info("max-change %s", self._limiter.summary(max(done - skip_minibatches, 1)))
        if self.nonfinite_skipped:
            log.warning("%d minibatch update(s) with NaN or Inf were skipped so far", self.nonfinite_skipped)
        return total


class ChangeLimiter:
    """Kaldi nnet3's max-change per component and max-param-change for the whole model, on the
    flat parameter buffer (see the module docstring)."""

    def __init__(self, nnet: Network, max_change: float, max_param_change: float):
        self.nnet, self.max_change, self.max_param_change = nnet, max_change, max_param_change
        self.ranges = nnet.param_ranges()
        self._before = nnet.xp.empty_like(nnet.params)
        self._delta = nnet.xp.empty_like(nnet.params)
        self.limited = {i: 0 for i, _, _ in self.ranges}   # minibatches in which each component was limited
        self.model_limited = 0
        self._logged = 0

    def before(self) -> None:
        self._before[...] = self.nnet.params

    def after(self, minibatch: int) -> None:
        xp, p, d = self.nnet.xp, self.nnet.params, self._delta
        xp.subtract(p, self._before, out=d)
        norms = [xp.dot(d[a:b], d[a:b]) for _, a, b in self.ranges]
        norms = np.sqrt(np.asarray([float(v) for v in norms], dtype=np.float64))
        scales = np.ones(len(self.ranges))
        if self.max_change:
            last = len(self.ranges) - 1
            limits = np.array([self.max_change * (2.0 if k == last else 1.0) for k in range(len(self.ranges))])
            over = norms > limits
            scales[over] = limits[over] / norms[over]
        if self.max_param_change:
            total = float(np.sqrt(((scales * norms) ** 2).sum()))
            if total > self.max_param_change:
                scales *= self.max_param_change / total
                self.model_limited += 1
        if not np.isfinite(norms).all():
            return  # a NaN step: the objective check of the next minibatch stops the pass
        for k, (i, a, b) in enumerate(self.ranges):
            if scales[k] < 1.0:
                self.limited[i] += 1
                p[a:b] = self._before[a:b] + d.dtype.type(scales[k]) * d[a:b]
        if scales.min() < 1.0 and self._logged < 5:
            self._logged += 1
            log.info("max-change: minibatch %d: change norms %s scaled by %s", minibatch,
                     " ".join(f"{v:.3g}" for v in norms), " ".join(f"{v:.3g}" for v in scales))

    def summary(self, minibatches: int) -> str:
        parts = {f"component-{i + 1}": round(n / minibatches, 4) for i, n in self.limited.items()}
        return kv(limited_fraction_model=round(self.model_limited / minibatches, 4), **parts)


def evaluate(nnet: Network, feats_rspecifier: str, ali_rspecifier: str, feature_transform: Network | None,
             data_stats: DataStats | None = None, chunk_frames: int = 8192, length_tolerance: int = LENGTH_TOLERANCE,
             shard: tuple[int, int] = (0, 1), weights: TargetWeights | None = None) -> PassStats:
    """Cross-entropy and frame accuracy over a whole table (or its ``shard``), without updates;
    ``weights``: per-frame / per-utterance weights as in training."""
    _require_softmax(nnet)
    data_stats = data_stats if data_stats is not None else DataStats()
    stats = PassStats()
    start = time.perf_counter()
    xs, ts, n = [], [], 0

    def flush() -> None:
        nonlocal xs, ts, n
        if not xs:
            return
        x = to_device(np.concatenate(xs).astype(nnet.dtype, copy=False), nnet.xp)
        t = _to_device_targets(SoftTargets.concat(ts) if any(isinstance(a, SoftTargets) for a in ts)
                               else np.concatenate(ts), nnet.xp)
        y = nnet.forward(x)
        stats.add(x.shape[0], *objective(y, t, compute_derivative=False))
        xs, ts, n = [], [], 0

    for _, x, t in labelled_utterances(feats_rspecifier, ali_rspecifier, nnet.output_dim, nnet.input_dim,
                                       feature_transform, data_stats, length_tolerance, shard, weights):
        xs.append(x)
        ts.append(t)
        n += x.shape[0]
        if n >= chunk_frames:
            flush()
    flush()
    stats.seconds = time.perf_counter() - start
    if shard[1] == 1 and not np.isfinite(stats.loss_sum):
        raise ObjectiveError(f"the objective on {feats_rspecifier} is {stats.loss_sum}")
    return stats
