"""Data-parallel training over MPI: every rank trains on its own archive and the ranks' models are
mixed every K minibatches (all-reduce, butterfly or ring, :mod:`nnetavg.parallel.comm`).

Per epoch e of E (papers: Su, Chen & Xu 2015; Su & Chen, 004):

1. learning rate ``lr_e = exponential_rate(initial, final, e, E)``, times the world size unless
   told otherwise (each rank's step is averaged with N-1 others, as in file averaging);
2. one pass of each rank over its archive with its own randomizer seed (``seed + 1000 rank + e``),
   mixing after every K local minibatches; ranks that run out of data early keep joining the
   mixes until all are done (:class:`PeriodicMixer`);
3. an exact all-reduce average, so all ranks hold the same model;
4. the CV objective over the CV table shared among the ranks (utterance i on rank i mod N),
   summed with one all-reduce.

Momentum and natural-gradient state stay local to each rank (as in Kaldi's averaging).
"""

from __future__ import annotations

import dataclasses
import logging
import time

import numpy as np

from nnetavg.data.utterances import DataStats
from nnetavg.errors import NnetavgError, ObjectiveError
from nnetavg.log import kv
from nnetavg.nnet.network import Network
from nnetavg.parallel.comm import Communicator, PeriodicMixer
from nnetavg.train.schedules import NewbobSchedule, exponential_rate
from nnetavg.train.trainer import Trainer, TrainOptions, evaluate

log = logging.getLogger(__name__)


@dataclasses.dataclass
class MPIOptions:
    mixing: str = dataclasses.field(default="allreduce", metadata={"help": "allreduce | butterfly | ring"})
    average_every: int = dataclasses.field(default=10, metadata={"help": "Mix the ranks' models every K minibatches"})
    num_epochs: int = dataclasses.field(default=1, metadata={"help": "Passes over each rank's archive"})
    final_learn_rate: float = dataclasses.field(default=0.0, metadata={"help": "Rate of the last epoch (exponential decay from --learn-rate; 0: constant)"})
    scale_lr_by_world_size: bool = dataclasses.field(default=True, metadata={"help": "Multiply the learning rate by the number of ranks"})
    world_size: int = dataclasses.field(default=0, metadata={"help": "Number of ranks expected (0: any); guards against a broken launcher"})
    cuda_aware_mpi: bool = dataclasses.field(default=False, metadata={"help": "Hand GPU buffers to MPI directly (no host staging)"})
    epoch_schedule: str = dataclasses.field(default="exponential", metadata={"help": "Between epochs: exponential (to --final-learn-rate) | newbob (nnet1's accept/reject and halving; needs --cv-feats; --num-epochs is the maximum)"})


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


def train_mpi(comm: Communicator, nnet: Network, optimizer, feats: str, ali: str, transform: Network | None,
              opts: TrainOptions, mpi: MPIOptions, cv_feats: str = "", cv_ali: str = "") -> list[EpochReport]:
    mixer = PeriodicMixer(comm, mpi.mixing, mpi.average_every)
    comm.bcast_array(nnet.params)  # everyone starts from rank 0's model
    reports = []
    initial = opts.learn_rate
    final = mpi.final_learn_rate or initial
    newbob = None
    if mpi.epoch_schedule == "newbob":
        if not cv_feats:
            raise NnetavgError("--epoch-schedule=newbob needs --cv-feats and --cv-ali")
        newbob = NewbobSchedule(initial, max_iters=mpi.num_epochs)
        newbob.start(_cv(comm, nnet, cv_feats, cv_ali, transform)[0])
        best = nnet.params.copy()
    elif mpi.epoch_schedule != "exponential":
        raise NnetavgError(f"--epoch-schedule must be exponential or newbob, not {mpi.epoch_schedule!r}")
    for epoch in range(mpi.num_epochs):
        if newbob is not None and newbob.state["stop"]:
            break
        t0 = time.perf_counter()
        mix0 = comm.seconds
        if newbob is not None:
            lr = newbob.learning_rate()
        else:
            lr = exponential_rate(initial, final, epoch, mpi.num_epochs) if final != initial else initial
        if mpi.scale_lr_by_world_size:
            lr *= comm.size
        epoch_opts = dataclasses.replace(opts, learn_rate=lr, randomizer_seed=opts.randomizer_seed + 1000 * comm.rank + epoch)
        trainer = Trainer(nnet, optimizer, epoch_opts, after_minibatch=mixer)  # --lr-schedule within the epoch
        data = DataStats()
        stats = trainer.train_pass(feats, ali, transform, data)
        mixer.drain(nnet)
        comm.allreduce_mean(nnet.params)
        tot = comm.allreduce_sum([stats.frames, stats.loss_sum, stats.correct])
        if not np.isfinite(tot[1]):
            raise ObjectiveError(f"the training objective is not finite after epoch {epoch + 1}")
        cv = _cv(comm, nnet, cv_feats, cv_ali, transform) if cv_feats else (float("nan"), float("nan"), 0)
        if newbob is not None:   # every rank decides alike: same CV figures after the all-reduce
            if newbob.after_iteration(epoch + 1, cv[0]):
                best[...] = nnet.params
            else:
                nnet.params[...] = best
                log.info("epoch %d rejected by newbob (CV cross-entropy %.6g); continuing from the best model",
                         epoch + 1, cv[0])
        rep = EpochReport(epoch + 1, lr, int(tot[0]), tot[1] / max(tot[0], 1), tot[2] / max(tot[0], 1), cv[0], cv[1],
                          cv[2], time.perf_counter() - t0, comm.seconds - mix0,
                          float(nnet.params.astype(np.float64).sum()))
        reports.append(rep)
        log.info("epoch %d/%d %s data %s", epoch + 1, mpi.num_epochs,
                 kv(learn_rate=lr, train_frames=rep.train_frames, train_cross_entropy=rep.train_cross_entropy,
                    train_frame_accuracy=rep.train_frame_accuracy, cv_cross_entropy=rep.cv_cross_entropy,
                    cv_frame_accuracy=rep.cv_frame_accuracy, cv_frames=rep.cv_frames,
                    seconds=round(rep.seconds, 2), mix_seconds=round(rep.mix_seconds, 3),
                    mix_fraction=round(rep.mix_seconds / max(rep.seconds, 1e-9), 4), mixes=comm.mixes,
                    local_frames=stats.frames, params_sum=f"{rep.params_sum:.10g}"), data.summary())
    return reports


def _cv(comm: Communicator, nnet: Network, cv_feats: str, cv_ali: str, transform) -> tuple[float, float, int]:
    """CV cross-entropy, frame accuracy and frames over the table shared among the ranks."""
    cs = evaluate(nnet, cv_feats, cv_ali, transform, shard=(comm.rank, comm.size))
    ctot = comm.allreduce_sum([cs.frames, cs.loss_sum, cs.correct])
    if ctot[0] <= 0:
        return float("nan"), float("nan"), 0
    return ctot[1] / ctot[0], ctot[2] / ctot[0], int(ctot[0])
