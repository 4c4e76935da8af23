"""Train a network for one pass over the data with natural-gradient SGD (Kaldi nnet2's online
or simple preconditioning of each affine layer's inputs and output derivatives).

\b
Usage:  nnet-train-ngsgd [options] MODEL_IN FEATS_RSPECIFIER ALI_RSPECIFIER MODEL_OUT
e.g.:   nnet-train-ngsgd --learn-rate=0.008 --ngsgd-variant=online \\
          --feature-transform=exp/dnn/final.feature_transform \\
          exp/dnn/0.nnet scp:egs/feats.1.scp ark:egs/ali.1.ark exp/dnn/1.1.nnet
\b
Same arguments and training options as nnet-train-simple, plus the natural-gradient options.
The Fisher estimates start afresh from the first minibatch (as in Kaldi) unless --ng-state-in
names the state a previous pass saved with --ng-state-out (a .npz file beside the model; the
Kaldi model file itself never holds it).
"""

import click

from nnetavg.bin._common import dataclass_options, kaldi_command, pick
from nnetavg.bin._train import run_training, trainer_arguments
from nnetavg.train.checkpoint import load_checkpoint, write_npz
from nnetavg.train.optim import NGSGD, NGSGDOptions, SGDOptions
from nnetavg.train.trainer import TrainOptions


@kaldi_command(help=__doc__)
@trainer_arguments
@dataclass_options(NGSGDOptions)
@click.option("--ng-state-in", type=str, default="", help="Fisher state saved by a previous pass (.npz)")
@click.option("--ng-state-out", type=str, default="", help="Save the Fisher state here after the pass (.npz)")
def main(use_gpu, binary, feature_transform, model_in, feats_rspecifier, ali_rspecifier, model_out, verbose,
         ng_state_in, ng_state_out, checkpoint, preempt_signals, **kw):
    opts, sgd_opts, ng_opts = pick(TrainOptions, kw), pick(SGDOptions, kw), pick(NGSGDOptions, kw)

    def make(nnet):
        opt = NGSGD(nnet, sgd_opts, ng_opts)
        if ng_state_in:
            opt.load_state(load_checkpoint(ng_state_in, "natural-gradient state"))
        return opt

    def save(opt):
        if ng_state_out:
            write_npz(ng_state_out, opt.fisher_state())

    run_training(model_in, feats_rspecifier, ali_rspecifier, model_out, feature_transform, binary, opts, make, save,
                 checkpoint=checkpoint, preempt_signals=preempt_signals)
