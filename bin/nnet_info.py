"""Print the components, dimensions and parameter statistics of an nnet1 model.

\b
Usage:  nnet-info MODEL
e.g.:   nnet-info exp/dnn/final.nnet
"""

import click

from nnetavg.bin._common import kaldi_command
from nnetavg.io.nnet1 import read_nnet


@kaldi_command(help=__doc__)
@click.argument("model")
def main(model, verbose):
    click.echo(read_nnet(model).info())
