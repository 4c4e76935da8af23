"""Kaldi's nnet-train-frmshuff: one epoch of frame-shuffled minibatch SGD, or (--cross-validate)
the objective on held-out data, with Kaldi's arguments, options and log lines, so Kaldi's
steps/nnet/train_scheduler.sh drives it unchanged.

\b
Usage:  nnet-train-frmshuff [options] FEATS_RSPECIFIER TARGETS_RSPECIFIER MODEL_IN [MODEL_OUT]
e.g.:   nnet-train-frmshuff --learn-rate=0.008 --feature-transform=final.feature_transform \\
          scp:train.scp "ark:ali-to-post ark:pdf.ark ark:- |" nnet.init nnet.iter1
        nnet-train-frmshuff --cross-validate=true scp:cv.scp ark:post_cv.ark nnet.iter1
\b
TARGETS_RSPECIFIER holds Posteriors (ali-to-post output; soft targets too) or pdf alignments.
The log ends as Kaldi's does, with the same prefix, so `grep AvgLoss: | awk '{print $4}'` gives the
objective (cross-entropy minus the targets' entropy, per frame weight) and the next lines carry
`FRAME_ACCURACY >> X% <<`. MODEL_OUT is written atomically and only when the pass succeeded.
--optimizer=ngsgd trains with natural-gradient SGD instead (our addition). nnet-train-simple is
this trainer with our argument order (MODEL_IN first) and log lines.
"""

import logging
import time

import click

from nnetavg.backend import device_xp
from nnetavg.bin._common import (KALDI_BOOL, binary_option, dataclass_options, fail, feature_transform_option,
                                 kaldi_command, pick, use_gpu_option)
from nnetavg.bin._train import optimizer_options, run_training
from nnetavg.data.utterances import DataStats, TargetWeights
from nnetavg.io.nnet1 import read_nnet
from nnetavg.nnet.components import Dropout
from nnetavg.train.optim import NGSGDOptions, SGDOptions, make_optimizer
from nnetavg.train.trainer import PassStats, TrainOptions, evaluate

log = logging.getLogger("nnetavg.bin")


@kaldi_command(help=__doc__, kaldi_prefix=True, tune_malloc=True)
@use_gpu_option(default="yes")
@binary_option
@dataclass_options(TrainOptions)
@dataclass_options(SGDOptions)
@optimizer_options("sgd", state_files=False)
@feature_transform_option("Feature transform in nnet1 format, applied to each utterance first")
@click.option("--cross-validate", type=KALDI_BOOL, default=False, show_default=True,
              help="Only evaluate the objective (no back-propagation, no MODEL_OUT)")
@click.option("--l1-penalty", type=float, default=0.0, show_default=True, help="L1 penalty (only 0 is supported)")
@click.option("--objective-function", type=str, default="xent", show_default=True,
              help="xent (cross-entropy; mse and multitask are not supported)")
@click.option("--dropout-retention", type=float, default=0.0, show_default=True,
              help="Retention of <Dropout> components in training (0: as in the model)")
@click.argument("args", nargs=-1, metavar="FEATS TARGETS MODEL_IN [MODEL_OUT]")
def main(use_gpu, binary, cross_validate, l1_penalty, objective_function, dropout_retention, feature_transform,
         optimizer, args, verbose, **kw):
    if len(args) != 3 + (0 if cross_validate else 1):
        fail(f"expected {'3 arguments with --cross-validate' if cross_validate else '4 arguments'} "
             f"(FEATS TARGETS MODEL_IN{'' if cross_validate else ' MODEL_OUT'}), got {len(args)}; see --help")
    if objective_function != "xent":
        fail(f"--objective-function={objective_function} is not supported (only xent)")
    if l1_penalty != 0:
        fail("--l1-penalty is not supported (only 0)")
    feats, targets, model_in = args[:3]
    opts, sgd_opts, ng_opts = pick(TrainOptions, kw), pick(SGDOptions, kw), pick(NGSGDOptions, kw)
    start = time.perf_counter()
    log.info("%s STARTED", "CROSS-VALIDATION" if cross_validate else "TRAINING")
    if cross_validate:
        nnet = read_nnet(model_in, xp=device_xp())
        transform = read_nnet(feature_transform) if feature_transform else None
        data = DataStats()
        stats = evaluate(nnet, feats, targets, transform, data, length_tolerance=opts.length_tolerance,
                         weights=TargetWeights(opts.frame_weights, opts.utt_weights))
        log.info("data %s", data.summary())
        if stats.frames == 0:
            fail(f"no usable frames in {feats}")
    else:
        def make(nnet):
            set_dropout_retention(nnet, dropout_retention)
            return make_optimizer(optimizer, nnet, sgd_opts, ng_opts)
        stats, data = run_training(model_in, feats, targets, args[3], feature_transform, binary, opts, make)
    kaldi_report(stats, data, cross_validate, opts.randomize, time.perf_counter() - start)


def set_dropout_retention(nnet, retention: float) -> None:
    """nnet1's --dropout-retention: 0 keeps each <Dropout>'s own rate, else rate = 1 - retention."""
    if retention < 0 or retention > 1:
        fail(f"--dropout-retention must be in [0, 1], not {retention}")
    if retention > 0:
        for comp in nnet.components:
            if isinstance(comp, Dropout):
                comp.rate = 1.0 - retention


def kaldi_report(stats: PassStats, data: DataStats, cross_validate: bool, randomize: bool, seconds: float) -> None:
    """The closing lines of Kaldi's nnet-train-frmshuff (``Done ...``, ``AvgLoss:``, ``FRAME_ACCURACY``)."""
    other = data.length_mismatch + data.non_finite + data.no_weights + data.no_features
    log.info("Done %d files, %d with no tgt_mats, %d with other errors. [%s, %s, %.4g min, processing %.1f frames "
             "per sec.]", data.utterances, data.no_targets, other, "CROSS-VALIDATION" if cross_validate else "TRAINING",
             "RANDOMIZED" if randomize and not cross_validate else "NOT-RANDOMIZED", seconds / 60,
             stats.frames / max(seconds, 1e-9))
    log.info("AvgLoss: %.6g (Xent), [AvgXent: %.6g, AvgTargetEnt: %.6g]\nprogress: [ %.6g ]\nFRAME_ACCURACY >> %.6g%% <<",
             stats.avg_loss, stats.cross_entropy, stats.entropy_sum / max(stats.weight, 1e-20), stats.avg_loss,
             100.0 * stats.frame_accuracy)
