"""Train a network for one pass over the data with frame-shuffled minibatch SGD (nnet1's
nnet-train-frmshuff with Kaldi's argument order).

\b
Usage:  nnet-train-simple [options] MODEL_IN FEATS_RSPECIFIER ALI_RSPECIFIER MODEL_OUT
e.g.:   nnet-train-simple --learn-rate=0.008 --feature-transform=exp/dnn/final.feature_transform \\
          exp/dnn/0.nnet scp:egs/feats.1.scp ark:egs/ali.1.ark exp/dnn/1.1.nnet
\b
ALI_RSPECIFIER holds pdf ids per frame, as ali-to-pdf writes them. The objective is
cross-entropy; gradients are summed over the minibatch (per-frame learning rate). MODEL_OUT is
written atomically and only when the pass succeeded; a NaN objective stops with an error and
writes nothing.
"""

from nnetavg.bin._common import kaldi_command, pick
from nnetavg.bin._train import run_training, trainer_arguments
from nnetavg.train.optim import SGD, SGDOptions
from nnetavg.train.trainer import TrainOptions


@kaldi_command(help=__doc__)
@trainer_arguments
def main(use_gpu, binary, feature_transform, model_in, feats_rspecifier, ali_rspecifier, model_out, verbose,
         checkpoint, preempt_signals, **kw):
    opts, sgd_opts = pick(TrainOptions, kw), pick(SGDOptions, kw)
    run_training(model_in, feats_rspecifier, ali_rspecifier, model_out, feature_transform, binary, opts,
                 lambda nnet: SGD(nnet, sgd_opts), checkpoint=checkpoint, preempt_signals=preempt_signals)
