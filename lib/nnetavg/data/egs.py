"""Writing per-job training archives ("egs"): features and pdf alignments of a list of
utterances, in the list's (shuffled) order, checked as training will check them.

Features are stored unspliced (the feature transform splices on the fly while training), so an
archive costs what the features cost, not 11 times that.
"""

from __future__ import annotations

import logging

import numpy as np

from nnetavg.data.utterances import LENGTH_TOLERANCE, DataStats, Warner, check_utterance
from nnetavg.io.tables import INT_VECTOR, MATRIX, RandomAccessReader, TableWriter
from nnetavg.progress import Progress

log = logging.getLogger(__name__)


def copy_egs(utts: list[str], feats_rspecifier: str, ali_rspecifier: str, feats_wspecifier: str,
             ali_wspecifier: str, num_pdfs: int = 0, length_tolerance: int = LENGTH_TOLERANCE) -> DataStats:
    feats = RandomAccessReader(feats_rspecifier, MATRIX)
    alis = RandomAccessReader(ali_rspecifier, INT_VECTOR)
    stats = DataStats()
    warn = Warner()
    feat_dim = None
    progress = Progress("utterances", total=len(utts), period=30.0)
    with TableWriter(feats_wspecifier, MATRIX) as fw, TableWriter(ali_wspecifier, INT_VECTOR) as aw:
        for key in utts:
            progress.update()
            x = feats.get(key)
            if x is None:
                stats.no_features += 1
                warn(f"{feats_rspecifier}: no features for utterance {key}, skipped")
                continue
            if feat_dim is None:
                feat_dim = x.shape[1]
            checked = check_utterance(key, x, alis.get(key), feats_rspecifier, ali_rspecifier, num_pdfs,
                                      feat_dim, stats, warn, length_tolerance, "the first utterance")
            if checked is None:
                continue
            fw.write(key, np.asarray(checked[0], dtype=np.float32))
            aw.write(key, checked[1])
    progress.close()
    return stats
