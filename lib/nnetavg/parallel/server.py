"""Asynchronous SGD with a parameter server over MPI, with averaged SGD (You & Xu, 003).

Rank 0 is the server; ranks 1..N-1 are workers, each reading its own archive (``JOB`` = worker
index). Protocol, all point-to-point, no barriers while training:

* start: the server broadcasts the model;
* worker: for each minibatch, forward/backward on its copy, then send ``[version, frames, loss,
  correct]`` (tag HEADER) and the summed gradient as one flat buffer (tag GRADIENT), and wait for
  the new parameters (tag PARAMS);
* server: takes gradients in arrival order (``MPI_Probe`` on any source), applies each at once --
  ``theta -= lr_t * gradient`` with the learning rate of its schedule at update t -- feeds the
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
carries them), so the server only scales by the global rate.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import time

import numpy as np

from nnetavg.errors import NnetavgError
from nnetavg.log import kv
from nnetavg.nnet.components import AffineTransform, Component
from nnetavg.nnet.network import Network
from nnetavg.parallel.comm import Communicator
from nnetavg.train.checkpoint import Preempted, load_checkpoint, write_npz
from nnetavg.train.iterate_averaging import IterateAverager
from nnetavg.train.trainer import Trainer, TrainOptions

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
    comm.comm.Bcast(applied, root=0)
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

    def update(self, index: int, comp: Component, x, y, dy, learn_rate: float) -> None:
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


def adagrad_step(grad, K: float = 1.0):
    """ASGD-adapt of 003, eq. (2) with K = 1 and tau = t: each parameter's rate is divided by
    sqrt(K + g^2) of its *current* gradient only (Adagrad with a memory of one update). In place."""
    xp_sq = grad * grad
    xp_sq += K
    grad /= xp_sq ** 0.5
    return grad


def run_server(comm: Communicator, nnet: Network, schedule, averager: IterateAverager | None,
               check=None, check_every: int = 0, adagrad: bool = False, chunk_frames: int = 0,
               on_chunk=None, ckpt: ServerCheckpoint | None = None) -> ServerReport:
    """Serves until every worker is done. With ``check`` (a function of the network returning its
    CV loss) and ``check_every`` > 0, every that many updates the average and the current model
    are compared on CV and the averager may switch to the Polyak phase. ``adagrad`` scales each
    gradient element by 1/sqrt(1 + g^2) (:func:`adagrad_step`). With ``chunk_frames``, the data is
    seen as chunks of that many frames (applied, over all workers) and ``on_chunk(index, nnet)`` is
    called before each chunk (the per-chunk learning-rate search plugs in there)."""
    MPI = comm.MPI
    workers = comm.size - 1
    if workers < 1:
        raise NnetavgError("asynchronous SGD needs a server and at least one worker: mpiexec -n 3 or more")
    applied = np.zeros(comm.size, np.int64)      # gradients applied, per worker rank
    version, done, sent, frames, loss, correct, chunk = 0, 0, 0, 0, 0.0, 0, 0
    state = ckpt.load() if ckpt is not None else None
    if state is not None:
        nnet.params[...] = state["params"]
        if averager is not None and "avg.avg" in state:
            averager.load_state({k[4:]: v for k, v in state.items() if k.startswith("avg.")})
        applied[:] = state["applied"]
        version, frames, loss, correct, chunk = (int(state["version"]), int(state["frames"]), float(state["loss"]),
                                                 int(state["correct"]), int(state["chunk"]))
        if hasattr(schedule, "rate") and "rate" in state:
            schedule.rate = float(state["rate"])
        log.info("resuming from %s: %d gradients applied (%s per worker)", ckpt.path, version,
                 ",".join(str(int(a)) for a in applied[1:]))
    resumed_version = version
    comm.bcast_array(nnet.params)
    grad = np.empty_like(nnet.params)
    header = np.empty(4, np.float64)
    pulled = {w: version for w in range(1, comm.size)}
    if chunk_frames and on_chunk is not None and state is None:
        on_chunk(0, nnet)

    def save() -> None:
        arrays = {"params": nnet.params, "applied": applied, "version": np.array(version), "frames": np.array(frames),
                  "loss": np.array(loss), "correct": np.array(correct), "chunk": np.array(chunk),
                  "world_size": np.array(comm.size)}
        if hasattr(schedule, "rate"):
            arrays["rate"] = np.array(schedule.rate)
        if averager is not None:
            arrays.update({f"avg.{k}": v for k, v in averager.state().items()})
        ckpt.save(arrays)
    stale: list[int] = []
    t0 = time.perf_counter()
    status = MPI.Status()
    while done < workers:
        comm.comm.Probe(source=MPI.ANY_SOURCE, tag=MPI.ANY_TAG, status=status)
        src, tag = status.Get_source(), status.Get_tag()
        if tag == TAG_DONE:
            n = np.empty(1, np.int64)
            comm.comm.Recv(n, source=src, tag=TAG_DONE)
            sent += int(n[0])
            done += 1
            continue
        comm.comm.Recv(header, source=src, tag=TAG_HEADER)
        comm.comm.Recv(grad, source=src, tag=TAG_GRADIENT)
        if chunk_frames and on_chunk is not None and frames // chunk_frames > chunk:
            chunk = frames // chunk_frames
            on_chunk(chunk, nnet)        # e.g. search the learning rate for the next chunk
        lr = schedule.learning_rate(version, frames)
        if adagrad:
            adagrad_step(grad)
        nnet.params -= nnet.params.dtype.type(lr) * grad
        if not np.all(np.isfinite(nnet.params)):
            raise NnetavgError(f"the model became NaN after the gradient from worker {src} (update {version + 1}, "
                               f"learning rate {lr:g}); lower --learn-rate")
        stale.append(version - pulled[src])
        version += 1
        applied[src] += 1
        if averager is not None:
            averager(version, nnet)
            if check is not None and check_every > 0 and version % check_every == 0 and not averager.polyak:
                current = check(nnet)
                averager.swap()
                average = check(nnet)
                averager.swap()
                averager.consider_switch(average, current)
        frames += int(header[1])
        loss += float(header[2])
        correct += int(header[3])
        pulled[src] = version
        if ckpt is not None and ckpt.stop_requested is not None and ckpt.stop_requested():
            save()
            _stop_workers(comm, done, src)
            raise Preempted(version, None)
        if ckpt is not None and ckpt.every and version % ckpt.every == 0:
            save()
        comm.comm.Send(nnet.params, dest=src, tag=TAG_PARAMS)
    if sent + resumed_version != version:
        raise NnetavgError(f"the workers sent {sent} gradients but the server applied {version}")
    hist: dict = {}
    for s in stale:
        hist[s] = hist.get(s, 0) + 1
    return ServerReport(version, sent + resumed_version, float(np.mean(stale)) if stale else 0.0, max(stale) if stale else 0,
                        dict(sorted(hist.items())), frames, loss / max(frames, 1), correct / max(frames, 1),
                        time.perf_counter() - t0)


def _stop_workers(comm: Communicator, done: int, waiting: int) -> None:
    """After a checkpoint: STOP to every worker, drop the gradients still on their way, wait for
    every worker's acknowledgement (or its DONE: it finished meanwhile)."""
    MPI = comm.MPI
    workers = comm.size - 1
    stop = np.zeros(1, np.float32)
    requests = [comm.comm.Isend(stop, dest=w, tag=TAG_STOP) for w in range(1, comm.size)]
    acked, finished = set(), done
    status = MPI.Status()
    grad = np.empty(0, np.float32)
    while len(acked) + finished < workers:
        comm.comm.Probe(source=MPI.ANY_SOURCE, tag=MPI.ANY_TAG, status=status)
        src, tag, count = status.Get_source(), status.Get_tag(), status.Get_count(MPI.BYTE)
        if tag == TAG_STOPPED:
            comm.comm.Recv(np.empty(1), source=src, tag=tag)
            acked.add(src)
        elif tag == TAG_DONE:
            comm.comm.Recv(np.empty(1, np.int64), source=src, tag=tag)
            finished += 1
        else:  # a header or a gradient that will not be applied (the worker redoes it on resume)
            if grad.nbytes < count:
                grad = np.empty(count, np.uint8)
            comm.comm.Recv([grad, count, MPI.BYTE], source=src, tag=tag)
    for r in requests:  # a STOP to a worker that finished meanwhile is never received: let it go
        r.Free()


def run_worker(comm: Communicator, nnet: Network, feats: str, ali: str, transform: Network | None,
               opts: TrainOptions, skip_minibatches: int = 0) -> int:
    """Trains on this worker's archive through the server; returns the gradients sent. The first
    ``skip_minibatches`` are replayed without compute (the server applied them before a restart).
    Raises :class:`Preempted` when the server says STOP."""
    MPI = comm.MPI
    comm.bcast_array(nnet.params)
    collector = GradientCollector(nnet)
    header = np.zeros(4, np.float64)
    trainer = Trainer(nnet, collector, opts)
    compute = trainer.step   # forward, objective, backward: the gradient lands in the collector
    count = 0

    status = MPI.Status()

    def step(x, t):
        nonlocal count
        loss, correct = compute(x, t)
        header[1:] = (x.shape[0], loss, correct)
        comm.comm.Send(header, dest=0, tag=TAG_HEADER)
        comm.comm.Send(collector.flat, dest=0, tag=TAG_GRADIENT)
        comm.comm.Recv([nnet.params, MPI.FLOAT], source=0, tag=MPI.ANY_TAG, status=status)
        if status.Get_tag() == TAG_STOP:
            comm.comm.Send(np.zeros(1), dest=0, tag=TAG_STOPPED)
            raise Preempted(count, None)
        collector.reset()
        count += 1
        return loss, correct

    trainer.step = step
    trainer.train_pass(feats, ali, transform, skip_minibatches=skip_minibatches)
    comm.comm.Send(np.array([count], np.int64), dest=0, tag=TAG_DONE)
    return count


def report_line(r: ServerReport) -> str:
    return kv(gradients_applied=r.applied, gradients_sent=r.sent, frames=r.frames, cross_entropy=r.cross_entropy,
              frame_accuracy=r.frame_accuracy, staleness_mean=round(r.staleness_mean, 3),
              staleness_max=r.staleness_max, seconds=round(r.seconds, 2)) + " staleness-histogram=" + \
        ",".join(f"{k}:{v}" for k, v in r.staleness_histogram.items())
