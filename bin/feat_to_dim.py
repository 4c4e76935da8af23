"""The dimension of a features table (of its first matrix) or of a single matrix (Kaldi's
feat-to-dim).

\b
Usage:  feat-to-dim [options] FEATS_RSPECIFIER|MATRIX_RXFILENAME DIM_WXFILENAME|DIM_WSPECIFIER
e.g.:   feat-to-dim scp:feats.scp -
        feat-to-dim "ark:copy-feats scp:feats.scp ark:- |" -
        feat-to-dim scp:feats.scp ark,t:dims.txt      # the dim of every utterance
"""

import logging

import click

from nnetavg.bin._common import fail, kaldi_command
from nnetavg.io.kaldi_basic import open_wxfilename
from nnetavg.io.tables import INT32, MATRIX, SequentialReader, TableWriter, is_rspecifier, is_wspecifier, read_single

log = logging.getLogger("nnetavg.bin")


@kaldi_command(help=__doc__, kaldi_prefix=True)
@click.argument("feats_in")
@click.argument("dim_out")
def main(feats_in, dim_out, verbose):
    if not is_rspecifier(feats_in):
        write_text(dim_out, f"{read_single(feats_in, MATRIX).shape[1]}\n")
        return
    if is_wspecifier(dim_out):   # a wspecifier: every utterance's dim
        with TableWriter(dim_out, INT32) as w:
            for key, x in SequentialReader(feats_in, MATRIX):
                w.write(key, x.shape[1])
        return
    for _, x in SequentialReader(feats_in, MATRIX):
        write_text(dim_out, f"{x.shape[1]}\n")
        return
    fail(f"no features in {feats_in}")


def write_text(wxfilename: str, text: str) -> None:
    f = open_wxfilename(wxfilename)
    f.write(text.encode())
    f.flush()
    if wxfilename.strip() not in ("", "-"):
        f.close()
