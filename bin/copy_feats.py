"""Copy a features table, e.g. to make an archive with its scp, or text from binary.

\b
Usage:  copy-feats [options] FEATS_RSPECIFIER FEATS_WSPECIFIER
e.g.:   copy-feats ark:- ark,scp:data/feats.ark,data/feats.scp
"""

import logging

import click

from nnetavg.bin._common import fail, kaldi_command
from nnetavg.io.tables import MATRIX, SequentialReader, TableWriter

log = logging.getLogger("nnetavg.bin")


@kaldi_command(help=__doc__)
@click.argument("feats_rspecifier")
@click.argument("feats_wspecifier")
def main(feats_rspecifier, feats_wspecifier, verbose):
    n = 0
    with TableWriter(feats_wspecifier, MATRIX) as w:
        for key, x in SequentialReader(feats_rspecifier, MATRIX):
            w.write(key, x)
            n += 1
        if n == 0:   # as Kaldi's copy-feats: copying nothing is a failure (and leaves no archive)
            fail(f"no feature matrices in {feats_rspecifier}")
    log.info("copied %d matrices", n)
