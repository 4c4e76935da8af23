"""Train a network for one pass over the data with frame-shuffled minibatch SGD (nnet1's
nnet-train-frmshuff with Kaldi's argument order), or with --optimizer=ngsgd natural-gradient SGD.

\b
Usage:  nnet-train-simple [options] MODEL_IN FEATS_RSPECIFIER ALI_RSPECIFIER MODEL_OUT
e.g.:   nnet-train-simple --learn-rate=0.008 --feature-transform=exp/dnn/final.feature_transform \\
          exp/dnn/0.nnet scp:egs/feats.1.scp ark:egs/ali.1.ark exp/dnn/1.1.nnet
\b
ALI_RSPECIFIER holds pdf ids per frame, as ali-to-pdf writes them. The objective is
cross-entropy; gradients are summed over the minibatch (per-frame learning rate). MODEL_OUT is
written atomically and only when the pass succeeded; a NaN objective stops with an error and
writes nothing. nnet-train-ngsgd is this command with --optimizer=ngsgd by default.
"""

from nnetavg.bin._common import kaldi_command
from nnetavg.bin._train import optimizer_options, train_one_pass, trainer_arguments


@kaldi_command(help=__doc__, tune_malloc=True)
@trainer_arguments
@optimizer_options("sgd")
def main(**kw):
    train_one_pass(**kw)
