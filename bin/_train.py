"""What the trainer commands share: their arguments and options, and the run itself."""

from __future__ import annotations

import logging
import os
import sys

import click

from nnetavg.backend import device_xp
from nnetavg.bin._common import binary_option, dataclass_options, fail, feature_transform_option, pick, use_gpu_option
from nnetavg.data.utterances import DataStats
from nnetavg.io.nnet1 import read_nnet, write_nnet
from nnetavg.io.tables import count_rows
from nnetavg.log import kv
from nnetavg.train.checkpoint import (PREEMPTED_EXIT, Preempted, PreemptionFlag, load_checkpoint, restore,
                                      save_checkpoint, write_npz)
from nnetavg.train.checkpoint import remove as remove_checkpoint
from nnetavg.train.optim import OPTIMIZERS, NGSGDOptions, SGDOptions, make_optimizer
from nnetavg.train.trainer import PassStats, Trainer, TrainOptions

log = logging.getLogger("nnetavg.bin")


def trainer_arguments(f):
    """Options and positional arguments of every trainer command (declared once)."""
    for deco in reversed([
        use_gpu_option, binary_option, dataclass_options(TrainOptions), dataclass_options(SGDOptions),
        feature_transform_option(),
        click.option("--checkpoint", type=str, default="",
                     help="Exact-resume file (.npz; nnet-train-mpi: a directory, also written after every epoch): "
                          "written when a preemption signal arrives, resumed from when it exists"),
        click.option("--preempt-signals", type=str, default="SIGTERM,SIGUSR1", show_default=True,
                     help="With --checkpoint: signals that checkpoint and exit 75 (requeue) after the current minibatch"),
        click.argument("model_in"), click.argument("feats_rspecifier"), click.argument("ali_rspecifier"),
        click.argument("model_out"),
    ]):
        f = deco(f)
    return f


def optimizer_options(default: str, state_files: bool = True):
    """``--optimizer`` (sgd | ngsgd) and the natural-gradient options: how every trainer command
    (nnet-train-simple, -ngsgd, -mpi) chooses its optimizer; ``state_files``: also
    ``--ng-state-in/--ng-state-out`` (the Fisher state carried between file-averaging iterations)."""
    def deco(f):
        if state_files:
            f = click.option("--ng-state-out", type=str, default="",
                             help="--optimizer=ngsgd: save the Fisher state here after the pass (.npz)")(f)
            f = click.option("--ng-state-in", type=str, default="",
                             help="--optimizer=ngsgd: Fisher state saved by a previous pass (.npz)")(f)
        f = dataclass_options(NGSGDOptions)(f)
        return click.option("--optimizer", type=click.Choice(list(OPTIMIZERS)), default=default, show_default=True,
                            help="sgd: nnet1's update; ngsgd: natural-gradient SGD (the options below)")(f)
    return deco


def cv_options(f):
    """--cv-feats / --cv-ali of the trainers that evaluate held-out data themselves."""
    f = click.option("--cv-ali", type=str, default="", help="CV pdf alignments rspecifier")(f)
    return click.option("--cv-feats", type=str, default="",
                        help="CV features rspecifier (nnet-train-mpi: evaluated after every epoch; "
                             "nnet-train-asgd: average against last iterate)")(f)


def train_one_pass(use_gpu, binary, feature_transform, model_in, feats_rspecifier, ali_rspecifier, model_out,
                   verbose, optimizer, ng_state_in, ng_state_out, checkpoint, preempt_signals,
                   **kw) -> tuple[PassStats, DataStats]:
    """nnet-train-simple / nnet-train-ngsgd: one pass with the optimizer ``--optimizer`` names."""
    opts, sgd_opts, ng_opts = pick(TrainOptions, kw), pick(SGDOptions, kw), pick(NGSGDOptions, kw)
    if optimizer != "ngsgd" and (ng_state_in or ng_state_out):
        fail("--ng-state-in/--ng-state-out go with --optimizer=ngsgd")

    def make(nnet):
        opt = make_optimizer(optimizer, nnet, sgd_opts, ng_opts)
        if ng_state_in:
            opt.load_state(load_checkpoint(ng_state_in, "natural-gradient state"))
        return opt

    def save(opt):
        if ng_state_out:
            write_npz(ng_state_out, opt.fisher_state())

    return run_training(model_in, feats_rspecifier, ali_rspecifier, model_out, feature_transform, binary, opts, make,
                        save, checkpoint=checkpoint, preempt_signals=preempt_signals)


def run_training(model_in: str, feats_rspecifier: str, ali_rspecifier: str, model_out: str, feature_transform: str,
                 binary: bool, opts: TrainOptions, make_optimizer, after_pass=None, checkpoint: str = "",
                 preempt_signals: str = "") -> tuple["PassStats", DataStats]:
    """Reads the model, makes the optimizer (``make_optimizer(nnet)``), runs one pass, writes the
    model (only when frames were trained and nothing diverged), then ``after_pass(optimizer)``.
    With ``checkpoint``: resumes from it when it exists; on a preemption signal writes it and
    exits with 75 (see :mod:`nnetavg.train.checkpoint`)."""
    nnet = read_nnet(model_in, xp=device_xp())
    transform = read_nnet(feature_transform) if feature_transform else None
    optimizer = make_optimizer(nnet)
    trainer = Trainer(nnet, optimizer, opts)
    if sys.stderr.isatty():  # the bar can show the time left: frames from the scp's matrix headers
        trainer.expected_frames = count_rows(feats_rspecifier)
    data = DataStats()
    skip, should_stop = 0, None
    if checkpoint:
        should_stop = PreemptionFlag(preempt_signals)
        if os.path.exists(checkpoint):
            skip = restore(trainer, load_checkpoint(checkpoint), checkpoint)
            log.info("resuming from %s: %d minibatches of this pass already done", checkpoint, skip)
    try:
        stats = trainer.train_pass(feats_rspecifier, ali_rspecifier, transform, data, skip, should_stop)
    except Preempted as p:
        save_checkpoint(checkpoint, trainer, p.stats, p.minibatches_in_pass)
        log.warning("preempted (%s) after minibatch %d of the pass: wrote %s; exiting with %d so the launcher "
                    "requeues the job", should_stop.signal_name, p.minibatches_in_pass, checkpoint, PREEMPTED_EXIT)
        sys.exit(PREEMPTED_EXIT)
    log.info("data %s", data.summary())
    if stats.frames == 0:
        fail(f"no frames were trained on ({data.utterances} usable utterances, fewer frames than "
             f"--minibatch-size={opts.minibatch_size}?); {model_out} not written")
    write_nnet(nnet, model_out, binary=binary)
    if after_pass is not None:
        after_pass(optimizer)
    if checkpoint:
        remove_checkpoint(checkpoint)
    log.info("done %s %s %s", kv(minibatches=stats.minibatches, learn_rate=opts.learn_rate), stats.figures(),
             kv(seconds=round(stats.seconds, 3), step_seconds=round(stats.step_seconds, 3)))
    return stats, data
