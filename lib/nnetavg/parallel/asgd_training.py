"""Asynchronous (averaged) SGD as one library call, :func:`train_asgd`, mirroring
:func:`nnetavg.parallel.mpi_training.train_mpi`: rank 0 serves (:class:`~nnetavg.parallel.server.Server`),
ranks 1..N-1 train on their archives (:func:`~nnetavg.parallel.server.run_worker`).

The server's learning rate per update (``--lr-schedule`` within the one pass, as in every
trainer): constant, minibatch-decay (ASGD-hand of 003), xu, adagrad (ASGD-adapt: each gradient
element scaled by 1/sqrt(1 + g^2)) or search (ASGD-search: the rate chosen before every chunk of
data by :func:`~nnetavg.train.lr_search.search_learning_rate`, starting from the previous
chunk's rate / 0.618 as CNTK does, at most 2 x ``learn_rate``). ``--momentum`` and
``--l2-penalty`` are applied by the server with nnet1's equations, and ``--max-change`` /
``--max-param-change`` to each update (:class:`~nnetavg.parallel.server.ServerUpdate`).

At the end the server writes the iterate average (``averaged_sgd``), or, with CV data, whichever
of the average and the last iterate has the lower CV cross-entropy.
"""

from __future__ import annotations

import dataclasses
import logging

import numpy as np

from nnetavg.data.utterances import DataStats, held_out_frames, labelled_utterances
from nnetavg.errors import NnetavgError
from nnetavg.nnet.network import Network
from nnetavg.parallel.comm import Communicator
from nnetavg.parallel.server import ServerCheckpoint, report_line, run_server, run_worker, start_positions
from nnetavg.train.iterate_averaging import IterateAverager
from nnetavg.train.lr_search import SHRINK, search_learning_rate
from nnetavg.train.optim import SGDOptions
from nnetavg.train.schedules import make_schedule
from nnetavg.train.trainer import TrainOptions, evaluate, mean_cross_entropy

log = logging.getLogger(__name__)

SERVER_SCHEDULES = ("constant", "minibatch-decay", "xu", "adagrad", "search")


@dataclasses.dataclass
class AsgdOptions:
    averaged_sgd: bool = dataclasses.field(default=True, metadata={"help": "Keep and write the iterate average"})
    asgd_eta: float = dataclasses.field(default=0.01, metadata={"help": "Running-average weight before the Polyak switch"})
    polyak_after: int = dataclasses.field(default=0, metadata={"help": "No switch to the Polyak average before this many updates (steps/train_asgd.sh: --polyak-after-fraction of the pass)"})
    chunk_size: str = dataclasses.field(default="1h", metadata={"help": "Data chunk (frames, or hours with an h suffix at 100 frames/s); --lr-schedule=search sets the rate per chunk"})
    search_feats: str = dataclasses.field(default="", metadata={"help": "With --lr-schedule=search: training features to sample from"})
    search_ali: str = dataclasses.field(default="", metadata={"help": "With --lr-schedule=search: their pdf alignments"})
    search_fraction: float = dataclasses.field(default=0.03, metadata={"help": "Share of a chunk used by the search"})
    checkpoint_every: int = dataclasses.field(default=1000, metadata={"help": "With --checkpoint: the server saves its state every N updates (and on a preemption signal)"})
    cv_check_every: int = dataclasses.field(default=200, metadata={"help": "With --cv-feats: compare average and current model every N updates; switch to the Polyak average when the average wins (0: only at the end)"})
    cv_check_frames: int = dataclasses.field(default=50000, metadata={"help": "Frames of the CV set (its first utterances, held in memory) used by those periodic comparisons; the choice at the end uses all of it (0: all, read every time)"})

    def chunk_frames(self) -> int:
        try:
            c = self.chunk_size
            return int(float(c[:-1]) * 360000) if c.endswith("h") else int(c)
        except ValueError:
            raise NnetavgError(f"--chunk-size={self.chunk_size}: frames, or hours like 1h") from None


class ChunkRateSearch:
    """``on_chunk`` of the server for ASGD-search: before chunk i, the rate is searched on the next
    ``n_frames`` of a shuffled sample of the search data (rolling through it), starting from the
    previous chunk's rate / 0.618 (the initial rate for the first chunk), at most ``max_lr``."""

    def __init__(self, schedule, feats: str, ali: str, transform, nnet: Network, n_frames: int, minibatch: int,
                 seed: int, max_lr: float):
        xs, ts = [], []
        for _, x, t in labelled_utterances(feats, ali, nnet.output_dim, nnet.input_dim, transform, DataStats()):
            xs.append(x)
            ts.append(t)
        if not xs:
            raise NnetavgError(f"no frames in {feats} for the learning-rate search")
        x_all, t_all = np.concatenate(xs), np.concatenate(ts)
        perm = np.random.default_rng(seed).permutation(len(t_all))
        self.x, self.t = x_all[perm], t_all[perm]
        self.n = min(max(n_frames, 3 * minibatch), len(self.t))
        self.schedule, self.minibatch, self.max_lr = schedule, minibatch, max_lr

    def first_candidate(self, index: int) -> float:
        return self.schedule.rate if index == 0 else self.schedule.rate / SHRINK

    def __call__(self, index: int, net: Network) -> None:
        start = (index * self.n) % max(1, len(self.t) - self.n + 1)
        r = search_learning_rate(net, self.x[start:start + self.n], self.t[start:start + self.n],
                                 self.first_candidate(index), self.minibatch, seed=index, max_lr=self.max_lr)
        self.schedule.rate = r.learn_rate
        log.info("chunk %d: learn-rate=%.6g (baseline %.4g, after %.4g, %d tries, %d frames)", index + 1,
                 r.learn_rate, r.baseline, r.criterion, r.tries, self.n)


def _server(comm: Communicator, nnet: Network, transform, opts: TrainOptions, sgd: SGDOptions, asgd: AsgdOptions,
            cv_feats: str, cv_ali: str, ckpt) -> Network:
    name = "constant" if opts.lr_schedule in ("adagrad", "search") else opts.lr_schedule
    schedule = make_schedule(name, opts.learn_rate, opts.lr_decay, opts.xu_a, opts.xu_c)
    averager = IterateAverager(nnet, asgd.asgd_eta, asgd.polyak_after) if asgd.averaged_sgd else None
    check = _cv_check(nnet, cv_feats, cv_ali, transform, asgd.cv_check_frames) if cv_feats else None
    on_chunk = None
    if opts.lr_schedule == "search":
        n = max(4 * opts.minibatch_size, int(asgd.search_fraction * asgd.chunk_frames()))
        on_chunk = ChunkRateSearch(schedule, asgd.search_feats, asgd.search_ali, transform, nnet, n,
                                   opts.minibatch_size, opts.randomizer_seed, 2 * opts.learn_rate)
    rep = run_server(comm, nnet, schedule, averager, check, asgd.cv_check_every, opts.lr_schedule == "adagrad",
                     asgd.chunk_frames(), on_chunk, ckpt, sgd, opts)
    log.info("server %s", report_line(rep))
    if averager is not None:
        _choose_average(nnet, averager, transform, cv_feats, cv_ali)
    return nnet


def _cv_check(nnet: Network, cv_feats: str, cv_ali: str, transform, max_frames: int):
    """The server's periodic CV check: a function of the network giving the cross-entropy per frame
    on the first ``max_frames`` CV frames, read (and transformed) once and held in memory, so that
    a check costs one forward pass over a sample instead of a pass over the files (0, or soft
    targets: the whole CV set, read every time)."""
    whole = lambda net: evaluate(net, cv_feats, cv_ali, transform).cross_entropy  # noqa: E731
    if max_frames <= 0:
        return whole
    frames = held_out_frames(labelled_utterances(cv_feats, cv_ali, nnet.output_dim, nnet.input_dim, transform,
                                                 DataStats()), max_frames, f"{cv_feats} for the CV checks")
    if frames is None:
        return whole
    x, t = frames
    log.info("CV checks on the first %d frames of %s", len(t), cv_feats)
    return lambda net: mean_cross_entropy(net, x, t)


def _choose_average(nnet: Network, averager: IterateAverager, transform, cv_feats: str, cv_ali: str) -> None:
    """Leaves in ``nnet`` the average, or (with CV data) the better of average and last iterate."""
    if not cv_feats:
        averager.swap()
        return
    last = evaluate(nnet, cv_feats, cv_ali, transform).cross_entropy
    averager.swap()
    avg = evaluate(nnet, cv_feats, cv_ali, transform).cross_entropy
    log.info("CV cross-entropy: last iterate %.6g, average %.6g: writing the %s", last, avg,
             "average" if avg < last else "last iterate")
    if not avg < last:
        averager.swap()


def train_asgd(comm: Communicator, nnet: Network, feats: str, ali: str, transform: Network | None,
               opts: TrainOptions, sgd: SGDOptions, asgd: AsgdOptions, cv_feats: str = "", cv_ali: str = "",
               ckpt: ServerCheckpoint | None = None) -> Network | None:
    """One asynchronous pass. ``feats``/``ali``: rspecifiers of this worker's archive (ignored on
    the server). Returns the model to write on rank 0 and None on the workers. Raises
    :class:`~nnetavg.train.checkpoint.Preempted` on every rank after a preemption checkpoint."""
    if opts.lr_schedule not in SERVER_SCHEDULES:
        raise NnetavgError(f"--lr-schedule must be one of {'|'.join(SERVER_SCHEDULES)}, not {opts.lr_schedule!r}")
    if opts.lr_schedule == "search" and not (asgd.search_feats and asgd.search_ali):
        raise NnetavgError("--lr-schedule=search needs --search-feats and --search-ali")
    if bool(cv_feats) != bool(cv_ali):
        raise NnetavgError("--cv-feats and --cv-ali go together")
    asgd.chunk_frames()  # checks --chunk-size on every rank before any message
    applied = start_positions(comm, ckpt)
    if comm.rank == 0:
        return _server(comm, nnet, transform, opts, sgd, asgd, cv_feats, cv_ali, ckpt)
    # workers only compute gradients: the server applies the schedule, momentum and L2
    worker_opts = dataclasses.replace(opts, lr_schedule="constant", max_change=0.0, max_param_change=0.0)
    n = run_worker(comm, nnet, feats, ali, transform, worker_opts, int(applied[comm.rank]))
    log.info("worker %d sent %d gradients", comm.rank, n)
    return None
