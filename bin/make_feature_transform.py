"""Build nnet1's final.feature_transform: <Splice> +-N frames, then global CMVN of the spliced
features as <AddShift> and <Rescale> (what nnet1's train.sh builds with nnet-initialize,
compute-cmvn-stats, cmvn-to-nnet and nnet-concat).

\b
Usage:  make-feature-transform [options] FEATS_RSPECIFIER TRANSFORM_OUT
e.g.:   make-feature-transform --splice=5 --max-utts=10000 scp:egs/feats.1.scp exp/dnn/final.feature_transform
\b
With --global-cmvn-stats=FILE (compute-cmvn-stats of the unspliced features) the statistics are
taken from that file instead of being estimated from FEATS_RSPECIFIER.
"""

import itertools
import logging

import click

from nnetavg.bin._common import KALDI_BOOL, kaldi_command
from nnetavg.data.cmvn import make_feature_transform
from nnetavg.io.nnet1 import write_nnet
from nnetavg.io.tables import MATRIX, SequentialReader, read_single

log = logging.getLogger("nnetavg.bin")


@kaldi_command(help=__doc__)
@click.option("--binary", type=KALDI_BOOL, default=False, show_default=True, help="Write binary (nnet1 writes text)")
@click.option("--splice", type=int, default=5, show_default=True, help="Frames of context on each side")
@click.option("--std-dev", type=float, default=1.0, show_default=True, help="Target standard deviation")
@click.option("--max-utts", type=int, default=10000, show_default=True, help="Utterances used for the statistics")
@click.option("--global-cmvn-stats", type=str, default="", help="Use these stats (unspliced features) instead")
@click.argument("feats_rspecifier")
@click.argument("transform_out")
def main(binary, splice, std_dev, max_utts, global_cmvn_stats, feats_rspecifier, transform_out, verbose):
    stats = read_single(global_cmvn_stats) if global_cmvn_stats else None
    utts = (x for _, x in itertools.islice(SequentialReader(feats_rspecifier, MATRIX), max_utts))
    nnet = make_feature_transform(utts, splice=splice, std_dev=std_dev, global_stats=stats)
    write_nnet(nnet, transform_out, binary=binary)
    log.info("wrote %s: splice=%d input-dim=%d output-dim=%d", transform_out, splice, nnet.input_dim, nnet.output_dim)
