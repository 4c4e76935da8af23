"""Copy a features table, e.g. to make an archive with its scp, or text from binary.

\b
Usage:  copy-feats [options] FEATS_RSPECIFIER FEATS_WSPECIFIER
e.g.:   copy-feats ark:- ark,scp:data/feats.ark,data/feats.scp
        copy-feats --compress=true scp:data/feats.scp ark,scp:data/cfeats.ark,data/cfeats.scp
"""

import logging

import click

from nnetavg.bin._common import KALDI_BOOL, fail, kaldi_command
from nnetavg.io.tables import MATRIX, SequentialReader, TableWriter

log = logging.getLogger("nnetavg.bin")


@kaldi_command(help=__doc__)
@click.option("--compress", type=KALDI_BOOL, default=False, show_default=True,
              help="Write Kaldi's compressed matrices (CompressedMatrix, as Kaldi's copy-feats --compress)")
@click.option("--compression-method", type=int, default=1, show_default=True,
              help="1 automatic, 2 speech feature (CM), 3 two-byte auto (CM2), 4 two-byte signed integer, "
                   "5 one-byte auto (CM3), 6 one-byte unsigned integer, 7 one-byte 0..1")
@click.argument("feats_rspecifier")
@click.argument("feats_wspecifier")
def main(compress, compression_method, feats_rspecifier, feats_wspecifier, verbose):
    n = 0
    with TableWriter(feats_wspecifier, MATRIX, compression_method if compress else 0) as w:
        for key, x in SequentialReader(feats_rspecifier, MATRIX):
            w.write(key, x)
            n += 1
        if n == 0:   # as Kaldi's copy-feats: copying nothing is a failure (and leaves no archive)
            fail(f"no feature matrices in {feats_rspecifier}")
    log.info("copied %d matrices", n)
