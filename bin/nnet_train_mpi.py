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
\b
Defaults are the good ones: without --max-change/--max-param-change, plain SGD whose rate is
multiplied by N > 1 ranks is limited as nnet3 limits it (0.75 per component, 2.0 for the model),
otherwise nothing is; NG-SGD's --max-change-per-sample is multiplied by sqrt(N) with that rate.
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
from nnetavg.parallel.mpi_training import MPIOptions, scale_lr_by_world_size, train_mpi
from nnetavg.train.checkpoint import PREEMPTED_EXIT, Preempted, PreemptionFlag
from nnetavg.train.optim import NGSGDOptions, SGDOptions, make_optimizer
from nnetavg.train.schedules import default_change_limits
from nnetavg.train.trainer import TrainOptions

log = logging.getLogger("nnetavg.bin")


@kaldi_command(help=__doc__, tune_malloc=True)
@trainer_arguments
@dataclass_options(MPIOptions)
@optimizer_options("sgd", state_files=False)
@cv_options
@click.option("--scale-limit-by-world-size", "old_scale_limit", default=None, hidden=True,
              help="Old spelling of --scale-ng-limit-by-world-size")
def main(use_gpu, binary, feature_transform, model_in, feats_rspecifier, ali_rspecifier, model_out, verbose,
         optimizer, cv_feats, cv_ali, checkpoint, preempt_signals, old_scale_limit, **kw):
    opts, sgd_opts, ng_opts, mpi = (pick(TrainOptions, kw), pick(SGDOptions, kw), pick(NGSGDOptions, kw),
                                    pick(MPIOptions, kw))
    if old_scale_limit is not None:
        log.warning("--scale-limit-by-world-size is now --scale-ng-limit-by-world-size")
        mpi.scale_ng_limit_by_world_size = old_scale_limit
    ctx = click.get_current_context()
    unset = {name for name in ("max_change", "max_param_change")
             if ctx.get_parameter_source(name) == click.core.ParameterSource.DEFAULT}
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
        if unset:   # the default limits for this optimizer, rate and world size (one rule: default_change_limits)
            change, param_change = default_change_limits(optimizer, comm.size, scale_lr_by_world_size(mpi))
            opts.max_change = change if "max_change" in unset else opts.max_change
            opts.max_param_change = param_change if "max_param_change" in unset else opts.max_param_change
            log.info("max-change %g, max-param-change %g (%s)", opts.max_change, opts.max_param_change,
                     "defaults: plain SGD with the rate x ranks" if change else "defaults")
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
