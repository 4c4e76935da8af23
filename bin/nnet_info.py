"""Print the components, dimensions and parameter statistics of an nnet1 model.

\b
Usage:  nnet-info [--print=WHAT] MODEL
e.g.:   nnet-info exp/dnn/final.nnet
        nnet-info --print=output-dim exp/dnn/final.feature_transform
"""

import click

from nnetavg.bin._common import kaldi_command
from nnetavg.io.nnet1 import read_nnet


@kaldi_command(help=__doc__)
@click.option("--print", "what", type=click.Choice(["all", "input-dim", "output-dim", "num-params"]), default="all",
              show_default=True, help="Print only this figure (for scripts)")
@click.argument("model")
def main(what, model, verbose):
    nnet = read_nnet(model)
    figures = {"input-dim": nnet.input_dim, "output-dim": nnet.output_dim, "num-params": nnet.num_params}
    click.echo(nnet.info() if what == "all" else figures[what])
