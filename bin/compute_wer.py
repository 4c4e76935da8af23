"""Word error rate of hypotheses against reference transcripts (Kaldi's compute-wer, plus a 95%
bootstrap confidence interval line ``%WER-CI95`` unless --replications 0; Kaldi's scoring scripts
parse the ``%WER`` line only). References and hypotheses are text files or text-archive
rspecifiers (``ark:ref.txt``, ``ark,p:-``). --mode=all (our default; Kaldi's is strict) scores an
utterance missing from the hypotheses as all deleted words.

\b
Usage:  compute-wer [options] REF_RSPECIFIER HYP_RSPECIFIER
e.g.:   compute-wer data/test/text exp/dnn/decode_test/hyp.txt
        compute-wer --text --mode=present ark:scoring/test_filt.txt ark,p:-
"""

import logging

import click

from nnetavg.asr.score import compute_wer, read_text, select_mode
from nnetavg.bin._common import KALDI_BOOL, kaldi_command

log = logging.getLogger("nnetavg.bin")


@kaldi_command(help=__doc__)
@click.option("--mode", type=click.Choice(["present", "all", "strict"]), default="all", show_default=True,
              help="Utterances without a hypothesis: left out (present), all deleted (all), an error (strict)")
@click.option("--text", type=KALDI_BOOL, default=True, show_default=True, help="Accepted (the input is always text)")
@click.option("--replications", type=click.IntRange(min=0), default=1000, show_default=True,
              help="Bootstrap replications (0: no interval, no %WER-CI95 line)")
@click.option("--seed", type=int, default=0, show_default=True)
@click.argument("ref_text")
@click.argument("hyp_text")
def main(mode, text, replications, seed, ref_text, hyp_text, verbose):
    refs, hyps = read_text(ref_text), read_text(hyp_text)
    missing = sum(k not in hyps for k in refs)
    if missing and mode == "all":
        log.warning("%d reference utterances have no hypothesis: scored as empty", missing)
    refs, hyps = select_mode(refs, hyps, mode)
    result = compute_wer(refs, hyps, replications, seed)
    click.echo(result.kaldi_lines())
    click.echo(f"Scored {result.sentences} sentences, {missing} not present in hyp.")
    log.info("wer=%.2f ci95min=%.2f ci95max=%.2f words=%d sentences=%d", result.wer, result.ci95min,
             result.ci95max, result.words, result.sentences)
