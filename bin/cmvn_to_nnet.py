"""Turn CMVN statistics (compute-cmvn-stats output) into an nnet1 network <AddShift> <Rescale>
that normalises to zero mean and --std-dev standard deviation (Kaldi's cmvn-to-nnet).

\b
Usage:  cmvn-to-nnet [options] CMVN_STATS_RXFILENAME NNET_WXFILENAME
e.g.:   compute-cmvn-stats ark:feats.ark - | cmvn-to-nnet - cmvn.nnet
"""

import logging

import click
import numpy as np

from nnetavg.bin._common import KALDI_BOOL, fail, kaldi_command
from nnetavg.data.cmvn import cmvn_network
from nnetavg.io.nnet1 import write_nnet
from nnetavg.io.tables import MATRIX, read_single
from nnetavg.nnet.network import Network

log = logging.getLogger("nnetavg.bin")


@kaldi_command(help=__doc__, kaldi_prefix=True)
@click.option("--binary", type=KALDI_BOOL, default=False, show_default=True, help="Write in binary mode")
@click.option("--std-dev", type=float, default=1.0, show_default=True, help="Standard deviation of the output")
@click.option("--var-floor", type=float, default=1e-10, show_default=True, help="Floor of the variances")
@click.option("--tied-normalization", type=KALDI_BOOL, default=False, show_default=True,
              help="One scale for every dimension (from the mean variance)")
@click.argument("stats_in")
@click.argument("nnet_out")
def main(binary, std_dev, var_floor, tied_normalization, stats_in, nnet_out, verbose):
    stats = np.asarray(read_single(stats_in, MATRIX), dtype=np.float64)
    if stats.ndim != 2 or stats.shape[0] != 2 or stats.shape[1] < 2:
        fail(f"{stats_in}: CMVN stats must be a 2 x (dim+1) matrix, found {stats.shape}")
    if stats[0, -1] <= 0:
        fail(f"{stats_in}: CMVN stats with a frame count of {stats[0, -1]}")
    comps = cmvn_network(stats, std_dev=std_dev, var_floor=var_floor)
    if tied_normalization:
        scale = comps[1].init["scale"].astype(np.float64)
        comps[1].init["scale"] = np.full_like(comps[1].init["scale"], std_dev / np.sqrt(np.mean((std_dev / scale) ** 2)))
    write_nnet(Network(comps), nnet_out, binary=binary)
    log.info("Written model to %s", nnet_out)
