"""Kaldi's ``nnet-forward``: the network's outputs for decoding, with pdf priors removed.

Semantics of ``src/nnetbin/nnet-forward.cc`` and ``PdfPrior`` (``src/nnet/nnet-pdf-prior.cc``):

* ``no_softmax``: a trailing ``<Softmax>`` is dropped and the logits are written (log-posteriors
  up to a per-frame constant, which Viterbi decoding ignores);
* ``apply_log``: ``log(y + 1e-20)`` of the softmax output; not together with ``no_softmax``;
* priors from ``--class-frame-counts`` c: p_j = c_j / sum(c); classes with p_j < prior_floor get
  log-prior sqrt(FLT_MAX) (about 1.8e19, which takes them out of the search); the others
  log(p_j + 1e-20); the output is ``y - prior_scale * log p``. Kaldi requires ``no_softmax`` or
  ``apply_log`` when priors are given (subtracting from a probability makes no sense).
"""

from __future__ import annotations

import math

import numpy as np

from nnetavg.backend import get_array_module
from nnetavg.errors import NnetavgError
from nnetavg.nnet.network import Network

FLT_MAX = float(np.finfo(np.float32).max)


def log_priors(counts: np.ndarray, prior_floor: float = 1e-10) -> np.ndarray:
    counts = np.asarray(counts, dtype=np.float64)
    if counts.ndim != 1 or counts.size == 0 or counts.sum() <= 0 or (counts < 0).any():
        raise NnetavgError("class frame counts must be a non-empty vector of non-negative counts with a positive sum")
    p = counts / counts.sum()
    out = np.log(p + 1e-20)
    out[p < prior_floor] = math.sqrt(FLT_MAX)
    return out.astype(np.float32)


class Forward:
    def __init__(self, nnet: Network, transform: Network | None = None, no_softmax: bool = False,
                 apply_log: bool = False, counts: np.ndarray | None = None, prior_scale: float = 1.0,
                 prior_floor: float = 1e-10):
        if no_softmax and apply_log:
            raise NnetavgError("--no-softmax and --apply-log cannot be used together")
        if counts is not None and not (no_softmax or apply_log):
            raise NnetavgError("--class-frame-counts needs --no-softmax=true or --apply-log=true "
                               "(priors are removed from log-posteriors)")
        if no_softmax and nnet.ends_in_softmax():
            nnet = Network(nnet.components[:-1], xp=nnet.xp, dtype=nnet.dtype)
        if transform is not None and transform.output_dim != nnet.input_dim:
            raise NnetavgError(f"the feature transform outputs {transform.output_dim} dims, the network takes {nnet.input_dim}")
        self.nnet, self.transform, self.apply_log = nnet, transform, apply_log
        self.prior = None
        if counts is not None:
            if len(counts) != nnet.output_dim:
                raise NnetavgError(f"class frame counts have {len(counts)} classes, the network has {nnet.output_dim} outputs")
            self.prior = nnet.xp.asarray(prior_scale * log_priors(counts, prior_floor))

    def __call__(self, feats):
        xp = self.nnet.xp
        x = xp.asarray(feats, dtype=self.nnet.dtype)
        if self.transform is not None:
            x = xp.asarray(self.transform.forward(self.transform.xp.asarray(feats, dtype=self.transform.dtype)))
        y = self.nnet.forward(x)
        if self.apply_log:
            y = get_array_module(y).log(y + 1e-20)
        if self.prior is not None:
            y = y - self.prior
        return y
