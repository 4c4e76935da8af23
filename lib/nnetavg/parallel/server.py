"""Asynchronous SGD with a parameter server over MPI, with averaged SGD (You & Xu, 003).

Rank 0 is the server; ranks 1..N-1 are workers, each reading its own archive (``JOB`` = worker
index). Protocol, all point-to-point, no barriers while training:

* start: the server broadcasts the model;
* worker: for each minibatch, forward/backward on its copy, then send ``[version, frames, loss,
  correct]`` (tag HEADER) and the summed gradient as one flat buffer (tag GRADIENT), and wait for
  the new parameters (tag PARAMS);
* server: takes gradients in arrival order (a probe on any source), applies each at once --
  ``theta -= lr_t * gradient`` with the learning rate of its schedule at update t, and nnet1's
  momentum and L2 (:class:`ServerUpdate`) -- feeds the
  iterate averager (:mod:`nnetavg.train.iterate_averaging`), records the staleness (updates applied
  since that worker last pulled) and answers with the current parameters;
* end: a worker sends DONE with the number of gradients it sent; the server stops when every worker
  is done and checks that it applied exactly as many gradients as were sent.

Checkpoints (``--checkpoint FILE``): the server writes its whole state -- parameters, the iterate
average, update count, objective sums, chunk, schedule rate, and for each worker how many of its
gradients it has applied -- every ``checkpoint_every`` updates and when a preemption signal reaches
it. On a signal it then sends STOP to the workers, takes in (and drops) gradients already on the
way, waits for every worker's acknowledgement, and all ranks exit 75. A rerun loads the file, tells
each worker how many of its minibatches were applied, and the workers skip exactly those (replayed
without compute): every minibatch is applied exactly once across the runs. Asynchronous updates
depend on arrival order, so a resumed run is equivalent, not bitwise equal, to an uninterrupted one.

Learning-rate coefficients of the components are applied by the workers (the gradient already
carries them), so the server only scales by the global rate. All messages go through
:class:`~nnetavg.parallel.comm.Communicator` (device arrays staged through the host), so server
and workers may hold their models on a GPU.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import time

import numpy as np

from nnetavg.backend import to_numpy
from nnetavg.errors import NnetavgError
from nnetavg.log import kv
from nnetavg.nnet.components import AffineTransform, Component
from nnetavg.nnet.network import Network
from nnetavg.parallel.comm import Communicator
from nnetavg.train.checkpoint import Preempted, load_checkpoint, prefixed, substate, write_npz
from nnetavg.train.iterate_averaging import IterateAverager
from nnetavg.train.optim import SGDOptions
from nnetavg.train.trainer import ChangeLimiter, Trainer, TrainOptions

log = logging.getLogger(__name__)

TAG_HEADER, TAG_GRADIENT, TAG_PARAMS, TAG_DONE, TAG_STOP, TAG_STOPPED = 11, 12, 13, 14, 15, 16


@dataclasses.dataclass
class ServerCheckpoint:
    """Where and how often the server saves its state, and its stop signal."""
    path: str
    every: int = 0                                   # updates between checkpoints (0: only on preemption)
    stop_requested: object = None                    # callable: a preemption signal arrived

    def load(self):
        return load_checkpoint(self.path) if os.path.exists(self.path) else None

    def save(self, arrays: dict) -> None:
        write_npz(self.path, arrays)


def start_positions(comm: Communicator, ckpt: ServerCheckpoint | None) -> np.ndarray:
    """Collective: how many minibatches each rank's worker has had applied (from the server's
    checkpoint; zeros for a fresh run), broadcast from the server."""
    applied = np.zeros(comm.size, np.int64)
    if comm.rank == 0 and ckpt is not None:
        state = ckpt.load()
        if state is not None:
            if int(state["world_size"]) != comm.size:
                raise NnetavgError(f"{ckpt.path}: written by {int(state['world_size'])} ranks, this run has {comm.size}")
            applied[:] = state["applied"]
    comm.bcast_array(applied)
    return applied


class GradientCollector:
    """An "optimizer" that only writes the minibatch gradient (times the learning-rate
    coefficients) into a flat buffer laid out like the parameters."""

    def __init__(self, nnet: Network):
        self.nnet = nnet
        self.flat = nnet.xp.zeros_like(nnet.params)
        self.views = nnet.views(self.flat)

    def reset(self) -> None:
        self.flat[...] = 0

    def update(self, index: int, comp: Component, x, y, dy, learn_rate: float, x_free: bool = False) -> None:
        v = self.views[index]
        if isinstance(comp, AffineTransform):
            v["linearity"][...] = (dy.T @ x) * comp.lr_coef
            v["bias"][...] = dy.sum(axis=0) * comp.bias_lr_coef
            return
        for name, g in comp.param_gradients(x, y, dy).items():
            v[name][...] = g * comp.learn_rate_coef(name)


@dataclasses.dataclass
class ServerReport:
    applied: int
    sent: int
    staleness_mean: float
    staleness_max: int
    staleness_histogram: dict
    frames: int
    cross_entropy: float
    frame_accuracy: float
    seconds: float
    last_learn_rate: float = 0.0   # the rate of the last update applied (0: none applied)


def adagrad_step(grad, K: float = 1.0):
    """ASGD-adapt of 003, eq. (2) with K = 1 and tau = t: each parameter's rate is divided by
    sqrt(K + g^2) of its *current* gradient only (Adagrad with a memory of one update). In place."""
    xp_sq = grad * grad
    xp_sq += K
    grad /= xp_sq ** 0.5
    return grad


class ServerUpdate:
    """How the server applies one gradient ``g`` of a minibatch of N frames at rate ``lr``: nnet1's
    update (:mod:`nnetavg.train.optim`) on the flat buffer, so ``--momentum`` and ``--l2-penalty``
    mean what they mean in every trainer::

        g <- g / sqrt(1 + g^2)                    (--lr-schedule=adagrad only)
        W <- W - lr * l2 * N * W                  (weights of affine layers only, as nnet1)
        v <- momentum * v + g;   theta <- theta - lr * v      (v = g without momentum)

    then ``--max-change`` / ``--max-param-change`` on the change of the update
    (:class:`~nnetavg.train.trainer.ChangeLimiter`), when ``limits`` has them.
    """

    def __init__(self, nnet: Network, sgd: SGDOptions, adagrad: bool = False, limits: TrainOptions | None = None):
        self.nnet, self.momentum, self.l2, self.adagrad = nnet, sgd.momentum, sgd.l2_penalty, adagrad
        self.limiter = None
        if limits is not None and (limits.max_change or limits.max_param_change):
            self.limiter = ChangeLimiter(nnet, limits.max_change, limits.max_param_change)
        self.updates = 0
        xp = nnet.xp
        self.velocity = xp.zeros_like(nnet.params) if self.momentum else None
        self.weights = None
        if self.l2:
            self.weights = xp.zeros_like(nnet.params)
            for comp, views in zip(nnet.components, nnet.views(self.weights)):
                if isinstance(comp, AffineTransform):
                    views["linearity"][...] = 1

    def __call__(self, grad, lr: float, frames: int) -> None:
        p = self.nnet.params
        dt = p.dtype.type
        if self.limiter is not None:
            self.limiter.before()
        if self.adagrad:
            adagrad_step(grad)
        if self.l2:
            p -= dt(lr * self.l2 * frames) * (self.weights * p)
        if self.velocity is not None:
            self.velocity *= dt(self.momentum)
            self.velocity += grad
            grad = self.velocity
        p -= dt(lr) * grad
        self.updates += 1
        if self.limiter is not None:
            self.limiter.after(self.updates)

    def state(self) -> dict:
        return {"velocity": to_numpy(self.velocity)} if self.velocity is not None else {}

    def load_state(self, state: dict) -> None:
        if self.velocity is not None and "velocity" in state:
            self.velocity[...] = self.nnet.xp.asarray(state["velocity"])


@dataclasses.dataclass
class _ServerState:
    """The server's counters (what a checkpoint holds besides arrays)."""
    applied: np.ndarray
    version: int = 0
    frames: int = 0
    loss: float = 0.0
    correct: int = 0
    chunk: int = 0
    sent: int = 0
    done: int = 0


class Server:
    """Rank 0 of an asynchronous run: serves until every worker is done (see the module docstring).

    ``check`` (a function of the network returning its CV loss) with ``check_every`` > 0: every
    that many updates the average and the current model are compared on CV and the averager may
    switch to the Polyak phase. With ``chunk_frames``, the data is seen as chunks of that many
    frames (applied, over all workers) and ``on_chunk(index, nnet)`` is called before each chunk
    (the per-chunk learning-rate search plugs in there)."""

    def __init__(self, comm: Communicator, nnet: Network, schedule, update: ServerUpdate,
                 averager: IterateAverager | None, check=None, check_every: int = 0, chunk_frames: int = 0,
                 on_chunk=None, ckpt: ServerCheckpoint | None = None):
        if comm.size < 2:
            raise NnetavgError("asynchronous SGD needs a server and at least one worker: mpiexec -n 3 or more")
        self.comm, self.nnet, self.schedule, self.update, self.averager = comm, nnet, schedule, update, averager
        self.check, self.check_every, self.chunk_frames, self.on_chunk, self.ckpt = (check, check_every, chunk_frames,
                                                                                       on_chunk, ckpt)
        self.st = _ServerState(np.zeros(comm.size, np.int64))
        self.stale: list[int] = []
        self.last_lr = 0.0

    # -- checkpoints
    def _resume(self) -> bool:
        state = self.ckpt.load() if self.ckpt is not None else None
        if state is None:
            return False
        self.nnet.params[...] = self.nnet.xp.asarray(state["params"])
        if self.averager is not None and "avg.avg" in state:
            self.averager.load_state(substate(state, "avg."))
        self.update.load_state(substate(state, "upd."))
        st = self.st
        st.applied[:] = state["applied"]
        st.version, st.frames, st.loss, st.correct, st.chunk = (int(state["version"]), int(state["frames"]),
                                                                float(state["loss"]), int(state["correct"]),
                                                                int(state["chunk"]))
        if hasattr(self.schedule, "rate") and "rate" in state:
            self.schedule.rate = float(state["rate"])
        log.info("resuming from %s: %d gradients applied (%s per worker)", self.ckpt.path, st.version,
                 ",".join(str(int(a)) for a in st.applied[1:]))
        return True

    def _save(self) -> None:
        st = self.st
        arrays = {"params": to_numpy(self.nnet.params), "applied": st.applied, "version": np.array(st.version),
                  "frames": np.array(st.frames), "loss": np.array(st.loss), "correct": np.array(st.correct),
                  "chunk": np.array(st.chunk), "world_size": np.array(self.comm.size)}
        if hasattr(self.schedule, "rate"):
            arrays["rate"] = np.array(self.schedule.rate)
        if self.averager is not None:
            arrays.update(prefixed("avg.", self.averager.state()))
        arrays.update(prefixed("upd.", self.update.state()))
        self.ckpt.save(arrays)

    # -- serving
    def run(self) -> ServerReport:
        resumed = self._resume()
        resumed_version = self.st.version
        self.comm.bcast_array(self.nnet.params)
        grad = self.nnet.xp.empty_like(self.nnet.params)
        header = np.empty(4, np.float64)
        pulled = {w: self.st.version for w in range(1, self.comm.size)}
        if self.chunk_frames and self.on_chunk is not None and not resumed:
            self.on_chunk(0, self.nnet)
        t0 = time.perf_counter()
        while self.st.done < self.comm.size - 1:
            src, tag, _ = self.comm.probe()
            if tag == TAG_DONE:
                n = np.empty(1, np.int64)
                self.comm.recv(n, source=src, tag=TAG_DONE)
                self.st.sent += int(n[0])
                self.st.done += 1
                continue
            self.comm.recv(header, source=src, tag=TAG_HEADER)
            self.comm.recv(grad, source=src, tag=TAG_GRADIENT)
            self._apply(src, grad, header, pulled)
            pulled[src] = self.st.version
            if self.ckpt is not None and self.ckpt.stop_requested is not None and self.ckpt.stop_requested():
                self._save()
                _stop_workers(self.comm, self.st.done)
                raise Preempted(self.st.version, None)
            if self.ckpt is not None and self.ckpt.every and self.st.version % self.ckpt.every == 0:
                self._save()
            self.comm.send(self.nnet.params, dest=src, tag=TAG_PARAMS)
        return self._report(resumed_version, time.perf_counter() - t0)

    def _apply(self, src: int, grad, header: np.ndarray, pulled: dict) -> None:
        st, nnet = self.st, self.nnet
        if self.chunk_frames and self.on_chunk is not None and st.frames // self.chunk_frames > st.chunk:
            st.chunk = st.frames // self.chunk_frames
            self.on_chunk(st.chunk, nnet)        # e.g. search the learning rate for the next chunk
        lr = self.schedule.learning_rate(st.version, st.frames)
        self.last_lr = lr
        self.update(grad, lr, int(header[1]))
        if not bool(nnet.xp.all(nnet.xp.isfinite(nnet.params))):
            raise NnetavgError(f"the model became NaN after the gradient from worker {src} (update {st.version + 1}, "
                               f"learning rate {lr:g}); lower --learn-rate")
        self.stale.append(st.version - pulled[src])
        st.version += 1
        st.applied[src] += 1
        if self.averager is not None:
            self.averager(st.version, nnet)
            if self.check is not None and self.check_every > 0 and st.version % self.check_every == 0 \
                    and not self.averager.polyak:
                current = self.check(nnet)
                self.averager.swap()
                average = self.check(nnet)
                self.averager.swap()
                log.info("CV check after %d updates: current model %.6g, average %.6g", st.version, current, average)
                self.averager.consider_switch(average, current)
        st.frames += int(header[1])
        st.loss += float(header[2])
        st.correct += int(header[3])

    def _report(self, resumed_version: int, seconds: float) -> ServerReport:
        st, stale = self.st, self.stale
        if st.sent + resumed_version != st.version:
            raise NnetavgError(f"the workers sent {st.sent} gradients but the server applied {st.version}")
        hist: dict = {}
        for s in stale:
            hist[s] = hist.get(s, 0) + 1
        return ServerReport(st.version, st.sent + resumed_version, float(np.mean(stale)) if stale else 0.0,
                            max(stale) if stale else 0, dict(sorted(hist.items())), st.frames,
                            st.loss / max(st.frames, 1), st.correct / max(st.frames, 1), seconds,
                            self.last_lr)


def run_server(comm: Communicator, nnet: Network, schedule, averager: IterateAverager | None,
               check=None, check_every: int = 0, adagrad: bool = False, chunk_frames: int = 0,
               on_chunk=None, ckpt: ServerCheckpoint | None = None, sgd: SGDOptions | None = None,
               limits: TrainOptions | None = None) -> ServerReport:
    """:class:`Server` with nnet1's update (``sgd``: momentum, L2), optionally ASGD-adapt, and the
    max-change limits of ``limits``."""
    update = ServerUpdate(nnet, sgd or SGDOptions(), adagrad, limits)
    return Server(comm, nnet, schedule, update, averager, check, check_every, chunk_frames, on_chunk, ckpt).run()


def _stop_workers(comm: Communicator, done: int) -> None:
    """After a checkpoint: STOP to every worker, drop the gradients still on their way, wait for
    every worker's acknowledgement (or its DONE: it finished meanwhile)."""
    workers = comm.size - 1
    stop = np.zeros(1, np.float32)
    requests = [comm.isend(stop, dest=w, tag=TAG_STOP) for w in range(1, comm.size)]
    acked, finished = set(), done
    while len(acked) + finished < workers:
        src, tag, nbytes = comm.probe()
        if tag == TAG_STOPPED:
            comm.recv(np.empty(1), source=src, tag=tag)
            acked.add(src)
        elif tag == TAG_DONE:
            comm.recv(np.empty(1, np.int64), source=src, tag=tag)
            finished += 1
        else:  # a header or a gradient that will not be applied (the worker redoes it on resume)
            comm.discard(src, tag, nbytes)
    for r in requests:  # a STOP to a worker that finished meanwhile is never received: let it go
        r.free()


class _WorkerExchange:
    """The worker's after-minibatch hook: the gradient the step left in the collector goes to the
    server with the minibatch's figures; the server's current parameters come back (or STOP)."""

    def __init__(self, comm: Communicator, nnet: Network, collector: GradientCollector):
        self.comm, self.nnet, self.collector = comm, nnet, collector
        self.header = np.zeros(4, np.float64)
        self.trainer: Trainer | None = None
        self.count = 0

    def __call__(self, minibatch: int, nnet: Network) -> None:
        frames, loss, correct = self.trainer.last_step
        self.header[1:] = (frames, loss, correct)
        self.comm.send(self.header, dest=0, tag=TAG_HEADER)
        self.comm.send(self.collector.flat, dest=0, tag=TAG_GRADIENT)
        _, tag = self.comm.recv(nnet.params, source=0)
        if tag == TAG_STOP:
            self.comm.send(np.zeros(1), dest=0, tag=TAG_STOPPED)
            raise Preempted(self.count, None)
        self.collector.reset()
        self.count += 1


def run_worker(comm: Communicator, nnet: Network, feats: str, ali: str, transform: Network | None,
               opts: TrainOptions, skip_minibatches: int = 0) -> int:
    """Trains on this worker's archive through the server; returns the gradients sent. The first
    ``skip_minibatches`` are replayed without compute (the server applied them before a restart).
    Raises :class:`Preempted` when the server says STOP."""
    comm.bcast_array(nnet.params)
    collector = GradientCollector(nnet)
    exchange = _WorkerExchange(comm, nnet, collector)
    trainer = Trainer(nnet, collector, opts, after_minibatch=exchange)
    exchange.trainer = trainer
    trainer.train_pass(feats, ali, transform, skip_minibatches=skip_minibatches)
    comm.send(np.array([exchange.count], np.int64), dest=0, tag=TAG_DONE)
    return exchange.count


def report_line(r: ServerReport) -> str:
    return kv(gradients_applied=r.applied, gradients_sent=r.sent, frames=r.frames, cross_entropy=r.cross_entropy,
              frame_accuracy=r.frame_accuracy, staleness_mean=round(r.staleness_mean, 3),
              staleness_max=r.staleness_max, last_learn_rate=float(f"{r.last_learn_rate:.6g}"),
              seconds=round(r.seconds, 2)) + " staleness-histogram=" + \
        ",".join(f"{k}:{v}" for k, v in r.staleness_histogram.items())
