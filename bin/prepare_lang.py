"""Make a lang directory (phones.txt, words.txt, lexicon.txt, topo, num_pdfs) from a lexicon
(Kaldi's utils/prepare_lang.sh for a monophone system; SIL is the silence phone).

\b
Usage:  prepare-lang [options] LEXICON LANG_DIR
e.g.:   prepare-lang data/local/dict/lexicon.txt data/lang
"""

import logging

import click

from nnetavg.asr.lang import prepare_lang
from nnetavg.bin._common import kaldi_command

log = logging.getLogger("nnetavg.bin")


@kaldi_command(help=__doc__)
@click.argument("lexicon")
@click.argument("lang_dir")
def main(lexicon, lang_dir, verbose):
    lang = prepare_lang(lexicon, lang_dir)
    tm = lang.transition_model
    with open(f"{lang_dir}/num_pdfs", "w") as f:
        f.write(f"{tm.num_pdfs}\n")
    log.info("lang %s: words=%d phones=%d pdfs=%d transition_ids=%d", lang_dir, len(lang.words) - 1,
             len(lang.phones) - 2, tm.num_pdfs, tm.num_transition_ids)
