"""Frames per utterance of a features table, or (one argument) their total (Kaldi's feat-to-len).

\b
Usage:  feat-to-len [options] FEATS_RSPECIFIER [LENGTHS_WSPECIFIER]
e.g.:   feat-to-len scp:feats.scp ark,t:feats.lengths
        feat-to-len scp:feats.scp
"""

import click

from nnetavg.bin._common import kaldi_command
from nnetavg.io.tables import INT32, MATRIX, SequentialReader, TableWriter, count_rows


@kaldi_command(help=__doc__, kaldi_prefix=True)
@click.argument("feats_rspecifier")
@click.argument("lengths_wspecifier", required=False, default="")
def main(feats_rspecifier, lengths_wspecifier, verbose):
    if lengths_wspecifier:
        with TableWriter(lengths_wspecifier, INT32) as w:
            for key, x in SequentialReader(feats_rspecifier, MATRIX):
                w.write(key, x.shape[0])
        return
    total = count_rows(feats_rspecifier)   # from the matrix headers when the scp allows it
    if total is None:
        total = sum(x.shape[0] for _, x in SequentialReader(feats_rspecifier, MATRIX))
    click.echo(total)
