"""Combine the last models of a run into one (Kaldi nnet2/nnet3's combination): per updatable
component, weights of the models chosen to minimise the cross-entropy on held-out frames,
starting from the plain average; kept only when better than the average and every single model
there (else the best of those is written). The log says what was chosen, with the weights.

\b
Usage:  nnet-combine [options] MODEL1 ... MODELN FEATS_RSPECIFIER ALI_RSPECIFIER MODEL_OUT
e.g.:   nnet-combine --feature-transform=exp/dnn/final.feature_transform --num-frames=20000 \\
          exp/dnn/6.nnet exp/dnn/7.nnet exp/dnn/8.nnet scp:egs/cv/feats.scp ark:egs/cv/ali.ark exp/dnn/final.nnet
\b
The held-out frames are the first --num-frames of the table (frames of the feature transform's
output, pdf targets).
"""

import logging

import click

from nnetavg.backend import device_xp
from nnetavg.bin._common import (KALDI_BOOL, binary_option, fail, feature_transform_option, kaldi_command,
                                 length_tolerance_option, use_gpu_option)
from nnetavg.data.utterances import DataStats, held_out_frames, labelled_utterances
from nnetavg.io.nnet1 import read_nnet, write_nnet
from nnetavg.log import kv
from nnetavg.train.combine import combine, weights_table

log = logging.getLogger("nnetavg.bin")


@kaldi_command(help=__doc__)
@use_gpu_option
@binary_option
@feature_transform_option()
@length_tolerance_option
@click.option("--num-frames", type=int, default=20000, show_default=True, help="Held-out frames used (0: all)")
@click.option("--per-component", type=KALDI_BOOL, default=True, show_default=True,
              help="One weight per model and component (false: one per model)")
@click.option("--max-iters", type=int, default=30, show_default=True, help="BFGS iterations at most")
@click.argument("args", nargs=-1, required=True)
def main(use_gpu, binary, feature_transform, length_tolerance, num_frames, per_component, max_iters, args, verbose):
    if len(args) < 4:
        raise click.UsageError("need MODEL1 ... MODELN FEATS_RSPECIFIER ALI_RSPECIFIER MODEL_OUT")
    model_files, feats, ali, out = list(args[:-3]), args[-3], args[-2], args[-1]
    xp = device_xp()
    models = [read_nnet(m, xp=xp) for m in model_files]
    transform = read_nnet(feature_transform) if feature_transform else None
    nnet = models[0]
    frames = held_out_frames(labelled_utterances(feats, ali, nnet.output_dim, nnet.input_dim, transform, DataStats(),
                                                 length_tolerance), num_frames, feats)
    if frames is None:
        fail(f"{ali}: combination needs pdf alignments (not soft targets) for its held-out frames")
    x, t = frames
    r = combine(models, x, t, max_iters=max_iters, per_component=per_component)
    log.info("%s", kv(models=len(models), frames=len(t), chosen=r.chosen, cross_entropy=r.objective,
                      average_cross_entropy=r.average_objective, evaluations=r.evaluations))
    log.info("single models' held-out cross-entropy: %s", " ".join(f"{v:.5g}" for v in r.single_objectives))
    log.info("weights (per component): %s", weights_table(r))
    write_nnet(r.network, out, binary=binary)
