"""Train with N ranks under MPI, mixing the ranks' models every K minibatches (all-reduce,
butterfly or ring), for one or more epochs; run it under mpiexec or srun.

\b
Usage:  mpiexec -n N nnet-train-mpi [options] MODEL_IN FEATS_RSPECIFIER ALI_RSPECIFIER MODEL_OUT
e.g.:   mpiexec -n 4 nnet-train-mpi --world-size=4 --mixing=allreduce --average-every=10 \\
          --num-epochs=8 --learn-rate=0.008 --final-learn-rate=0.0008 \\
          --feature-transform=egs/final.feature_transform --cv-feats=scp:egs/cv/feats.scp \\
          --cv-ali=ark:egs/cv/ali.ark exp/mpi/0.nnet scp:egs/feats.JOB.scp ark:egs/ali.JOB.ark exp/mpi/final.nnet
\b
In the rspecifiers the token JOB becomes rank + 1, so each rank reads its own archive. After every
epoch the ranks' models are averaged exactly and evaluated on the CV set (shared among the ranks);
rank 0 writes MODEL_OUT atomically at the end. An error or a NaN on any rank ends every rank
(MPI_Abort) with the rank and the reason in the log and a non-zero exit; MODEL_OUT is then not
written. --world-size=N makes a launcher that did not start N connected ranks an error.
"""

import logging
import sys

import click

from nnetavg import log as nlog
from nnetavg.backend import device_xp
from nnetavg.bin._common import dataclass_options, kaldi_command, pick
from nnetavg.bin._train import cv_options, optimizer_options, trainer_arguments
from nnetavg.errors import NnetavgError
from nnetavg.io.nnet1 import read_nnet, write_nnet
from nnetavg.io.tables import job_substitute
from nnetavg.parallel.mpi_training import MPIOptions, train_mpi
from nnetavg.train.checkpoint import PREEMPTED_EXIT, Preempted, PreemptionFlag
from nnetavg.train.optim import NGSGDOptions, SGDOptions, make_optimizer
from nnetavg.train.trainer import TrainOptions

log = logging.getLogger("nnetavg.bin")


@kaldi_command(help=__doc__)
@trainer_arguments
@dataclass_options(MPIOptions)
@optimizer_options("sgd", state_files=False)
@cv_options
def main(use_gpu, binary, feature_transform, model_in, feats_rspecifier, ali_rspecifier, model_out, verbose,
         optimizer, cv_feats, cv_ali, checkpoint, preempt_signals, **kw):
    opts, sgd_opts, ng_opts, mpi = (pick(TrainOptions, kw), pick(SGDOptions, kw), pick(NGSGDOptions, kw),
                                    pick(MPIOptions, kw))
    if bool(cv_feats) != bool(cv_ali):
        raise click.UsageError("--cv-feats and --cv-ali go together")
    from nnetavg.parallel.comm import Communicator
    comm = Communicator(cuda_aware=mpi.cuda_aware_mpi)
    nlog.setup(click.get_current_context().info_name, verbose, comm.rank, comm.size)
    with comm.abort_on_failure(PREEMPTED_EXIT):
        if mpi.world_size and comm.size != mpi.world_size:
            raise NnetavgError(f"MPI started {comm.size} connected rank(s) but --world-size={mpi.world_size}: the "
                               f"launcher does not match the MPI library (e.g. Open MPI under srun --mpi=pmi2 starts "
                               f"separate rank-0 processes); use mpiexec, or srun --mpi=pmi2 with MPICH")
        comm.check_mixing(mpi.mixing)
        job = comm.rank + 1
        feats, ali = job_substitute(feats_rspecifier, job), job_substitute(ali_rspecifier, job)
        nnet = read_nnet(model_in, xp=device_xp())
        transform = read_nnet(feature_transform) if feature_transform else None
        opt = make_optimizer(optimizer, nnet, sgd_opts, ng_opts)
        log.info("rank %d of %d reads %s and %s; mixing=%s every %d minibatches", comm.rank, comm.size, feats, ali,
                 mpi.mixing, mpi.average_every)
        stop = PreemptionFlag(preempt_signals) if checkpoint else None
        try:
            reports = train_mpi(comm, nnet, opt, feats, ali, transform, opts, mpi, cv_feats, cv_ali, checkpoint, stop)
        except Preempted:
            log.warning("preempted (%s on some rank): checkpoint in %s; exiting with %d so the launcher requeues",
                        stop.signal_name or "signal", checkpoint, PREEMPTED_EXIT)
            sys.stderr.flush()
            sys.exit(PREEMPTED_EXIT)
        if comm.rank == 0:
            write_nnet(nnet, model_out, binary=binary)
            last = reports[-1]
            log.info("wrote %s: epochs=%d cv-frame-accuracy=%.6g cv-cross-entropy=%.6g", model_out, len(reports),
                     last.cv_frame_accuracy, last.cv_cross_entropy)
        comm.barrier()
