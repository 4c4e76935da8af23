"""Pdf frame counts as Kaldi's ``analyze-counts``: ``ali_train_pdf.counts``, the priors file of
``nnet-forward --class-frame-counts``. 0.5 is added to every count, so none is zero."""

from __future__ import annotations

import logging

import numpy as np

from nnetavg.errors import NnetavgError
from nnetavg.io.tables import INT_VECTOR, SequentialReader

log = logging.getLogger(__name__)


def analyze_counts(ali_rspecifier: str, counts_dim: int = 0) -> np.ndarray:
    counts = np.zeros(max(counts_dim, 0), dtype=np.float64)
    for key, ali in SequentialReader(ali_rspecifier, INT_VECTOR):
        if ali.size == 0:
            continue
        if ali.min() < 0:
            raise NnetavgError(f"{ali_rspecifier}: utterance {key} has a negative id {int(ali.min())}")
        top = int(ali.max())
        if top >= counts.shape[0]:
            if counts_dim > 0:
                raise NnetavgError(f"{ali_rspecifier}: utterance {key} has id {top} >= --counts-dim={counts_dim}")
            counts = np.concatenate([counts, np.zeros(top + 1 - counts.shape[0])])
        counts += np.bincount(ali, minlength=counts.shape[0])
    zero = int((counts == 0).sum())
    if zero:
        log.warning("%d of %d classes have zero count", zero, counts.shape[0])
    return counts + 0.5
