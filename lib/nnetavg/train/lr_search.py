"""Per-chunk learning-rate search ("ASGD-search" of 003, after CNTK's SearchForBestLearnRate,
literature.md section 3.4), on a small sample of the data chunk (about 3%):

1. baseline: the cross-entropy of the current model on the sample (learning rate 0);
2. candidate: the previous chunk's rate divided by 0.618^2 (the initial rate for the first chunk);
3. train a copy of the model on the sample with the candidate (one pass) and take its average
   training cross-entropy; while that is NaN or not below the baseline, multiply the candidate by
   0.618 and try again (at most ``max_tries`` times, never below ``min_lr``).

The search costs a few passes over 3% of a chunk. CNTK's refinement step (bisection between the
found rate and 0.01/minibatch in the first epochs) is left out.
"""

from __future__ import annotations

import dataclasses
import logging

import numpy as np

from nnetavg.nnet.network import Network
from nnetavg.train.optim import SGD
from nnetavg.train.trainer import Trainer, TrainOptions, xent_and_derivative

log = logging.getLogger(__name__)

SHRINK = 0.618


@dataclasses.dataclass
class SearchResult:
    learn_rate: float
    baseline: float
    criterion: float
    tries: int


def _criterion_at_rate(nnet: Network, x: np.ndarray, t: np.ndarray, lr: float, minibatch: int, seed: int) -> float:
    trial = nnet.copy()
    tr = Trainer(trial, SGD(trial), TrainOptions(learn_rate=lr, minibatch_size=minibatch))
    order = np.random.default_rng(seed).permutation(len(t))
    loss, frames = 0.0, 0
    for i in range(0, len(order) - minibatch + 1, minibatch):
        idx = order[i:i + minibatch]
        try:
            l, _ = tr.step(x[idx], t[idx])
        except Exception:  # the objective blew up: this rate is too large
            return float("nan")
        loss += l
        frames += len(idx)
    return loss / frames if frames else float("nan")


def search_learning_rate(nnet: Network, x: np.ndarray, t: np.ndarray, start_lr: float, minibatch: int = 256,
                         min_lr: float = 1e-7, max_tries: int = 12, seed: int = 0) -> SearchResult:
    xs = nnet.xp.asarray(x.astype(nnet.dtype, copy=False))
    y = nnet.forward(xs)
    base, _ = xent_and_derivative(y, nnet.xp.asarray(t), compute_derivative=False)
    baseline = base / len(t)
    lr = start_lr
    crit = float("nan")
    for tries in range(1, max_tries + 1):
        crit = _criterion_at_rate(nnet, x, t, lr, minibatch, seed)
        if np.isfinite(crit) and crit < baseline:
            return SearchResult(lr, baseline, crit, tries)
        if lr * SHRINK < min_lr:
            break
        lr *= SHRINK
    log.warning("learning-rate search: no rate down to %.3g improved on the baseline %.4g; using %.3g",
                lr, baseline, lr)
    return SearchResult(lr, baseline, crit, max_tries)
