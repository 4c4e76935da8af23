"""Train a network for one pass over the data with frame-shuffled minibatch SGD (nnet1's
nnet-train-frmshuff with Kaldi's argument order).

\b
Usage:  nnet-train-simple [options] MODEL_IN FEATS_RSPECIFIER ALI_RSPECIFIER MODEL_OUT
e.g.:   nnet-train-simple --learn-rate=0.008 --feature-transform=exp/dnn/final.feature_transform \\
          exp/dnn/0.nnet scp:egs/feats.1.scp ark:egs/ali.1.ark exp/dnn/1.1.nnet
\b
ALI_RSPECIFIER holds pdf ids per frame, as ali-to-pdf writes them. The objective is
cross-entropy; gradients are summed over the minibatch (per-frame learning rate). MODEL_OUT is
written atomically and only when the pass succeeded; a NaN objective stops with an error and
writes nothing.
"""

import logging

import click

from nnetavg.backend import device_xp
from nnetavg.bin._common import binary_option, dataclass_options, fail, kaldi_command, pick, use_gpu_option
from nnetavg.data.utterances import DataStats
from nnetavg.io.nnet1 import read_nnet, write_nnet
from nnetavg.log import kv
from nnetavg.train.optim import SGD, SGDOptions
from nnetavg.train.trainer import Trainer, TrainOptions

log = logging.getLogger("nnetavg.bin")


@kaldi_command(help=__doc__)
@use_gpu_option
@binary_option
@dataclass_options(TrainOptions)
@dataclass_options(SGDOptions)
@click.option("--feature-transform", type=str, default="", help="nnet1 network applied to each utterance first")
@click.argument("model_in")
@click.argument("feats_rspecifier")
@click.argument("ali_rspecifier")
@click.argument("model_out")
def main(use_gpu, binary, feature_transform, model_in, feats_rspecifier, ali_rspecifier, model_out, verbose, **kw):
    opts, sgd_opts = pick(TrainOptions, kw), pick(SGDOptions, kw)
    nnet = read_nnet(model_in, xp=device_xp())
    transform = read_nnet(feature_transform) if feature_transform else None
    trainer = Trainer(nnet, SGD(nnet, sgd_opts), opts)
    data = DataStats()
    stats = trainer.train_pass(feats_rspecifier, ali_rspecifier, transform, data)
    log.info("data %s", data.summary())
    if stats.frames == 0:
        fail(f"no frames were trained on ({data.utterances} usable utterances, fewer frames than "
             f"--minibatch-size={opts.minibatch_size}?); {model_out} not written")
    write_nnet(nnet, model_out, binary=binary)
    log.info("done %s %s", kv(minibatches=stats.minibatches, learn_rate=opts.learn_rate), stats.figures())
