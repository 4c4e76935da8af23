"""Asynchronous (averaged) SGD with a parameter server: rank 0 serves the model, ranks 1..N-1
train on their archives and push gradients, applied as they arrive (run under mpiexec -n N+1).

\b
Usage:  mpiexec -n N+1 nnet-train-asgd [options] MODEL_IN FEATS_RSPECIFIER ALI_RSPECIFIER MODEL_OUT
e.g.:   mpiexec -n 5 nnet-train-asgd --learn-rate=0.008 --lr-schedule=minibatch-decay --lr-decay=0.9999 \\
          --averaged-sgd=true --feature-transform=egs/final.feature_transform \\
          exp/asgd/0.nnet scp:egs/feats.JOB.scp ark:egs/ali.JOB.ark exp/asgd/final.nnet
\b
JOB is the worker's index (1..N). One pass over the data. The server applies each gradient with
the learning rate its --lr-schedule gives for that update: constant, minibatch-decay (ASGD-hand),
xu, adagrad (ASGD-adapt: each element scaled by 1/sqrt(1 + g^2), eq. (2) of 003 with K = 1,
tau = t), or search (ASGD-search: before every --chunk-size of data, the rate is searched on
--search-fraction of a chunk sampled from --search-feats/--search-ali, judged on a held-out
third of that sample, starting from the previous rate / 0.618, at most 2 x --learn-rate), with
--momentum, --l2-penalty and --max-change applied as in every trainer; keeps the averaged-SGD
average (--averaged-sgd, --asgd-eta: a running average, switched to the plain Polyak average once
it beats the current model on CV, checked every --cv-check-every updates), writes the average
(with --cv-feats only if it beats the last iterate on CV), logs the staleness distribution, and
checks that every gradient sent was applied exactly once. --use-gpu puts every rank's model on
its GPU (messages are staged through the host).
"""

import logging
import sys

import click

from nnetavg import log as nlog
from nnetavg.backend import device_xp
from nnetavg.bin._common import dataclass_options, kaldi_command, pick
from nnetavg.bin._train import cv_options, trainer_arguments
from nnetavg.io.nnet1 import read_nnet, write_nnet
from nnetavg.io.tables import job_substitute
from nnetavg.parallel.asgd_training import AsgdOptions, train_asgd
from nnetavg.train.checkpoint import PREEMPTED_EXIT, Preempted, PreemptionFlag
from nnetavg.train.checkpoint import remove as remove_checkpoint
from nnetavg.train.optim import SGDOptions
from nnetavg.train.trainer import TrainOptions

log = logging.getLogger("nnetavg.bin")


@kaldi_command(help=__doc__, tune_malloc=True)
@trainer_arguments
@cv_options
@dataclass_options(AsgdOptions)
def main(use_gpu, binary, feature_transform, model_in, feats_rspecifier, ali_rspecifier, model_out, verbose,
         cv_feats, cv_ali, checkpoint, preempt_signals, **kw):
    opts, sgd, asgd = pick(TrainOptions, kw), pick(SGDOptions, kw), pick(AsgdOptions, kw)
    from nnetavg.parallel.comm import Communicator
    from nnetavg.parallel.server import ServerCheckpoint
    comm = Communicator()
    nlog.setup(click.get_current_context().info_name, verbose, comm.rank, comm.size)
    with comm.abort_on_failure(PREEMPTED_EXIT):
        ckpt = None
        if checkpoint:  # every rank handles the signals; the server acts on them
            ckpt = ServerCheckpoint(checkpoint, asgd.checkpoint_every, PreemptionFlag(preempt_signals))
        nnet = read_nnet(model_in, xp=device_xp())
        transform = read_nnet(feature_transform) if feature_transform else None
        job = max(comm.rank, 1)
        try:
            out = train_asgd(comm, nnet, job_substitute(feats_rspecifier, job), job_substitute(ali_rspecifier, job),
                             transform, opts, sgd, asgd, cv_feats, cv_ali, ckpt)
        except Preempted:
            if comm.rank == 0:
                log.warning("preempted: server state in %s; exiting with %d so the launcher requeues", checkpoint,
                            PREEMPTED_EXIT)
            sys.stderr.flush()
            sys.exit(PREEMPTED_EXIT)
        if out is not None:
            write_nnet(out, model_out, binary=binary)
            if ckpt is not None:
                remove_checkpoint(ckpt.path)
        comm.barrier()
