"""Copy an nnet1 model, converting between binary and text; optionally drop components at either
end or set the rate of every <Dropout> (Kaldi's nnet-copy; train.sh's --dropout-schedule uses it).

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
@click.option("--remove-first-components", type=int, default=0, show_default=True,
              help="Drop this many components at the start")
@click.option("--remove-last-components", type=int, default=0, show_default=True,
              help="Drop this many components at the end (e.g. 1 removes a <Softmax>)")
@click.option("--dropout-rate", type=float, default=-1.0, show_default=True,
              help="Set the rate of every <Dropout> component (-1: keep)")
@click.argument("model_in")
@click.argument("model_out")
def main(binary, remove_first_components, remove_last_components, dropout_rate, model_in, model_out, verbose):
    from nnetavg.nnet.components import Dropout

    nnet = read_nnet(model_in)
    if remove_first_components or remove_last_components:
        if remove_first_components + remove_last_components >= len(nnet.components):
            fail(f"{model_in} has only {len(nnet.components)} components")
        comps = nnet._detached_components()
        nnet = Network(comps[remove_first_components:len(comps) - remove_last_components])
    if dropout_rate != -1.0:
        if not 0.0 <= dropout_rate < 1.0:
            fail(f"--dropout-rate={dropout_rate}: must be in [0, 1) (or -1 to keep)")
        changed = [c for c in nnet.components if isinstance(c, Dropout)]
        for c in changed:
            c.rate = dropout_rate
        log.info("set the rate of %d <Dropout> components to %g", len(changed), dropout_rate)
    bad = int((~np.isfinite(nnet.params)).sum())
    if bad:   # a diverged model can still be inspected (nnet-copy --binary=false bad.nnet -)
        log.warning("%s has %d NaN or infinite parameters; copied as they are", model_in, bad)
    write_nnet(nnet, model_out, binary=binary, allow_non_finite=True)
