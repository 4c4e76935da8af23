"""Decode log-likelihoods of pdfs (nnet-forward's output) with an HCLG graph and write the best
word sequence of each utterance as text (Kaldi's decode-faster-mapped / latgen-faster-mapped
followed by int2sym). The transition model is --trans-model (a final.mdl, e.g. of the GMM system
whose alignments the DNN learnt: any tree) or, without it, the monophone model rebuilt from the
lang directory's topo.

\b
Usage:  decode-faster-mapped [options] LANG_DIR HCLG_FST LOGLIKES_RSPECIFIER HYP_TEXT
e.g.:   decode-faster-mapped --acoustic-scale=0.1 data/lang exp/graph/HCLG.fst ark:loglikes.ark exp/dnn/decode/hyp.txt
"""

import logging
import time

import click

from nnetavg.asr.decode import DecodeOptions, Decoder
from nnetavg.asr.lang import import_kaldi_hmm_gmm, load_lang
from nnetavg.bin._common import dataclass_options, fail, kaldi_command
from nnetavg.fileutil import atomic_output
from nnetavg.io.tables import MATRIX, SequentialReader
from nnetavg.progress import Progress

log = logging.getLogger("nnetavg.bin")


@kaldi_command(help=__doc__)
@dataclass_options(DecodeOptions)
@click.option("--trans-model", default="", help="final.mdl whose transition ids the graph uses (default: the lang's monophone model)")
@click.argument("lang_dir")
@click.argument("hclg_fst")
@click.argument("loglikes_rspecifier")
@click.argument("hyp_text")
def main(lang_dir, hclg_fst, loglikes_rspecifier, hyp_text, verbose, trans_model, **opts):
    lang = load_lang(lang_dir)
    import_kaldi_hmm_gmm()
    import kaldifst

    fst = kaldifst.StdVectorFst.read(hclg_fst)
    if trans_model:
        from nnetavg.asr.decode import FstDecoder
        from nnetavg.asr.models import read_transition_model
        decode = FstDecoder(fst, read_transition_model(trans_model), lang.id_to_word, DecodeOptions(**opts)).decode
    else:
        decode = Decoder(fst, lang, DecodeOptions(**opts)).decode_mapped
    start, n, failed, frames = time.time(), 0, 0, 0
    progress = Progress("utterances", period=30.0)
    with atomic_output(hyp_text) as out:
        for utt, loglikes in SequentialReader(loglikes_rspecifier, MATRIX):
            result = decode(utt, loglikes)
            frames += loglikes.shape[0]
            progress.update()
            if result is None:
                failed += 1
                log.warning("utterance %s: decoding failed (no final state reached)", utt)
                continue
            words, _ = result
            out.write(f"{utt} {' '.join(words)}\n".encode())
            n += 1
    progress.close()
    secs = time.time() - start
    log.info("decoded %d utterances, %d failed: frames=%d real_time_factor=%.4f", n, failed, frames,
             secs / max(frames * 0.01, 1e-9))
    if n == 0:
        fail(f"no utterance decoded from {loglikes_rspecifier}")
