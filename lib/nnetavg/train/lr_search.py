"""Per-chunk learning-rate search ("ASGD-search" of 003, after CNTK's SearchForBestLearnRate,
literature.md section 3.4), on a small sample of the data chunk (about 3%):

1. the sample is split: two thirds to train on, one third held out;
2. baseline: the cross-entropy of the current model on the held-out third (learning rate 0);
3. candidate: the previous chunk's rate divided by 0.618^2 (the initial rate for the first chunk),
   at most ``max_lr``;
4. train a copy of the model on the two thirds with the candidate (one pass) and measure it on the
   held-out third; while that is NaN or not below the baseline, multiply the candidate by 0.618
   and try again (at most ``max_tries`` times, never below ``min_lr``).

CNTK judges a candidate by the training criterion of the search pass itself; on the small samples
of a chunk that rewards rates that overfit the sample (on the synthetic recipe the rate then grew
by 1/0.618^2 every chunk until training diverged), hence the held-out third here.

The search costs a few passes over 3% of a chunk. CNTK's refinement step (bisection between the
found rate and 0.01/minibatch in the first epochs) is left out.
"""

from __future__ import annotations

import dataclasses
import logging

import numpy as np

from nnetavg.nnet.network import Network
from nnetavg.train.optim import SGD
from nnetavg.train.trainer import Trainer, TrainOptions, mean_cross_entropy

log = logging.getLogger(__name__)

SHRINK = 0.618


@dataclasses.dataclass
class SearchResult:
    learn_rate: float
    baseline: float
    criterion: float
    tries: int


def _criterion_at_rate(nnet: Network, x: np.ndarray, t: np.ndarray, xh: np.ndarray, th: np.ndarray, lr: float,
                       minibatch: int, seed: int) -> float:
    trial = nnet.copy()
    tr = Trainer(trial, SGD(trial), TrainOptions(learn_rate=lr, minibatch_size=minibatch))
    order = np.random.default_rng(seed).permutation(len(t))
    for i in range(0, max(1, len(order) - minibatch + 1), minibatch):
        idx = order[i:i + minibatch]
        try:
            tr.step(x[idx], t[idx])
        except Exception:  # the objective blew up: this rate is too large
            return float("nan")
    return mean_cross_entropy(trial, xh, th)


def search_learning_rate(nnet: Network, x: np.ndarray, t: np.ndarray, start_lr: float, minibatch: int = 256,
                         min_lr: float = 1e-7, max_tries: int = 12, seed: int = 0,
                         max_lr: float = float("inf")) -> SearchResult:
    cut = (2 * len(t)) // 3
    x, t, xh, th = x[:cut], t[:cut], x[cut:], t[cut:]
    baseline = mean_cross_entropy(nnet, xh, th)
    lr = min(start_lr, max_lr)
    crit = float("nan")
    for tries in range(1, max_tries + 1):
        crit = _criterion_at_rate(nnet, x, t, xh, th, lr, minibatch, seed)
        if np.isfinite(crit) and crit < baseline:
            return SearchResult(lr, baseline, crit, tries)
        if lr * SHRINK < min_lr:
            break
        lr *= SHRINK
    log.warning("learning-rate search: no rate down to %.3g improved on the baseline %.4g; using %.3g",
                lr, baseline, lr)
    return SearchResult(lr, baseline, crit, max_tries)
