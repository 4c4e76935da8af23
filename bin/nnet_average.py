"""Average nnet1 models of the same topology (the parameters' weighted mean).

\b
Usage:  nnet-average [options] MODEL1 ... MODELN MODEL_OUT
e.g.:   nnet-average exp/dnn/1.1.nnet exp/dnn/1.2.nnet exp/dnn/1.3.nnet exp/dnn/1.4.nnet exp/dnn/1.nnet
\b
Models are read one at a time (memory: about two models). --weights=w1:...:wN are normalised
to sum to 1. A model with a NaN parameter or another topology is an error naming the file.
"""

import logging

import click

from nnetavg.bin._common import binary_option, fail, kaldi_command
from nnetavg.io.nnet1 import write_nnet
from nnetavg.parallel.averaging import average_model_files

log = logging.getLogger("nnetavg.bin")


@kaldi_command(help=__doc__)
@binary_option
@click.option("--weights", type=str, default="", help="Colon-separated weights, one per model")
@click.argument("models", nargs=-1, required=True)
def main(binary, weights, models, verbose):
    if len(models) < 2:
        raise click.UsageError("need at least one input model and MODEL_OUT")
    ins, out = list(models[:-1]), models[-1]
    w = None
    if weights:
        try:
            w = [float(x) for x in weights.split(":")]
        except ValueError:
            fail(f"--weights={weights}: expected numbers separated by ':'")
    write_nnet(average_model_files(ins, w), out, binary=binary)
    log.info("averaged %d models into %s", len(ins), out)
