"""Copy the features and pdf alignments of a list of utterances into one training archive pair,
in the list's order, skipping (and counting) what training would skip.

\b
Usage:  nnet-copy-egs [options] FEATS_RSPECIFIER ALI_RSPECIFIER FEATS_WSPECIFIER ALI_WSPECIFIER
e.g.:   nnet-copy-egs --utt-list=egs/lists/train.1.list scp:data/train/feats.scp ark:ali_pdf.ark \\
          ark,scp:egs/feats.1.ark,egs/feats.1.scp ark:egs/ali.1.ark
"""

import logging

import click

from nnetavg.bin._common import fail, kaldi_command, length_tolerance_option
from nnetavg.data.egs import copy_egs
from nnetavg.data.split import read_list
from nnetavg.io.tables import MATRIX, SequentialReader

log = logging.getLogger("nnetavg.bin")


@kaldi_command(help=__doc__)
@click.option("--utt-list", type=str, default="", help="Utterances to copy, in this order (default: all, in feature order)")
@click.option("--num-pdfs", type=int, default=0, help="Check pdf ids are below this (0: no check)")
@length_tolerance_option
@click.argument("feats_rspecifier")
@click.argument("ali_rspecifier")
@click.argument("feats_wspecifier")
@click.argument("ali_wspecifier")
def main(utt_list, num_pdfs, length_tolerance, feats_rspecifier, ali_rspecifier, feats_wspecifier, ali_wspecifier,
         verbose):
    utts = read_list(utt_list) if utt_list else [k for k, _ in SequentialReader(feats_rspecifier, MATRIX)]
    stats = copy_egs(utts, feats_rspecifier, ali_rspecifier, feats_wspecifier, ali_wspecifier, num_pdfs,
                     length_tolerance)
    log.info("copied %s frames=%d", stats.summary(), stats.frames)
    if stats.utterances == 0:
        fail(f"no utterance could be copied from {feats_rspecifier}")
