"""From Kaldi data directories to minibatches: CMVN, feature transforms, egs splits, randomizer."""
