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

Learning-rate coefficients of the components are applied by the workers (the gradient already
carries them), so the server only scales by the global rate.
"""

from __future__ import annotations

import dataclasses
import logging
import time

import numpy as np

from nnetavg.errors import NnetavgError
from nnetavg.log import kv
from nnetavg.nnet.components import AffineTransform, Component
from nnetavg.nnet.network import Network
from nnetavg.parallel.comm import Communicator
from nnetavg.train.iterate_averaging import IterateAverager
from nnetavg.train.trainer import Trainer, TrainOptions

log = logging.getLogger(__name__)

TAG_HEADER, TAG_GRADIENT, TAG_PARAMS, TAG_DONE = 11, 12, 13, 14


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
               on_chunk=None) -> ServerReport:
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
    comm.bcast_array(nnet.params)
    grad = np.empty_like(nnet.params)
    header = np.empty(4, np.float64)
    pulled = {w: 0 for w in range(1, comm.size)}
    version, done, sent, frames, loss, correct, chunk = 0, 0, 0, 0, 0.0, 0, 0
    if chunk_frames and on_chunk is not None:
        on_chunk(0, nnet)
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
        comm.comm.Send(nnet.params, dest=src, tag=TAG_PARAMS)
    if sent != version:
        raise NnetavgError(f"the workers sent {sent} gradients but the server applied {version}")
    hist: dict = {}
    for s in stale:
        hist[s] = hist.get(s, 0) + 1
    return ServerReport(version, sent, float(np.mean(stale)) if stale else 0.0, max(stale) if stale else 0,
                        dict(sorted(hist.items())), frames, loss / max(frames, 1), correct / max(frames, 1),
                        time.perf_counter() - t0)


def run_worker(comm: Communicator, nnet: Network, feats: str, ali: str, transform: Network | None,
               opts: TrainOptions) -> int:
    """Trains on this worker's archive through the server; returns the gradients sent."""
    comm.bcast_array(nnet.params)
    collector = GradientCollector(nnet)
    header = np.zeros(4, np.float64)
    trainer = Trainer(nnet, collector, opts)
    compute = trainer.step   # forward, objective, backward: the gradient lands in the collector
    count = 0

    def step(x, t):
        nonlocal count
        loss, correct = compute(x, t)
        header[1:] = (x.shape[0], loss, correct)
        comm.comm.Send(header, dest=0, tag=TAG_HEADER)
        comm.comm.Send(collector.flat, dest=0, tag=TAG_GRADIENT)
        comm.comm.Recv(nnet.params, source=0, tag=TAG_PARAMS)
        collector.reset()
        count += 1
        return loss, correct

    trainer.step = step
    trainer.train_pass(feats, ali, transform)
    comm.comm.Send(np.array([count], np.int64), dest=0, tag=TAG_DONE)
    return count


def report_line(r: ServerReport) -> str:
    return kv(gradients_applied=r.applied, gradients_sent=r.sent, frames=r.frames, cross_entropy=r.cross_entropy,
              frame_accuracy=r.frame_accuracy, staleness_mean=round(r.staleness_mean, 3),
              staleness_max=r.staleness_max, seconds=round(r.seconds, 2)) + " staleness-histogram=" + \
        ",".join(f"{k}:{v}" for k, v in r.staleness_histogram.items())
