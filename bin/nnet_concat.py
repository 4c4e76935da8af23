"""Concatenate nnet1 models into one (e.g. a feature transform and a DBN).

\b
Usage:  nnet-concat [options] MODEL1 MODEL2 [...] MODEL_OUT
e.g.:   nnet-concat --binary=false tr_splice.nnet cmvn.nnet final.feature_transform
"""

import click

from nnetavg.bin._common import binary_option, kaldi_command
from nnetavg.io.nnet1 import read_nnet, write_nnet
from nnetavg.nnet.network import concat


@kaldi_command(help=__doc__)
@binary_option
@click.argument("models", nargs=-1, required=True)
def main(binary, models, verbose):
    if len(models) < 3:
        raise click.UsageError("need at least two input models and MODEL_OUT")
    write_nnet(concat([read_nnet(m) for m in models[:-1]]), models[-1], binary=binary)
