"""Make a Kaldi lang directory from a Kaldi dict directory, as Kaldi's utils/prepare_lang.sh does:
phones.txt, words.txt (word-position-dependent phones _B _E _I _S by default, as Kaldi's), topo
(3-state phones, Kaldi's 5-state silence), L.fst, L_disambig.fst (homophones and prefixes
disambiguated with #1, #2, ...), phones/* (sets, roots and extra_questions for tree building:
phones on one line of silence_phones.txt / nonsilence_phones.txt share a tree root;
align_lexicon, word_boundary, ...), oov.txt/oov.int with --oov, lexiconp.txt,
lexiconp_disambig.txt, num_pdfs (of the monophone system).

DICT is a directory with lexicon.txt or lexiconp.txt, silence_phones.txt, nonsilence_phones.txt,
optional_silence.txt (and optionally extra_questions.txt), or a bare lexicon file whose silence
phone is SIL.

\b
Usage:  prepare-lang [options] DICT LANG_DIR
e.g.:   prepare-lang data/local/dict data/lang
        prepare-lang --position-dependent-phones=true --sil-prob=0.5 data/local/dict data/lang
"""

import logging

import click

from nnetavg.asr.lang import prepare_lang
from nnetavg.bin._common import KALDI_BOOL, kaldi_command

log = logging.getLogger("nnetavg.bin")


@kaldi_command(help=__doc__)
@click.option("--sil-prob", type=float, default=0.5, show_default=True,
              help="Probability of the optional silence at the start and after each word")
@click.option("--position-dependent-phones", type=KALDI_BOOL, default=True, show_default=True,
              help="Word-position-dependent phones (_B _E _I _S), as Kaldi's default")
@click.option("--oov", default="", help="Lexicon word that stands for words missing from the lexicon (oov.txt)")
@click.argument("dict_dir")
@click.argument("lang_dir")
def main(sil_prob, position_dependent_phones, oov, dict_dir, lang_dir, verbose):
    lang = prepare_lang(dict_dir, lang_dir, sil_prob, position_dependent_phones, oov)
    tm = lang.transition_model
    with open(f"{lang_dir}/num_pdfs", "w") as f:
        f.write(f"{tm.num_pdfs}\n")
    log.info("lang %s: words=%d phones=%d (silence %d) disambiguation-symbols=%d pdfs=%d transition_ids=%d",
             lang_dir, len(lang.real_words), len(lang.phones) - 1 - len(lang.disambig_ids), len(lang.silence_phones),
             len(lang.disambig_ids), tm.num_pdfs, tm.num_transition_ids)
