"""Pdf frame counts as Kaldi's ``analyze-counts``: ``ali_train_pdf.counts``, the priors file of
``nnet-forward --class-frame-counts``. 0.5 is added to every count, so none is zero."""

from __future__ import annotations

import logging

import numpy as np

from nnetavg.errors import NnetavgError
from nnetavg.io.tables import INT_VECTOR, SequentialReader

log = logging.getLogger(__name__)


def analyze_counts(ali_rspecifier: str, counts_dim: int = 0, frame_weights: str = "", utt_weights: str = "") -> np.ndarray:
    """Counts of each id over all frames; ``counts_dim`` is a hint (the vector grows past it for
    larger ids, as Kaldi's: phone ids can exceed the number of pdfs); ``frame_weights`` (vectors)
    and ``utt_weights`` (floats) are rspecifiers weighting each frame's count."""
    from nnetavg.io.tables import FLOAT, VECTOR, RandomAccessReader

    fw = RandomAccessReader(frame_weights, VECTOR) if frame_weights else None
    uw = RandomAccessReader(utt_weights, FLOAT) if utt_weights else None
    counts = np.zeros(max(counts_dim, 0), dtype=np.float64)
    for key, ali in SequentialReader(ali_rspecifier, INT_VECTOR):
        if ali.size == 0:
            continue
        if ali.min() < 0:
            raise NnetavgError(f"{ali_rspecifier}: utterance {key} has a negative id {int(ali.min())}")
        w = np.ones(len(ali))
        if fw is not None:
            if key not in fw:
                log.warning("utterance %s: no frame weights in %s, skipped", key, frame_weights)
                continue
            w = np.asarray(fw[key], dtype=np.float64)
            if len(w) != len(ali):
                raise NnetavgError(f"{frame_weights}: utterance {key} has {len(w)} frame weights for {len(ali)} frames")
        if uw is not None:
            if key not in uw:
                log.warning("utterance %s: no utterance weight in %s, skipped", key, utt_weights)
                continue
            w = w * float(np.asarray(uw[key]).reshape(-1)[0])
        top = int(ali.max())
        if top >= counts.shape[0]:
            counts = np.concatenate([counts, np.zeros(top + 1 - counts.shape[0])])
        counts += np.bincount(ali, weights=w, minlength=counts.shape[0])
    zero = int((counts == 0).sum())
    if zero:
        log.warning("%d of %d classes have zero count", zero, counts.shape[0])
    return counts + 0.5
