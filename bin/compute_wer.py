"""Word error rate of hypotheses against reference transcripts, with a 95% bootstrap confidence
interval (Kaldi's compute-wer --mode=present and compute-wer-bootci). Utterances missing from the
hypotheses count as all deleted words.

\b
Usage:  compute-wer [options] REF_TEXT HYP_TEXT
e.g.:   compute-wer data/test/text exp/dnn/decode_test/hyp.txt
"""

import logging

import click

from nnetavg.asr.score import compute_wer, read_text
from nnetavg.bin._common import kaldi_command

log = logging.getLogger("nnetavg.bin")


@kaldi_command(help=__doc__)
@click.option("--replications", type=click.IntRange(min=0), default=1000, show_default=True,
              help="Bootstrap replications (0: no interval, no %WER-CI95 line)")
@click.option("--seed", type=int, default=0, show_default=True)
@click.argument("ref_text")
@click.argument("hyp_text")
def main(replications, seed, ref_text, hyp_text, verbose):
    refs, hyps = read_text(ref_text), read_text(hyp_text)
    missing = [k for k in refs if k not in hyps]
    if missing:
        log.warning("%d reference utterances have no hypothesis (e.g. %s): scored as empty", len(missing), missing[0])
        hyps = {**hyps, **{k: [] for k in missing}}
    result = compute_wer(refs, hyps, replications, seed)
    click.echo(result.kaldi_lines())
    log.info("wer=%.2f ci95min=%.2f ci95max=%.2f words=%d sentences=%d", result.wer, result.ci95min,
             result.ci95max, result.words, result.sentences)
