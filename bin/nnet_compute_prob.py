"""Cross-entropy and frame accuracy of a network on labelled data (no training).

\b
Usage:  nnet-compute-prob [options] MODEL FEATS_RSPECIFIER ALI_RSPECIFIER
e.g.:   nnet-compute-prob --feature-transform=exp/dnn/final.feature_transform exp/dnn/final.nnet \\
          scp:egs/cv/feats.scp ark:egs/cv/ali.ark
\b
Prints one line to stdout: cross-entropy=... frame-accuracy=... frames=...
"""

import logging

import click

from nnetavg.backend import device_xp
from nnetavg.bin._common import (cv_figures, feature_transform_option, kaldi_command, length_tolerance_option,
                                 use_gpu_option)
from nnetavg.io.nnet1 import read_nnet

log = logging.getLogger("nnetavg.bin")


@kaldi_command(help=__doc__, tune_malloc=True)
@use_gpu_option
@feature_transform_option()
@length_tolerance_option
@click.argument("model")
@click.argument("feats_rspecifier")
@click.argument("ali_rspecifier")
def main(use_gpu, feature_transform, length_tolerance, model, feats_rspecifier, ali_rspecifier, verbose):
    line, data = cv_figures(read_nnet(model, xp=device_xp()), feats_rspecifier, ali_rspecifier, feature_transform,
                            length_tolerance)
    log.info("data %s", data)
    log.info("%s", line)
    click.echo(line)
