"""Build the decoding graph HCLG.fst of a word loop over a lang directory's lexicon (Kaldi's
utils/mkgraph.sh with a unigram loop grammar; transition scale 1.0, self-loop scale 0.1).

\b
Usage:  make-loop-graph [options] LANG_DIR HCLG_FST
e.g.:   make-loop-graph data/lang exp/graph/HCLG.fst
"""

import logging
import os

import click

from nnetavg.asr.graph import make_word_loop_graph
from nnetavg.asr.lang import load_lang
from nnetavg.bin._common import kaldi_command

log = logging.getLogger("nnetavg.bin")


@kaldi_command(help=__doc__)
@click.option("--silence-prob", type=float, default=None, help="Probability of optional silence between words (default: the lang's, prepare-lang --sil-prob)")
@click.option("--self-loop-scale", type=float, default=0.1, show_default=True)
@click.argument("lang_dir")
@click.argument("hclg_fst")
def main(silence_prob, self_loop_scale, lang_dir, hclg_fst, verbose):
    hclg = make_word_loop_graph(load_lang(lang_dir), silence_prob, self_loop_scale)
    os.makedirs(os.path.dirname(os.path.abspath(hclg_fst)), exist_ok=True)
    tmp = hclg_fst + ".tmp"
    hclg.write(tmp)
    os.replace(tmp, hclg_fst)
    log.info("wrote %s: states=%d", hclg_fst, hclg.num_states)
