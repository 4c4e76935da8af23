"""Train a network for one pass over the data with natural-gradient SGD (Kaldi nnet2's online
or simple preconditioning of each affine layer's inputs and output derivatives).

\b
Usage:  nnet-train-ngsgd [options] MODEL_IN FEATS_RSPECIFIER ALI_RSPECIFIER MODEL_OUT
e.g.:   nnet-train-ngsgd --learn-rate=0.008 --ngsgd-variant=online \\
          --feature-transform=exp/dnn/final.feature_transform \\
          exp/dnn/0.nnet scp:egs/feats.1.scp ark:egs/ali.1.ark exp/dnn/1.1.nnet
\b
nnet-train-simple with --optimizer=ngsgd by default: the same arguments and options. The Fisher
estimates start afresh from the first minibatch (as in Kaldi) unless --ng-state-in names the
state a previous pass saved with --ng-state-out (a .npz file beside the model; the Kaldi model
file itself never holds it).
"""

from nnetavg.bin._common import kaldi_command
from nnetavg.bin._train import optimizer_options, train_one_pass, trainer_arguments


@kaldi_command(help=__doc__, tune_malloc=True)
@trainer_arguments
@optimizer_options("ngsgd")
def main(**kw):
    train_one_pass(**kw)
