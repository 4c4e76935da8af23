"""Count the frames of each pdf in alignments (Kaldi's analyze-counts: 0.5 is added to every
count), e.g. for the priors of nnet-forward --class-frame-counts.

\b
Usage:  analyze-counts [options] ALI_RSPECIFIER COUNTS_WXFILENAME
e.g.:   analyze-counts --binary=false --counts-dim=48 ark:egs/ali.1.ark egs/ali_train_pdf.counts
"""

import logging

import click

from nnetavg.bin._common import binary_option, kaldi_command
from nnetavg.data.counts import analyze_counts
from nnetavg.io.tables import VECTOR, write_single

log = logging.getLogger("nnetavg.bin")


@kaldi_command(help=__doc__)
@binary_option
@click.option("--counts-dim", type=int, default=0, show_default=True, help="Number of classes (0: from the data)")
@click.argument("ali_rspecifier")
@click.argument("counts_out")
def main(binary, counts_dim, ali_rspecifier, counts_out, verbose):
    counts = analyze_counts(ali_rspecifier, counts_dim)
    write_single(counts_out, counts, VECTOR, binary)
    log.info("counted %d frames over %d classes", int(round((counts - 0.5).sum())), counts.shape[0])
