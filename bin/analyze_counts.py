"""Count the frames of each pdf in alignments (Kaldi's analyze-counts: 0.5 is added to every
count), e.g. for the priors of nnet-forward --class-frame-counts. Ids beyond --counts-dim grow the
vector (Kaldi's behaviour: per-frame phone ids may exceed the number of pdfs); --symbol-table logs
each id's count with its symbol, most frequent first; --frame-weights / --utt-weights weight them.

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
@click.option("--counts-dim", type=int, default=0, show_default=True,
              help="Number of classes, a hint (0: from the data; larger ids grow the vector)")
@click.option("--symbol-table", default="", help="Symbol table (e.g. phones.txt): log the counts with their symbols")
@click.option("--frame-weights", default="", help="Per-frame weights (rspecifier of vectors)")
@click.option("--utt-weights", default="", help="Per-utterance weights (rspecifier of floats)")
@click.argument("ali_rspecifier")
@click.argument("counts_out")
def main(binary, counts_dim, symbol_table, frame_weights, utt_weights, ali_rspecifier, counts_out, verbose):
    counts = analyze_counts(ali_rspecifier, counts_dim, frame_weights, utt_weights)
    write_single(counts_out, counts, VECTOR, binary)
    if symbol_table:
        from nnetavg.asr.lang import read_symbols
        names = {i: s for s, i in read_symbols(symbol_table).items()}
        order = sorted(range(len(counts)), key=lambda i: -counts[i])
        log.info("counts with symbols, most frequent first: %s",
                 " ".join(f"{names.get(i, i)}={counts[i] - 0.5:g}" for i in order if counts[i] > 0.5))
    log.info("counted %d frames over %d classes", int(round((counts - 0.5).sum())), counts.shape[0])
