"""Convert an RBM into network layers: <AffineTransform> (W, hidden bias) and <Sigmoid> for
Bernoulli hidden units (nnet1's rbm-convert-to-nnet; the visible bias is dropped).

\b
Usage:  rbm-convert-to-nnet [options] RBM_IN MODEL_OUT
e.g.:   rbm-convert-to-nnet exp/dbn/1.rbm - | nnet-concat exp/dbn/0.dbn - exp/dbn/1.dbn
"""

import click

from nnetavg.bin._common import binary_option, fail, kaldi_command
from nnetavg.io.nnet1 import read_nnet, write_nnet
from nnetavg.nnet.components import Rbm
from nnetavg.nnet.network import Network
from nnetavg.rbm import rbm_to_nnet


@kaldi_command(help=__doc__)
@binary_option
@click.argument("rbm_in")
@click.argument("model_out")
def main(binary, rbm_in, model_out, verbose):
    net = read_nnet(rbm_in)
    if not all(isinstance(c, Rbm) for c in net.components):
        fail(f"{rbm_in} is not an RBM (its components: {' '.join(c.marker for c in net.components)})")
    comps = []
    for c in net.components:
        comps.extend(rbm_to_nnet(c))
    write_nnet(Network(comps), model_out, binary=binary)
