"""Copy an nnet1 model, converting between binary and text.

\b
Usage:  nnet-copy [options] MODEL_IN MODEL_OUT
e.g.:   nnet-copy --binary=false final.nnet final.txt
"""

import logging

import click
import numpy as np

from nnetavg.bin._common import binary_option, fail, kaldi_command
from nnetavg.io.nnet1 import read_nnet, write_nnet
from nnetavg.nnet.network import Network

log = logging.getLogger("nnetavg.bin")


@kaldi_command(help=__doc__)
@binary_option
@click.option("--remove-last-components", type=int, default=0, show_default=True,
              help="Drop this many components at the end (e.g. 1 removes a <Softmax>)")
@click.argument("model_in")
@click.argument("model_out")
def main(binary, remove_last_components, model_in, model_out, verbose):
    nnet = read_nnet(model_in)
    if remove_last_components:
        if remove_last_components >= len(nnet.components):
            fail(f"{model_in} has only {len(nnet.components)} components")
        nnet = Network(nnet._detached_components()[:-remove_last_components])
    bad = int((~np.isfinite(nnet.params)).sum())
    if bad:   # a diverged model can still be inspected (nnet-copy --binary=false bad.nnet -)
        log.warning("%s has %d NaN or infinite parameters; copied as they are", model_in, bad)
    write_nnet(nnet, model_out, binary=binary, allow_non_finite=True)
