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
third of that sample, at most 2 x --learn-rate); keeps the averaged-SGD average
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
from nnetavg.train.checkpoint import PREEMPTED_EXIT, Preempted, PreemptionFlag
from nnetavg.train.checkpoint import remove as remove_checkpoint
from nnetavg.train.iterate_averaging import IterateAverager
from nnetavg.train.optim import SGDOptions
from nnetavg.train.schedules import make_schedule
from nnetavg.train.trainer import TrainOptions, evaluate

log = logging.getLogger("nnetavg.bin")


def _chunk_search(schedule, feats, ali, transform, nnet, opts, n_frames):
    """Before each chunk: search the rate on the next n_frames of the search sample (rolling)."""
    import numpy as np
    from nnetavg.data.utterances import DataStats, labelled_utterances
    from nnetavg.train.lr_search import SHRINK, search_learning_rate
    xs, ts = [], []
    for _, x, t in labelled_utterances(feats, ali, nnet.output_dim, nnet.input_dim, transform, DataStats()):
        xs.append(x)
        ts.append(t)
    if not xs:
        raise NnetavgError(f"no frames in {feats} for the learning-rate search")
    x_all, t_all = np.concatenate(xs), np.concatenate(ts)
    perm = np.random.default_rng(opts.randomizer_seed).permutation(len(t_all))
    x_all, t_all = x_all[perm], t_all[perm]
    n = min(max(n_frames, 3 * opts.minibatch_size), len(t_all))

    def on_chunk(index, net):
        start = (index * n) % max(1, len(t_all) - n + 1)
        first = schedule.rate if index == 0 else schedule.rate / SHRINK ** 2
        r = search_learning_rate(net, x_all[start:start + n], t_all[start:start + n], first, opts.minibatch_size,
                                 seed=index, max_lr=2 * opts.learn_rate)
        schedule.rate = r.learn_rate
        log.info("chunk %d: learn-rate=%.6g (baseline %.4g, after %.4g, %d tries, %d frames)", index + 1,
                 r.learn_rate, r.baseline, r.criterion, r.tries, n)
    return on_chunk


@kaldi_command(help=__doc__)
@trainer_arguments
@click.option("--averaged-sgd", type=KALDI_BOOL, default=True, show_default=True, help="Keep and write the iterate average")
@click.option("--asgd-eta", type=float, default=0.01, show_default=True, help="Running-average weight before the Polyak switch")
@click.option("--cv-feats", type=str, default="", help="CV features: the server compares average and last iterate")
@click.option("--cv-ali", type=str, default="", help="CV pdf alignments")
@click.option("--chunk-size", type=str, default="1h", show_default=True,
              help="Data chunk (frames, or hours with an h suffix at 100 frames/s); the rate is set per chunk")
@click.option("--search-feats", type=str, default="", help="With --lr-schedule=search: training features to sample from")
@click.option("--search-ali", type=str, default="", help="With --lr-schedule=search: their pdf alignments")
@click.option("--search-fraction", type=float, default=0.03, show_default=True, help="Share of a chunk used by the search")
@click.option("--checkpoint-every", type=int, default=1000, show_default=True,
              help="With --checkpoint: the server saves its state every N updates (and on a preemption signal)")
@click.option("--cv-check-every", type=int, default=0, show_default=True,
              help="With --cv-feats: compare average and current model every N updates; switch to the Polyak average "
                   "when the average wins (0: only at the end)")
def main(use_gpu, binary, feature_transform, model_in, feats_rspecifier, ali_rspecifier, model_out, verbose,
         averaged_sgd, asgd_eta, cv_feats, cv_ali, chunk_size, search_feats, search_ali, search_fraction,
         checkpoint_every, cv_check_every, **kw):
    opts, _ = pick(TrainOptions, kw), pick(SGDOptions, kw)
    checkpoint, preempt_signals = kw.pop("checkpoint"), kw.pop("preempt_signals")
    server_schedule = opts.lr_schedule
    if server_schedule in ("adagrad", "search"):
        opts.lr_schedule = "constant"  # workers only compute gradients; the server applies the schedule
    try:
        chunk_frames = int(float(chunk_size[:-1]) * 360000) if chunk_size.endswith("h") else int(chunk_size)
    except ValueError:
        raise click.UsageError(f"--chunk-size={chunk_size}: frames, or hours like 1h") from None
    if server_schedule == "search" and not (search_feats and search_ali):
        raise click.UsageError("--lr-schedule=search needs --search-feats and --search-ali")
    from nnetavg.parallel.comm import Communicator
    from nnetavg.parallel.server import ServerCheckpoint, report_line, run_server, run_worker, start_positions
    comm = Communicator()
    nlog.setup(click.get_current_context().info_name, verbose, comm.rank, comm.size)
    try:
        ckpt = None
        if checkpoint:  # every rank handles the signals; the server acts on them
            ckpt = ServerCheckpoint(checkpoint, checkpoint_every, PreemptionFlag(preempt_signals))
        applied = start_positions(comm, ckpt)
        nnet = read_nnet(model_in)
        transform = read_nnet(feature_transform) if feature_transform else None
        if comm.rank == 0:
            name = "constant" if server_schedule in ("adagrad", "search") else server_schedule
            schedule = make_schedule(name, opts.learn_rate, opts.lr_decay, opts.xu_a, opts.xu_c)
            averager = IterateAverager(nnet, asgd_eta) if averaged_sgd else None
            check = (lambda net: evaluate(net, cv_feats, cv_ali, transform).cross_entropy) if cv_feats else None
            on_chunk = None
            if server_schedule == "search":
                on_chunk = _chunk_search(schedule, search_feats, search_ali, transform, nnet, opts,
                                         max(4 * opts.minibatch_size, int(search_fraction * chunk_frames)))
            rep = run_server(comm, nnet, schedule, averager, check, cv_check_every,
                             adagrad=server_schedule == "adagrad", chunk_frames=chunk_frames, on_chunk=on_chunk,
                             ckpt=ckpt)
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
            if ckpt is not None:
                remove_checkpoint(ckpt.path)
        else:
            job = comm.rank
            n = run_worker(comm, nnet, job_substitute(feats_rspecifier, job), job_substitute(ali_rspecifier, job),
                           transform, opts, int(applied[job]))
            log.info("worker %d sent %d gradients", job, n)
        comm.barrier()
    except Preempted:
        if comm.rank == 0:
            log.warning("preempted: server state in %s; exiting with %d so the launcher requeues", checkpoint,
                        PREEMPTED_EXIT)
        sys.stderr.flush()
        sys.exit(PREEMPTED_EXIT)
    except BaseException as exc:
        if isinstance(exc, SystemExit) and exc.code in (0, None, PREEMPTED_EXIT):
            raise
        log.error("rank %d failed: %s", comm.rank, exc if isinstance(exc, NnetavgError) else f"{exc.__class__.__name__}: {exc}")
        sys.stderr.flush()
        if comm.size > 1:
            comm.abort(1)
        sys.exit(1)
