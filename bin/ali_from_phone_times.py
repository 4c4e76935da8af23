"""Frame alignments from known phone timings (e.g. a synthesiser's): transition ids as a GMM
system's ali.*.ark, and optionally pdf ids (ali-to-pdf) for DNN training.

\b
Usage:  ali-from-phone-times [options] LANG_DIR PHONE_TIMES FEATS_RSPECIFIER ALI_WSPECIFIER [PDF_WSPECIFIER]
e.g.:   ali-from-phone-times data/lang data/train/phone_times scp:data/train/feats.scp \\
          ark:exp/ali/ali.ark ark:exp/ali/pdf.ark
\b
PHONE_TIMES lines: utt dur_ms phone start_ms phone start_ms ...
"""

import logging
import os

import click

from nnetavg.asr.features import read_wav, read_wav_scp
from nnetavg.asr.align import PhoneTimeAligner, parse_phone_times
from nnetavg.asr.lang import load_lang
from nnetavg.bin._common import fail, kaldi_command
from nnetavg.io.tables import INT_VECTOR, MATRIX, SequentialReader, TableWriter

log = logging.getLogger("nnetavg.bin")


@kaldi_command(help=__doc__)
@click.option("--sample-rate", type=float, default=0.0, help="Sample rate of the audio the features came from "
              "(default: that of the first file of the wav.scp beside PHONE_TIMES)")
@click.argument("lang_dir")
@click.argument("phone_times")
@click.argument("feats_rspecifier")
@click.argument("ali_wspecifier")
@click.argument("pdf_wspecifier", required=False, default="")
def main(sample_rate, lang_dir, phone_times, feats_rspecifier, ali_wspecifier, pdf_wspecifier, verbose):
    aligner = PhoneTimeAligner(load_lang(lang_dir))
    if sample_rate <= 0:
        wav_scp = os.path.join(os.path.dirname(phone_times), "wav.scp")
        if not os.path.exists(wav_scp):
            fail(f"--sample-rate not given and there is no {wav_scp} to read it from")
        utt, path = next(iter(read_wav_scp(wav_scp)))
        sample_rate = read_wav(path, utt)[1]
    times = {}
    with open(phone_times, encoding="utf-8") as f:
        for line in f:
            if line.strip():
                utt, _, segments = parse_phone_times(line, phone_times)
                times[utt] = segments
    n = missing = frames = 0
    pdf_writer = TableWriter(pdf_wspecifier, INT_VECTOR) if pdf_wspecifier else None
    with TableWriter(ali_wspecifier, INT_VECTOR) as w:
        for utt, feats in SequentialReader(feats_rspecifier, MATRIX):
            if utt not in times:
                missing += 1
                log.warning("utterance %s: no phone timings in %s", utt, phone_times)
                continue
            ali = aligner.align(utt, times[utt], feats.shape[0], sample_rate)
            w.write(utt, ali)
            if pdf_writer:
                pdf_writer.write(utt, aligner.to_pdfs(ali))
            n += 1
            frames += len(ali)
    if pdf_writer:
        pdf_writer.close()
    log.info("aligned %d utterances (%d without timings): frames=%d pdfs=%d", n, missing, frames, aligner.num_pdfs)
    if n == 0:
        fail(f"no utterance of {feats_rspecifier} has phone timings in {phone_times}")
