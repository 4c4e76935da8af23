"""Forward features through a network, e.g. the scores a decoder reads: log-posteriors minus
log-priors (Kaldi's nnet-forward).

\b
Usage:  nnet-forward [options] MODEL FEATS_RSPECIFIER OUT_WSPECIFIER
e.g.:   nnet-forward --no-softmax=true --feature-transform=exp/dnn/final.feature_transform \\
          --class-frame-counts=exp/dnn/ali_train_pdf.counts exp/dnn/final.nnet scp:data/test/feats.scp ark:loglikes.ark
"""

import logging
import time

import click
import numpy as np

from nnetavg.backend import device_xp, to_numpy
from nnetavg.bin._common import KALDI_BOOL, fail, feature_transform_option, kaldi_command, use_gpu_option
from nnetavg.io.nnet1 import read_nnet
from nnetavg.io.tables import MATRIX, VECTOR, SequentialReader, TableWriter, read_single
from nnetavg.nnet.forward import Forward
from nnetavg.progress import Progress

log = logging.getLogger("nnetavg.bin")


@kaldi_command(help=__doc__, kaldi_gpu=True, tune_malloc=True)
@use_gpu_option
@feature_transform_option()
@click.option("--no-softmax", type=KALDI_BOOL, default=False, show_default=True, help="Drop a final <Softmax>, output logits")
@click.option("--apply-log", type=KALDI_BOOL, default=False, show_default=True, help="Output log(softmax + 1e-20)")
@click.option("--class-frame-counts", default="", help="Counts of the pdfs (analyze-counts) whose log-priors are subtracted")
@click.option("--prior-scale", type=float, default=1.0, show_default=True, help="Scale of the log-priors")
@click.option("--prior-floor", type=float, default=1e-10, show_default=True, help="Classes with a smaller prior are disabled")
@click.argument("model")
@click.argument("feats_rspecifier")
@click.argument("out_wspecifier")
def main(use_gpu, feature_transform, no_softmax, apply_log, class_frame_counts, prior_scale, prior_floor,
         model, feats_rspecifier, out_wspecifier, verbose):
    xp = device_xp()
    forward = Forward(
        read_nnet(model, xp=xp),
        read_nnet(feature_transform, xp=xp) if feature_transform else None,
        no_softmax=no_softmax, apply_log=apply_log,
        counts=read_single(class_frame_counts, VECTOR) if class_frame_counts else None,
        prior_scale=prior_scale, prior_floor=prior_floor,
    )
    start, n, frames = time.time(), 0, 0
    progress = Progress("frames", period=30.0)
    with TableWriter(out_wspecifier, MATRIX) as w:
        for utt, feats in SequentialReader(feats_rspecifier, MATRIX):
            if feats.shape[0] == 0:
                log.warning("utterance %s: no frames, skipped", utt)
                continue
            expect = (forward.transform or forward.nnet).input_dim
            if feats.shape[1] != expect:
                fail(f"{feats_rspecifier}: utterance {utt}: features have dim {feats.shape[1]}, the network takes {expect}")
            out = to_numpy(forward(feats))
            if not np.all(np.isfinite(out)):   # as Kaldi: a decoder must never read NaN scores
                why = "NaN or Inf in its features" if not np.all(np.isfinite(feats)) else "a NaN or infinite model"
                fail(f"{feats_rspecifier}: utterance {utt}: NaN or Inf in the network output ({why}?); {out_wspecifier} "
                     f"not written")
            w.write(utt, out)
            n += 1
            frames += feats.shape[0]
            progress.update(feats.shape[0])
    progress.close()
    secs = time.time() - start
    log.info("forwarded %d utterances: frames=%d frames_per_s=%.0f", n, frames, frames / max(secs, 1e-9))
    if n == 0:
        fail(f"no utterances in {feats_rspecifier}")
