"""Combine the last models of a run into the final model on held-out frames, and report the
result on frames that played no part in choosing it.

--method average (default; today's nnet3-combine): the average of the last n models, n = 1..N
chosen by the held-out cross-entropy (forward passes only; n = 1 keeps the last model).
--method bfgs (nnet2's method): per-component weights of the models fitted by BFGS, kept only when
better than the average and every single model on the held-out frames.

\b
Usage:  nnet-combine [options] MODEL1 ... MODELN FEATS_RSPECIFIER ALI_RSPECIFIER MODEL_OUT
e.g.:   nnet-combine --feature-transform=exp/dnn/final.feature_transform --num-frames=20000 \\
          exp/dnn/6.nnet exp/dnn/7.nnet exp/dnn/8.nnet scp:egs/cv/feats.scp ark:egs/cv/ali.ark exp/dnn/final.nnet
\b
The frames the choice is made on are whole utterances of the table drawn at random (--seed) up to
--num-frames, and never more than half the table's frames; the other utterances are the unseen
frames on which the last model and the result are both scored (the log's "unseen" line).
--fit-utts-out writes the keys of the utterances used to choose.
"""

import logging

import click
import numpy as np

from nnetavg.backend import device_xp
from nnetavg.bin._common import (KALDI_BOOL, binary_option, fail, feature_transform_option, kaldi_command,
                                 length_tolerance_option, use_gpu_option)
from nnetavg.data.utterances import DataStats, labelled_utterances
from nnetavg.fileutil import atomic_output
from nnetavg.io.nnet1 import read_nnet, write_nnet
from nnetavg.log import kv
from nnetavg.train.combine import average_last, combine, weights_table
from nnetavg.train.trainer import held_out_scores

log = logging.getLogger("nnetavg.bin")


@kaldi_command(help=__doc__)
@use_gpu_option
@binary_option
@feature_transform_option()
@length_tolerance_option
@click.option("--method", type=click.Choice(["average", "bfgs"]), default="average", show_default=True,
              help="average: the best average of the last n models (nnet3); bfgs: per-component weights (nnet2)")
@click.option("--num-frames", type=int, default=20000, show_default=True,
              help="Frames to choose on (whole random utterances; at most half the table; 0: half)")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the random choice of utterances")
@click.option("--fit-utts-out", default="", help="Write the keys of the utterances the choice was made on")
@click.option("--per-component", type=KALDI_BOOL, default=True, show_default=True,
              help="--method bfgs: one weight per model and component (false: one per model)")
@click.option("--max-iters", type=int, default=30, show_default=True, help="--method bfgs: BFGS iterations at most")
@click.argument("args", nargs=-1, required=True)
def main(use_gpu, binary, feature_transform, length_tolerance, method, num_frames, seed, fit_utts_out, per_component,
         max_iters, args, verbose):
    if len(args) < 4:
        raise click.UsageError("need MODEL1 ... MODELN FEATS_RSPECIFIER ALI_RSPECIFIER MODEL_OUT")
    model_files, feats, ali, out = list(args[:-3]), args[-3], args[-2], args[-1]
    xp = device_xp()
    models = [read_nnet(m, xp=xp) for m in model_files]
    transform = read_nnet(feature_transform) if feature_transform else None
    nnet = models[0]
    utts = list(labelled_utterances(feats, ali, nnet.output_dim, nnet.input_dim, transform, DataStats(), length_tolerance))
    if not utts:
        fail(f"no frames in {feats}")
    if any(not isinstance(t, np.ndarray) for _, _, t in utts):
        fail(f"{ali}: combination needs pdf alignments (not soft targets) for its held-out frames")
    fit, unseen = split_held_out(utts, num_frames, seed)
    x, t = np.concatenate([u[1] for u in fit]), np.concatenate([u[2] for u in fit])
    if method == "average":
        r = average_last(models, x, t)
    else:
        r = combine(models, x, t, max_iters=max_iters, per_component=per_component)
        log.info("weights (per component): %s", weights_table(r))
    log.info("%s", kv(models=len(models), method=method, frames=len(t), utterances=len(fit), chosen=r.chosen,
                      cross_entropy=r.objective, average_cross_entropy=r.average_objective, evaluations=r.evaluations))
    if unseen:
        xu, tu = np.concatenate([u[1] for u in unseen]), np.concatenate([u[2] for u in unseen])
        last = held_out_scores(models[-1], xu, tu)
        final = last if r.chosen == "last-1" else held_out_scores(r.network, xu, tu)   # last-1: the same parameters
        log.info("unseen %s", kv(frames=len(tu), utterances=len(unseen), last_cross_entropy=last[0],
                                 last_frame_accuracy=last[1], final_cross_entropy=final[0], final_frame_accuracy=final[1]))
    if fit_utts_out:
        with atomic_output(fit_utts_out) as f:
            f.write("".join(f"{k}\n" for k, _, _ in fit).encode())
    write_nnet(r.network, out, binary=binary)


def split_held_out(utts: list, num_frames: int, seed: int) -> tuple[list, list]:
    """Utterances drawn at random up to ``num_frames`` frames (at most half of all frames; 0: half)
    to choose on, and the rest (in table order) to report on."""
    total = sum(len(t) for _, _, t in utts)
    want = min(num_frames, total // 2) if num_frames > 0 else total // 2
    order = np.random.default_rng(seed).permutation(len(utts))
    chosen, n = set(), 0
    for i in order.tolist():
        if n >= max(want, 1):
            break
        chosen.add(i)
        n += len(utts[i][2])
    return [u for i, u in enumerate(utts) if i in chosen], [u for i, u in enumerate(utts) if i not in chosen]

