"""Convert pdf (or transition-id) alignments to Posteriors, one (id, 1.0) pair per frame
(Kaldi's ali-to-post): the targets nnet-train-frmshuff reads.

\b
Usage:  ali-to-post [options] ALIGNMENTS_RSPECIFIER POSTERIORS_WSPECIFIER
e.g.:   ali-to-post ark:pdf.ark ark:post.ark
        nnet-train-frmshuff ... scp:train.scp "ark:ali-to-post ark:pdf.ark ark:- |" nnet.init nnet.iter1
"""

import logging

import click

from nnetavg.bin._common import fail, kaldi_command
from nnetavg.io.posterior import Posterior
from nnetavg.io.tables import INT_VECTOR, POSTERIOR, SequentialReader, TableWriter

log = logging.getLogger("nnetavg.bin")


@kaldi_command(help=__doc__, kaldi_prefix=True)
@click.argument("ali_rspecifier")
@click.argument("post_wspecifier")
def main(ali_rspecifier, post_wspecifier, verbose):
    n = 0
    with TableWriter(post_wspecifier, POSTERIOR) as w:
        for key, ali in SequentialReader(ali_rspecifier, INT_VECTOR):
            w.write(key, Posterior.from_alignment(ali))
            n += 1
        if n == 0:
            fail(f"no alignments in {ali_rspecifier}")
    log.info("Converted %d alignments.", n)
