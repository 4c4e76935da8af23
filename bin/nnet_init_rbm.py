"""Initialise an RBM (nnet1's <Rbm>): W ~ N(0, stddev^2), biases zero; a Bernoulli visible
layer can take its visible bias from the data (logit of the mean activation, as nnet1 does).

\b
Usage:  nnet-init-rbm [options] VIS_DIM HID_DIM RBM_OUT
e.g.:   nnet-init-rbm --visible-type=gauss --hidden-type=bern 440 1024 exp/dbn/1.rbm
        nnet-init-rbm --visible-bias-from=scp:egs/feats.1.scp --feature-transform=exp/dbn/tr.1 1024 1024 exp/dbn/2.rbm
"""

import itertools
import logging

import click
import numpy as np

from nnetavg.bin._common import binary_option, fail, feature_transform_option, kaldi_command
from nnetavg.io.nnet1 import read_nnet, write_nnet
from nnetavg.rbm import frames, new_rbm, visible_bias_from_mean

log = logging.getLogger("nnetavg.bin")


@kaldi_command(help=__doc__)
@binary_option
@click.option("--visible-type", type=click.Choice(["bern", "gauss"]), default="bern", show_default=True)
@click.option("--hidden-type", type=click.Choice(["bern", "gauss"]), default="bern", show_default=True)
@click.option("--param-stddev", type=float, default=0.1, show_default=True)
@click.option("--seed", type=int, default=777, show_default=True)
@click.option("--visible-bias-from", type=str, default="", help="Features rspecifier: visible bias = logit(mean)")
@feature_transform_option("Applied to --visible-bias-from features")
@click.option("--max-utts", type=int, default=10000, show_default=True)
@click.argument("vis_dim", type=int)
@click.argument("hid_dim", type=int)
@click.argument("rbm_out")
def main(binary, visible_type, hidden_type, param_stddev, seed, visible_bias_from, feature_transform, max_utts,
         vis_dim, hid_dim, rbm_out, verbose):
    bias = None
    if visible_bias_from:
        if visible_type != "bern":
            fail("--visible-bias-from is for Bernoulli visible units")
        transform = read_nnet(feature_transform) if feature_transform else None
        acc, n = np.zeros(vis_dim), 0
        for x in itertools.islice(frames(visible_bias_from, transform, vis_dim, {}), max_utts):
            if x.shape[1] != vis_dim:
                fail(f"{visible_bias_from}: features of dim {x.shape[1]} after the transform, RBM visible dim {vis_dim}")
            acc += x.sum(axis=0)
            n += x.shape[0]
        if n == 0:
            fail(f"no features in {visible_bias_from}")
        bias = visible_bias_from_mean(acc / n)
    net = new_rbm(vis_dim, hid_dim, visible_type, hidden_type, param_stddev, seed, bias)
    write_nnet(net, rbm_out, binary=binary)
    log.info("wrote %s: <Rbm> %s-%s %d -> %d", rbm_out, visible_type, hidden_type, vis_dim, hid_dim)
