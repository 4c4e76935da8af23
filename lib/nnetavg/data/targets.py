"""Soft and weighted training targets: nnet1's ``Xent`` on Posterior targets with frame weights.

Hard targets (a pdf id per frame, every weight 1) stay int32 vectors and take the plain
cross-entropy path of :func:`nnetavg.train.trainer.xent_and_derivative`, bit for bit. Anything
else (several pdfs per frame, weights other than 1, ``--frame-weights``/``--utt-weights``) becomes
:class:`SoftTargets`, and the objective is Kaldi's:

* loss ``= -sum_t w_t sum_k p_tk log(y_t[id_tk] + 1e-20)`` (``AvgXent`` per unit of weight),
* target entropy ``= -sum_t w_t sum_c P_tc log(P_tc + 1e-20)``, reported so that
  ``AvgLoss = (loss - entropy) / sum_t w_t`` (0 for a perfect model, as Kaldi's),
* derivative w.r.t. the softmax input ``w_t (y_t - P_t)``,
* a frame is correct (with weight ``w_t``) when the output's arg-max is the target's.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from nnetavg.backend import get_array_module, to_device
from nnetavg.io.posterior import Posterior


@dataclasses.dataclass
class SoftTargets:
    ids: np.ndarray          # (T, K) int32
    weights: np.ndarray      # (T, K) float32 (0 in unused slots)
    frame_weight: np.ndarray  # (T,) float32
    best: np.ndarray         # (T,) int32: arg-max of the target distribution
    entropy: np.ndarray      # (T,) float32: -sum_c P log(P + 1e-20)

    @classmethod
    def build(cls, targets, frame_weight: np.ndarray | None = None) -> "SoftTargets":
        post = targets if isinstance(targets, Posterior) else Posterior.from_alignment(targets)
        ids, w = post.ids, post.weights.astype(np.float32)
        T = ids.shape[0]
        fw = np.ones(T, dtype=np.float32) if frame_weight is None else np.asarray(frame_weight, np.float32)[:T]
        if ids.shape[1] == 1:   # one target per frame (alignments, weighted): no per-frame loop
            p = w[:, 0].astype(np.float64)
            return cls(ids.astype(np.int32), w, fw, ids[:, 0].astype(np.int32),
                       (-p * np.log(p + 1e-20)).astype(np.float32))
        best = np.zeros(T, dtype=np.int32)
        entropy = np.zeros(T, dtype=np.float32)
        for t in range(T):   # merge repeated ids of a frame before arg-max and entropy
            merged: dict[int, float] = {}
            for i, x in zip(ids[t].tolist(), w[t].tolist()):
                if x != 0.0:
                    merged[i] = merged.get(i, 0.0) + x
            if merged:
                best[t] = max(merged, key=merged.get)
                p = np.array(list(merged.values()), dtype=np.float64)
                entropy[t] = -np.sum(p * np.log(p + 1e-20))
        return cls(ids.astype(np.int32), w, fw, best, entropy)

    def __len__(self) -> int:
        return self.ids.shape[0]

    @property
    def shape(self) -> tuple[int, ...]:
        return (len(self),)

    def __getitem__(self, index) -> "SoftTargets":
        return SoftTargets(self.ids[index], self.weights[index], self.frame_weight[index], self.best[index],
                           self.entropy[index])

    def keep(self, mask: np.ndarray) -> "SoftTargets":
        return self[np.flatnonzero(mask)]

    @staticmethod
    def concat(parts: list) -> "SoftTargets":
        """Joins soft targets (alignments among them are converted)."""
        parts = [p if isinstance(p, SoftTargets) else SoftTargets.build(p) for p in parts]
        k = max(p.ids.shape[1] for p in parts)

        def pad(a):
            return a if a.shape[1] == k else np.pad(a, ((0, 0), (0, k - a.shape[1])))
        return SoftTargets(np.concatenate([pad(p.ids) for p in parts]), np.concatenate([pad(p.weights) for p in parts]),
                           np.concatenate([p.frame_weight for p in parts]), np.concatenate([p.best for p in parts]),
                           np.concatenate([p.entropy for p in parts]))

    def to(self, xp) -> "SoftTargets":
        return SoftTargets(*(to_device(a, xp) for a in (self.ids, self.weights, self.frame_weight, self.best,
                                                        self.entropy)))


def soft_xent_and_derivative(y, t: SoftTargets, compute_derivative: bool = True) -> tuple[float, float, float, float]:
    """Kaldi's weighted Xent for softmax outputs ``y`` (N x C, on ``t``'s device). Returns (loss
    sum, weighted correct frames, weight sum, entropy sum); replaces ``y`` by the derivative w.r.t.
    the softmax input when ``compute_derivative``."""
    xp = get_array_module(y)
    rows = xp.arange(y.shape[0])
    fw = t.frame_weight.astype(y.dtype, copy=False)
    loss = 0.0
    for k in range(t.ids.shape[1]):
        loss -= float((fw * t.weights[:, k] * xp.log(y[rows, t.ids[:, k]] + 1e-20)).sum())
    correct = float((fw * (y.argmax(axis=1) == t.best)).sum())
    weight = float(fw.sum())
    entropy = float((fw * t.entropy).sum())
    if compute_derivative:
        y *= fw[:, None]
        for k in range(t.ids.shape[1]):   # one slot at a time: a row's ids within a slot are one per row
            y[rows, t.ids[:, k]] -= (fw * t.weights[:, k]).astype(y.dtype, copy=False)
    return loss, correct, weight, entropy
