"""Data-parallel training over MPI: every rank trains on its own archive and the ranks' models are
mixed every K minibatches (all-reduce, butterfly or ring, :mod:`nnetavg.parallel.comm`).

Per epoch e of E (papers: Su, Chen & Xu 2015; Su & Chen, 004):

1. learning rate ``lr_e = exponential_rate(initial, final, e, E)``, times the world size unless
   told otherwise (each rank's step is averaged with N-1 others, as in file averaging; not with
   block momentum, :mod:`nnetavg.parallel.bmuf`, whose filter supplies that factor);
2. one pass of each rank over its archive with its own randomizer seed (``seed + 1000 rank + e``),
   mixing after every K local minibatches; ranks that run out of data early keep joining the
   mixes until all are done (:class:`PeriodicMixer`);
3. an exact all-reduce average, so all ranks hold the same model (BMUF: the last block through
   the filter, then its global model);
4. the CV objective over the CV table shared among the ranks (utterance i on rank i mod N),
   summed with one all-reduce.

Momentum and natural-gradient state stay local to each rank (as in Kaldi's averaging).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import os
import time

import numpy as np

from nnetavg.backend import to_numpy
from nnetavg.data.utterances import DataStats
from nnetavg.errors import NnetavgError, ObjectiveError
from nnetavg.log import kv
from nnetavg.nnet.network import Network
from nnetavg.parallel.comm import Communicator, PeriodicMixer
from nnetavg.fileutil import atomic_output
from nnetavg.train.checkpoint import (Preempted, checkpoint_arrays, load_checkpoint, restore_position, substate,
                                      write_npz)
from nnetavg.train.schedules import NewbobSchedule, exponential_rate
from nnetavg.train.trainer import Trainer, TrainOptions, evaluate

log = logging.getLogger(__name__)


@dataclasses.dataclass
class MPIOptions:
    mixing: str = dataclasses.field(default="allreduce", metadata={"help": "allreduce | butterfly | ring | bmuf (all-reduce with block momentum)"})
    average_every: int = dataclasses.field(default=10, metadata={"help": "Mix the ranks' models every K minibatches"})
    num_epochs: int = dataclasses.field(default=1, metadata={"help": "Passes over each rank's archive"})
    final_learn_rate: float = dataclasses.field(default=0.0, metadata={"help": "Rate of the last epoch (exponential decay from --learn-rate; 0: constant)"})
    scale_lr_by_world_size: str = dataclasses.field(default="auto", metadata={"help": "Multiply the learning rate by the number of ranks: true | false | auto (true, except with --mixing=bmuf, whose block momentum supplies the factor)"})
    block_momentum: float = dataclasses.field(default=-1.0, metadata={"help": "--mixing=bmuf: block momentum eta in [0, 1) (-1: 1 - 1/ranks, Chen & Huo's choice; 0: plain model averaging with the block learning rate)"})
    block_learning_rate: float = dataclasses.field(default=1.0, metadata={"help": "--mixing=bmuf: block learning rate zeta"})
    nesterov: bool = dataclasses.field(default=True, metadata={"help": "--mixing=bmuf: Nesterov block momentum (false: classical)"})
    world_size: int = dataclasses.field(default=0, metadata={"help": "Number of ranks expected (0: any); guards against a broken launcher"})
    cuda_aware_mpi: bool = dataclasses.field(default=False, metadata={"help": "Hand GPU buffers to MPI directly (no host staging)"})
    epoch_schedule: str = dataclasses.field(default="exponential", metadata={"help": "Between epochs: exponential (to --final-learn-rate) | newbob (nnet1's accept/reject and halving; needs --cv-feats; --num-epochs is the maximum)"})
    scale_ng_limit_by_world_size: str = dataclasses.field(default="sqrt", metadata={"help": "NG-SGD: where the rate is multiplied by the ranks, multiply its --max-change-per-sample by sqrt(ranks) (sqrt), the ranks (true) or not (false). Our departure from Kaldi, which never scales it: sqrt gained 1-2 points at 8-32 ranks on the synthetic corpus, x ranks diverged at 32 (egs/synth/s5/RESULTS.md)"})
    limit_follows_rate: bool = dataclasses.field(default=False, metadata={"help": "NG-SGD: scale --max-change-per-sample by each epoch's rate over the first epoch's, so that steps clipped by the limit anneal with the schedule too"})


@dataclasses.dataclass
class EpochReport:
    epoch: int
    learn_rate: float
    train_frames: int
    train_cross_entropy: float
    train_frame_accuracy: float
    cv_cross_entropy: float
    cv_frame_accuracy: float
    cv_frames: int
    seconds: float
    mix_seconds: float
    params_sum: float      # the same on every rank after the exact average (a consistency check)


class MPICheckpoints:
    """Checkpoints of an MPI run in one directory: ``TAG.R.npz`` for rank R (TAG ``eE`` after E
    epochs, ``eEmX`` inside epoch E+1 after the X-th mix, the same on all ranks; each rank's file
    holds its own position in its data), and ``state.json``, written by rank 0 after every rank
    has written its file (a barrier), which names the last complete checkpoint. Older files are
    removed once a newer checkpoint is complete; each file is written atomically.
    """

    def __init__(self, directory: str, comm: Communicator):
        self.dir, self.comm = directory, comm
        if comm.rank == 0:
            os.makedirs(directory, exist_ok=True)
        comm.barrier()

    def load(self):
        """(state dict, this rank's arrays) of the last complete checkpoint, or None."""
        path = os.path.join(self.dir, "state.json")
        if not os.path.exists(path):
            return None
        with open(path) as f:
            state = json.load(f)
        if state["world_size"] != self.comm.size:
            raise NnetavgError(f"{path}: written by {state['world_size']} ranks, this run has {self.comm.size}: "
                               f"resume with the same number of ranks (or remove {self.dir})")
        return state, load_checkpoint(os.path.join(self.dir, f"{state['tag']}.{self.comm.rank}.npz"))

    def save(self, epochs: int, mid_epoch: bool, arrays: dict, state: dict) -> None:
        rank = self.comm.rank
        tag = f"e{epochs}m{self.comm.mixes}" if mid_epoch else f"e{epochs}"
        write_npz(os.path.join(self.dir, f"{tag}.{rank}.npz"), arrays)
        self.comm.barrier()
        if rank == 0:
            with atomic_output(os.path.join(self.dir, "state.json")) as f:
                f.write(json.dumps({**state, "tag": tag, "epochs": epochs, "mid_epoch": mid_epoch,
                                    "world_size": self.comm.size}).encode())
        self.comm.barrier()
        for name in os.listdir(self.dir):
            if name.endswith(f".{rank}.npz") and name != f"{tag}.{rank}.npz":
                os.remove(os.path.join(self.dir, name))


class _MpiRun:
    """The state of one :func:`train_mpi` run: model, optimizer, mixer, between-epoch schedule,
    checkpoints and the reports so far; one method per phase of an epoch."""

    def __init__(self, comm: Communicator, nnet: Network, optimizer, transform, opts: TrainOptions, mpi: MPIOptions,
                 cv_feats: str, cv_ali: str, checkpoint_dir: str, stop_requested):
        self.comm, self.nnet, self.optimizer, self.transform, self.opts, self.mpi = (comm, nnet, optimizer, transform,
                                                                                      opts, mpi)
        self.cv_feats, self.cv_ali, self.checkpoint_dir = cv_feats, cv_ali, checkpoint_dir
        self.mixer = PeriodicMixer(comm, mpi.mixing, mpi.average_every, stop_requested, mpi.block_momentum,
                                   mpi.block_learning_rate, mpi.nesterov)
        self.scale_lr = scale_lr_by_world_size(mpi)
        self._base_limit = None      # NG-SGD's max-change-per-sample for this run (x ranks' factor)
        if hasattr(optimizer, "ng"):  # the run's own copy: the caller's options are not changed
            factor = limit_scale(mpi, comm.size) if self.scale_lr else 1.0
            optimizer.ng = dataclasses.replace(optimizer.ng,
                                               max_change_per_sample=optimizer.ng.max_change_per_sample * factor)
            self._base_limit = optimizer.ng.max_change_per_sample
            if factor != 1.0:
                log.info("max-change-per-sample %.4g (x %.3g for %d ranks)", self._base_limit, factor, comm.size)
        self.reports: list[EpochReport] = []
        self._limits_seen = (0, 0)   # NG-SGD's (limited, updates) counters at the start of the epoch
        self.newbob: NewbobSchedule | None = None
        self.best = None
        self.ckpts = MPICheckpoints(checkpoint_dir, comm) if checkpoint_dir else None
        if mpi.epoch_schedule not in ("exponential", "newbob"):
            raise NnetavgError(f"--epoch-schedule must be exponential or newbob, not {mpi.epoch_schedule!r}")
        if mpi.epoch_schedule == "newbob" and not cv_feats:
            raise NnetavgError("--epoch-schedule=newbob needs --cv-feats and --cv-ali")

    def start(self):
        """Everyone starts from rank 0's model, or from the last complete checkpoint; returns
        (first epoch, whether it is resumed in mid-epoch, the checkpoint's arrays or None)."""
        comm, nnet = self.comm, self.nnet
        comm.bcast_array(nnet.params)
        self.mixer.start(nnet.params)
        resumed = self.ckpts.load() if self.ckpts else None
        if self.mpi.epoch_schedule == "newbob":
            self.newbob = NewbobSchedule(self.opts.learn_rate, max_iters=self.mpi.num_epochs)
            if resumed is None:
                self.newbob.start(self.cv()[0])
            self.best = nnet.params.copy()
        if resumed is None:
            return 0, False, None
        state, ck = resumed
        nnet.params[...] = nnet.xp.asarray(ck["params"])
        self.optimizer.load_state(substate(ck, "opt."))
        comm.mixes = int(ck["mixes"])
        self.mixer.load_state(ck)
        self.reports = [EpochReport(**r) for r in state["reports"]]
        if self.newbob is not None:
            self.newbob.state = state["newbob"]
            self.best[...] = nnet.xp.asarray(ck["best"])
        mid = bool(state["mid_epoch"])
        log.info("resuming from %s: %d epochs done%s", self.checkpoint_dir, state["epochs"],
                 f", {int(ck['pass.minibatches'])} minibatches into epoch {state['epochs'] + 1}" if mid else "")
        return state["epochs"], mid, ck

    def checkpoint(self, epochs: int, minibatches: int = 0, trainer=None, pass_stats=None) -> None:
        if self.ckpts is None:
            return
        arrays = {**checkpoint_arrays(self.nnet, self.optimizer, trainer, pass_stats, minibatches),
                  "mixes": np.array(self.comm.mixes), **self.mixer.state()}
        if self.best is not None:
            arrays["best"] = to_numpy(self.best)
        self.ckpts.save(epochs, trainer is not None, arrays,
                        {"reports": [dataclasses.asdict(r) for r in self.reports],
                         "newbob": self.newbob.state if self.newbob is not None else None})

    def learning_rate(self, epoch: int) -> float:
        initial = self.opts.learn_rate
        final = self.mpi.final_learn_rate or initial
        if self.newbob is not None:
            lr = self.newbob.learning_rate()
        else:
            lr = exponential_rate(initial, final, epoch, self.mpi.num_epochs) if final != initial else initial
        return self._per_rank(lr)

    def _per_rank(self, rate: float) -> float:
        """A rate as each rank applies it: x ranks under the "rate x jobs" rule."""
        return rate * self.comm.size if self.scale_lr else rate

    def train_epoch(self, epoch: int, feats: str, ali: str, lr: float, ck: dict | None, data: DataStats):
        """This rank's pass with mixing, then the drain; checkpoints and raises :class:`Preempted`
        when the ranks agreed to stop. Returns the pass's statistics."""
        comm, mixer = self.comm, self.mixer
        if self.mpi.limit_follows_rate and self._base_limit is not None:
            self.optimizer.ng.max_change_per_sample = self._base_limit * lr / self._per_rank(self.opts.learn_rate)
            log.info("epoch %d: max-change-per-sample %.4g (follows the rate)", epoch + 1,
                     self.optimizer.ng.max_change_per_sample)
        epoch_opts = dataclasses.replace(self.opts, learn_rate=lr,
                                         randomizer_seed=self.opts.randomizer_seed + 1000 * comm.rank + epoch)
        trainer = Trainer(self.nnet, self.optimizer, epoch_opts, after_minibatch=mixer)  # --lr-schedule within
        skip = restore_position(trainer, ck) if ck is not None else 0  # parameters, optimizer: loaded in start()
        if ck is None:
            mixer.start_epoch(self.nnet.params)   # (a mid-epoch checkpoint holds the ranks' own models)
        try:
            stats = trainer.train_pass(feats, ali, self.transform, data, skip, should_stop=lambda: mixer.stop_agreed)
        except Preempted as p:
            self.checkpoint(epoch, p.minibatches_in_pass, trainer, p.stats)
            raise
        mixer.drain(self.nnet)
        if mixer.stop_agreed:  # the others stopped while this rank was draining: its pass is complete
            self.checkpoint(epoch, trainer.pass_minibatches, trainer, stats)
            raise Preempted(trainer.pass_minibatches, stats)
        return stats

    def finish_epoch(self, epoch: int, lr: float, stats, data: DataStats, t0: float, mix0: float) -> None:
        """Exact average (or BMUF's global model), totals, CV, newbob's decision, the report."""
        comm, nnet = self.comm, self.nnet
        self.mixer.end_epoch(nnet.params)
        tot = comm.allreduce_sum([stats.frames, stats.loss_sum, stats.correct, stats.weight])
        if not np.isfinite(tot[1]):
            raise ObjectiveError(f"the training objective is not finite after epoch {epoch + 1}")
        cv = self.cv() if self.cv_feats else (float("nan"), float("nan"), 0)
        if self.newbob is not None:   # every rank decides alike: same CV figures after the all-reduce
            if self.newbob.after_iteration(epoch + 1, cv[0]):
                self.best[...] = nnet.params
            else:
                nnet.params[...] = self.best
                self.mixer.start(nnet.params, reset_momentum=True)
                log.info("epoch %d rejected by newbob (CV cross-entropy %.6g); continuing from the best model",
                         epoch + 1, cv[0])
        rep = EpochReport(epoch + 1, lr, int(tot[0]), tot[1] / max(tot[3], 1e-20), tot[2] / max(tot[3], 1e-20), cv[0], cv[1],
                          cv[2], time.perf_counter() - t0, comm.seconds - mix0,
                          float(nnet.params.astype(np.float64).sum()))
        self.reports.append(rep)
        limited = {}
        if hasattr(self.optimizer, "updates"):   # NG-SGD: share of this rank's component updates clipped
            now = (self.optimizer.limited, self.optimizer.updates)
            done = now[1] - self._limits_seen[1]
            limited = {"ng_limited_fraction": round((now[0] - self._limits_seen[0]) / done, 4) if done else 0.0}
            self._limits_seen = now
        log.info("epoch %d/%d %s data %s", epoch + 1, self.mpi.num_epochs,
                 kv(learn_rate=lr, train_frames=rep.train_frames, train_cross_entropy=rep.train_cross_entropy,
                    train_frame_accuracy=rep.train_frame_accuracy, cv_cross_entropy=rep.cv_cross_entropy,
                    cv_frame_accuracy=rep.cv_frame_accuracy, cv_frames=rep.cv_frames,
                    seconds=round(rep.seconds, 2), mix_seconds=round(rep.mix_seconds, 3),
                    mix_fraction=round(rep.mix_seconds / max(rep.seconds, 1e-9), 4), mixes=comm.mixes,
                    local_frames=stats.frames, params_sum=f"{rep.params_sum:.10g}", **limited), data.summary())
        self.checkpoint(epoch + 1)

    def cv(self) -> tuple[float, float, int]:
        return _cv(self.comm, self.nnet, self.cv_feats, self.cv_ali, self.transform)


def train_mpi(comm: Communicator, nnet: Network, optimizer, feats: str, ali: str, transform: Network | None,
              opts: TrainOptions, mpi: MPIOptions, cv_feats: str = "", cv_ali: str = "", checkpoint_dir: str = "",
              stop_requested=None) -> list[EpochReport]:
    """Trains for ``mpi.num_epochs`` epochs. With ``checkpoint_dir``, a checkpoint is written after
    every epoch and when the ranks agree to stop (``stop_requested()`` on any rank, e.g. a
    preemption signal: :class:`Preempted` is then raised on every rank after the checkpoint); a
    run finds the last complete checkpoint there and continues exactly from it."""
    run = _MpiRun(comm, nnet, optimizer, transform, opts, mpi, cv_feats, cv_ali, checkpoint_dir, stop_requested)
    start_epoch, mid_epoch, ck = run.start()
    for epoch in range(start_epoch, mpi.num_epochs):
        if run.newbob is not None and run.newbob.state["stop"]:
            break
        t0, mix0 = time.perf_counter(), comm.seconds
        lr = run.learning_rate(epoch)
        data = DataStats()
        stats = run.train_epoch(epoch, feats, ali, lr, ck if (epoch == start_epoch and mid_epoch) else None, data)
        run.finish_epoch(epoch, lr, stats, data, t0, mix0)
    return run.reports


def _word(value) -> str:
    """An option's word, lower case, with the yes/no spellings folded into true/false."""
    v = str(value).strip().lower()
    return {"yes": "true", "1": "true", "no": "false", "0": "false"}.get(v, v)


def scale_lr_by_world_size(mpi: MPIOptions) -> bool:
    """--scale-lr-by-world-size: true | false | auto (all but BMUF)."""
    v = _word(mpi.scale_lr_by_world_size)
    if v in ("true", "false"):
        return v == "true"
    if v == "auto":
        return mpi.mixing != "bmuf"
    raise NnetavgError(f"--scale-lr-by-world-size must be true, false or auto, not {mpi.scale_lr_by_world_size!r}")


def limit_scale(mpi: MPIOptions, ranks: int) -> float:
    """--scale-ng-limit-by-world-size: the factor on NG-SGD's max-change-per-sample (false: 1,
    sqrt: sqrt(ranks), true: ranks)."""
    factors = {"false": 1.0, "sqrt": math.sqrt(ranks), "true": float(ranks)}
    v = _word(mpi.scale_ng_limit_by_world_size)
    if v not in factors:
        raise NnetavgError(f"--scale-ng-limit-by-world-size must be false, sqrt or true, "
                           f"not {mpi.scale_ng_limit_by_world_size!r}")
    return factors[v]


def _cv(comm: Communicator, nnet: Network, cv_feats: str, cv_ali: str, transform) -> tuple[float, float, int]:
    """CV cross-entropy, frame accuracy and frames over the table shared among the ranks."""
    cs = evaluate(nnet, cv_feats, cv_ali, transform, shard=(comm.rank, comm.size))
    ctot = comm.allreduce_sum([cs.frames, cs.loss_sum, cs.correct, cs.weight])
    if ctot[0] <= 0 or ctot[3] <= 0:
        return float("nan"), float("nan"), 0
    return ctot[1] / ctot[3], ctot[2] / ctot[3], int(ctot[0])
