"""CMVN statistics and the nnet1 feature transform (splice, then global mean/variance).

Stats are Kaldi's ``compute-cmvn-stats`` matrix, 2 x (dim + 1), float64::

    row 0: [ sum_t x_t[0] ... sum_t x_t[dim-1]   count ]
    row 1: [ sum_t x_t[0]^2 ... sum_t x_t[dim-1]^2   0 ]

``apply-cmvn``: ``x - mean`` (``--norm-vars``: ``(x - mean) / sqrt(var)``, var floored at 1e-20).
``cmvn-to-nnet``: ``<AddShift> -mean`` then ``<Rescale> std_dev / sqrt(max(var, 1e-10))``, both with
``<LearnRateCoef> 0``. The feature transform of nnet1 is ``<Splice>`` followed by those two,
computed on *spliced* features.
"""

from __future__ import annotations

import numpy as np

from nnetavg.errors import NnetavgError
from nnetavg.nnet.components import AddShift, Rescale, Splice
from nnetavg.nnet.network import Network


def stats_of(feats: np.ndarray) -> np.ndarray:
    x = np.asarray(feats, dtype=np.float64)
    dim = x.shape[1]
    s = np.zeros((2, dim + 1))
    s[0, :dim] = x.sum(axis=0)
    s[1, :dim] = (x * x).sum(axis=0)
    s[0, dim] = x.shape[0]
    return s


def mean_var(stats: np.ndarray, var_floor: float = 1e-20, name: str = "CMVN stats") -> tuple[np.ndarray, np.ndarray]:
    stats = np.asarray(stats, dtype=np.float64)
    if stats.ndim != 2 or stats.shape[0] != 2 or stats.shape[1] < 2:
        raise NnetavgError(f"{name}: expected a 2 x (dim+1) CMVN stats matrix, got shape {stats.shape}")
    count = stats[0, -1]
    if count < 1.0:
        raise NnetavgError(f"{name}: CMVN stats with count {count} (< 1)")
    mean = stats[0, :-1] / count
    var = np.maximum(stats[1, :-1] / count - mean * mean, var_floor)
    return mean, var


def apply_cmvn(feats: np.ndarray, stats: np.ndarray, norm_vars: bool = False, name: str = "CMVN stats") -> np.ndarray:
    mean, var = mean_var(stats, name=name)
    if feats.shape[1] != mean.shape[0]:
        raise NnetavgError(f"{name}: stats of dim {mean.shape[0]} for features of dim {feats.shape[1]}")
    out = np.asarray(feats, dtype=np.float64) - mean
    if norm_vars:
        out /= np.sqrt(var)
    return out.astype(np.float32)


def cmvn_network(stats: np.ndarray, std_dev: float = 1.0, var_floor: float = 1e-10) -> list:
    """``cmvn-to-nnet``: components ``<AddShift>`` (-mean) and ``<Rescale>`` (std_dev / std)."""
    mean, var = mean_var(stats, var_floor=var_floor)
    dim = mean.shape[0]
    shift, scale = AddShift(dim, dim), Rescale(dim, dim)
    shift.init = {"shift": (-mean).astype(np.float32)}
    scale.init = {"scale": (std_dev / np.sqrt(var)).astype(np.float32)}
    return [shift, scale]


def splice_component(feat_dim: int, context: int) -> Splice:
    offsets = np.arange(-context, context + 1, dtype=np.int32)
    return Splice(feat_dim, feat_dim * len(offsets), offsets)


def make_feature_transform(utterances, splice: int = 5, std_dev: float = 1.0,
                           global_stats: np.ndarray | None = None) -> Network:
    """nnet1's ``final.feature_transform``: splice +-``splice`` frames, then global CMVN of the
    spliced features, estimated from ``utterances`` (an iterable of T x F arrays) unless
    ``global_stats`` (stats of the *unspliced* features) is given, in which case those are tiled
    over the spliced blocks."""
    it = iter(utterances)
    if global_stats is not None:
        mean_var(global_stats)
        feat_dim = global_stats.shape[1] - 1
        sp = splice_component(feat_dim, splice)
        k = len(sp.offsets)
        tiled = np.concatenate([np.tile(global_stats[:, :-1], (1, k)), global_stats[:, -1:]], axis=1)
        return Network([sp] + cmvn_network(tiled, std_dev))
    acc = None
    sp = None
    for feats in it:
        if sp is None:
            sp = splice_component(feats.shape[1], splice)
        elif feats.shape[1] != sp.input_dim:
            raise NnetavgError(f"features of dim {feats.shape[1]} after features of dim {sp.input_dim}")
        s = stats_of(sp.forward(np.asarray(feats, dtype=np.float32)))
        acc = s if acc is None else acc + s
    if acc is None:
        raise NnetavgError("no features to estimate the feature transform from")
    return Network([sp] + cmvn_network(acc, std_dev))
