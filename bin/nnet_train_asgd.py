"""Asynchronous (averaged) SGD with a parameter server: rank 0 serves the model, ranks 1..N-1
train on their archives and push gradients, applied as they arrive (run under mpiexec -n N+1).

\b
Usage:  mpiexec -n N+1 nnet-train-asgd [options] MODEL_IN FEATS_RSPECIFIER ALI_RSPECIFIER MODEL_OUT
e.g.:   mpiexec -n 5 nnet-train-asgd --learn-rate=0.008 --lr-schedule=minibatch-decay --lr-decay=0.9999 \\
          --averaged-sgd=true --feature-transform=egs/final.feature_transform \\
          exp/asgd/0.nnet scp:egs/feats.JOB.scp ark:egs/ali.JOB.ark exp/asgd/final.nnet
\b
JOB is the worker's index (1..N). One pass over the data. The server applies each gradient with
the learning rate its --lr-schedule gives for that update, keeps the averaged-SGD average
(--averaged-sgd, --asgd-eta: a running average, switched to the plain Polyak average once it
beats the current model on CV, checked every --cv-check-every updates), writes the average (with
--cv-feats only if it beats the last iterate on CV), logs the staleness distribution, and checks
that every gradient sent was applied exactly once.
"""

import logging
import sys

import click

from nnetavg import log as nlog
from nnetavg.bin._common import KALDI_BOOL, kaldi_command, pick
from nnetavg.bin._train import trainer_arguments
from nnetavg.errors import NnetavgError
from nnetavg.io.nnet1 import read_nnet, write_nnet
from nnetavg.io.tables import job_substitute
from nnetavg.train.iterate_averaging import IterateAverager
from nnetavg.train.optim import SGDOptions
from nnetavg.train.schedules import make_schedule
from nnetavg.train.trainer import TrainOptions, evaluate

log = logging.getLogger("nnetavg.bin")


@kaldi_command(help=__doc__)
@trainer_arguments
@click.option("--averaged-sgd", type=KALDI_BOOL, default=True, show_default=True, help="Keep and write the iterate average")
@click.option("--asgd-eta", type=float, default=0.01, show_default=True, help="Running-average weight before the Polyak switch")
@click.option("--cv-feats", type=str, default="", help="CV features: the server compares average and last iterate")
@click.option("--cv-ali", type=str, default="", help="CV pdf alignments")
@click.option("--cv-check-every", type=int, default=0, show_default=True,
              help="With --cv-feats: compare average and current model every N updates; switch to the Polyak average "
                   "when the average wins (0: only at the end)")
def main(use_gpu, binary, feature_transform, model_in, feats_rspecifier, ali_rspecifier, model_out, verbose,
         averaged_sgd, asgd_eta, cv_feats, cv_ali, cv_check_every, **kw):
    opts, _ = pick(TrainOptions, kw), pick(SGDOptions, kw)
    from nnetavg.parallel.comm import Communicator
    from nnetavg.parallel.server import report_line, run_server, run_worker
    comm = Communicator()
    nlog.setup(click.get_current_context().info_name, verbose, comm.rank, comm.size)
    try:
        nnet = read_nnet(model_in)
        transform = read_nnet(feature_transform) if feature_transform else None
        if comm.rank == 0:
            schedule = make_schedule(opts.lr_schedule, opts.learn_rate, opts.lr_decay, opts.xu_a, opts.xu_c)
            averager = IterateAverager(nnet, asgd_eta) if averaged_sgd else None
            check = (lambda net: evaluate(net, cv_feats, cv_ali, transform).cross_entropy) if cv_feats else None
            rep = run_server(comm, nnet, schedule, averager, check, cv_check_every)
            log.info("server %s", report_line(rep))
            if averager is not None:
                use_average = True
                if cv_feats:
                    last = evaluate(nnet, cv_feats, cv_ali, transform).cross_entropy
                    averager.swap()
                    avg = evaluate(nnet, cv_feats, cv_ali, transform).cross_entropy
                    use_average = avg < last
                    log.info("CV cross-entropy: last iterate %.6g, average %.6g: writing the %s", last, avg,
                             "average" if use_average else "last iterate")
                    if not use_average:
                        averager.swap()
                else:
                    averager.swap()
            write_nnet(nnet, model_out, binary=binary)
        else:
            job = comm.rank
            n = run_worker(comm, nnet, job_substitute(feats_rspecifier, job), job_substitute(ali_rspecifier, job),
                           transform, opts)
            log.info("worker %d sent %d gradients", job, n)
        comm.barrier()
    except BaseException as exc:
        if isinstance(exc, SystemExit) and not exc.code:
            raise
        log.error("rank %d failed: %s", comm.rank, exc if isinstance(exc, NnetavgError) else f"{exc.__class__.__name__}: {exc}")
        sys.stderr.flush()
        if comm.size > 1:
            comm.abort(1)
        sys.exit(1)
