"""Labelled utterances for training and evaluation, with nnet1's checks and counts.

For each utterance of the features table: look up its targets (a pdf alignment, or a Posterior
as ``ali-to-post`` writes it), check them, run the feature transform, and yield ``(key, frames,
targets)``: int32 pdf ids when every frame has one target of weight 1 (the common case, and the
plain cross-entropy path), else :class:`~nnetavg.data.targets.SoftTargets` (soft targets, or
per-frame / per-utterance weights; frames of weight 0 are dropped, as nnet1 does). What is wrong with one utterance is warned
about, counted and skipped (as ``nnet-train-frmshuff`` does); what is wrong with the setup stops
the run with an error naming the table and the utterance:

=========================================  =================================================
problem                                    action
=========================================  =================================================
no alignment for the utterance             warn, count ``no-targets``, skip
no frame / utterance weight (when given)   warn, count ``no-weights``, skip
lengths differ by more than the tolerance  warn, count ``length-mismatch``, skip
lengths differ by at most the tolerance    truncate both to the shorter (nnet1), count
NaN or Inf in the features                 warn, count ``non-finite``, skip
feature dim differs from the model's       error (every utterance would fail)
pdf id outside the network's outputs       error (wrong alignment or wrong model)
=========================================  =================================================
"""

from __future__ import annotations

import dataclasses
import logging
from typing import Iterator

import numpy as np

from nnetavg.errors import NnetavgError
from nnetavg.data.targets import SoftTargets
from nnetavg.io.posterior import Posterior
from nnetavg.io.tables import FLOAT, TARGETS, VECTOR, RandomAccessReader, SequentialReader
from nnetavg.log import kv
from nnetavg.nnet.network import Network

LENGTH_TOLERANCE = 5   # frames of feature/alignment length difference tolerated by default (Kaldi: 5)

log = logging.getLogger(__name__)

MAX_WARNINGS = 10


@dataclasses.dataclass
class DataStats:
    utterances: int = 0
    frames: int = 0
    no_features: int = 0
    no_targets: int = 0
    length_mismatch: int = 0
    truncated: int = 0
    non_finite: int = 0
    no_weights: int = 0

    @property
    def skipped(self) -> int:
        return self.no_features + self.no_targets + self.length_mismatch + self.non_finite + self.no_weights

    def summary(self) -> str:
        extra = {"no_weights": self.no_weights} if self.no_weights else {}
        return kv(utterances=self.utterances, skipped=self.skipped, no_features=self.no_features, no_targets=self.no_targets,
                  length_mismatch=self.length_mismatch, truncated=self.truncated, non_finite=self.non_finite, **extra)


@dataclasses.dataclass
class TargetWeights:
    """nnet1's ``--frame-weights`` (a float vector per utterance) and ``--utt-weights`` (a float
    per utterance), rspecifiers; empty: every frame weighs 1."""
    frame_weights: str = ""
    utt_weights: str = ""

    def __bool__(self) -> bool:
        return bool(self.frame_weights or self.utt_weights)


class Warner:
    def __init__(self):
        self.n = 0

    def __call__(self, msg: str) -> None:
        self.n += 1
        if self.n <= MAX_WARNINGS:
            log.warning(msg)
        elif self.n == MAX_WARNINGS + 1:
            log.warning("more utterance problems follow; only counted from now on (see the summary)")


def check_utterance(key: str, feats: np.ndarray, ali: np.ndarray | None, feats_name: str, ali_name: str,
                    num_pdfs: int, feat_dim: int, stats: DataStats, warn, length_tolerance: int = LENGTH_TOLERANCE,
                    dim_owner: str = "the network"):
    """The checks of the table above for one utterance: ``(feats, ali)`` (maybe truncated) when it
    is usable, None when it is skipped (warned and counted); raises on setup errors."""
    if feats.ndim != 2 or feats.shape[1] != feat_dim:
        raise NnetavgError(f"{feats_name}: utterance {key} has feature dim {feats.shape[-1]}, "
                           f"but {dim_owner} expects {feat_dim}")
    if ali is None:
        stats.no_targets += 1
        warn(f"{ali_name}: no alignment for utterance {key}, skipped")
        return None
    T, L = feats.shape[0], ali.shape[0]
    if T != L:
        if abs(T - L) > length_tolerance:
            stats.length_mismatch += 1
            warn(f"utterance {key}: {T} frames in {feats_name} but {L} in {ali_name} "
                 f"(more than --length-tolerance={length_tolerance}), skipped")
            return None
        stats.truncated += 1
        T = min(T, L)
        feats, ali = feats[:T], ali[:T]
    if not np.all(np.isfinite(feats)):
        stats.non_finite += 1
        warn(f"{feats_name}: utterance {key} has NaN or Inf in its features, skipped")
        return None
    if num_pdfs > 0 and T and (ali.min() < 0 or ali.max() >= num_pdfs):
        bad = int(ali.max()) if ali.max() >= num_pdfs else int(ali.min())
        raise NnetavgError(f"{ali_name}: utterance {key} has pdf id {bad}, but the network has "
                           f"{num_pdfs} outputs (ids 0..{num_pdfs - 1})")
    stats.utterances += 1
    stats.frames += T
    return feats, ali


def labelled_utterances(feats_rspecifier: str, ali_rspecifier: str, num_pdfs: int, input_dim: int,
                        feature_transform: Network | None, stats: DataStats,
                        length_tolerance: int = LENGTH_TOLERANCE, shard: tuple[int, int] = (0, 1),
                        weights: TargetWeights | None = None) -> Iterator[tuple[str, np.ndarray, object]]:
    """``shard = (i, n)`` keeps the utterances whose position in the table is i modulo n (so n
    ranks can share one table)."""
    alis = RandomAccessReader(ali_rspecifier, TARGETS)
    weigher = _Weigher(weights, length_tolerance) if weights else None
    warn = Warner()
    want_dim = feature_transform.input_dim if feature_transform is not None else input_dim
    owner = "the feature transform" if feature_transform is not None else "the network"
    for pos, (key, feats) in enumerate(SequentialReader(feats_rspecifier)):
        if pos % shard[1] != shard[0]:
            continue
        checked = check_utterance(key, feats, alis.get(key), feats_rspecifier, ali_rspecifier, num_pdfs,
                                  want_dim, stats, warn, length_tolerance, owner)
        if checked is None:
            continue
        x, targets = checked
        frame_weight = None
        if weigher is not None:
            frame_weight = weigher(key, x.shape[0], stats, warn)
            if frame_weight is None:
                continue
            x, targets = x[:frame_weight.shape[0]], targets[:frame_weight.shape[0]]
        x = np.asarray(x, dtype=np.float32)
        if feature_transform is not None:
            x = np.asarray(feature_transform.forward(x), dtype=np.float32)
            if x.shape[1] != input_dim:
                raise NnetavgError(f"{feats_rspecifier}: features are of dim {x.shape[1]} after the feature "
                                   f"transform, but the network takes {input_dim}")
        hard = targets.as_alignment() if isinstance(targets, Posterior) else np.asarray(targets, dtype=np.int32)
        if frame_weight is None and hard is not None:
            yield key, x, hard
            continue
        soft = SoftTargets.build(targets, frame_weight)
        keep = soft.frame_weight > 0
        if not keep.all():
            if not keep.any():
                continue
            x, soft = x[keep], soft.keep(keep)
        yield key, x, soft


class _Weigher:
    """Per-frame weights of one utterance (frame weights times the utterance weight), or None
    when the utterance is to be skipped (warned and counted)."""

    def __init__(self, weights: TargetWeights, length_tolerance: int):
        self.w = weights
        self.frames = RandomAccessReader(weights.frame_weights, VECTOR) if weights.frame_weights else None
        self.utts = RandomAccessReader(weights.utt_weights, FLOAT) if weights.utt_weights else None
        self.tolerance = length_tolerance

    def __call__(self, key: str, frames: int, stats: DataStats, warn) -> np.ndarray | None:
        fw = np.ones(frames, dtype=np.float32)
        if self.frames is not None:
            v = self.frames.get(key)
            if v is None:
                stats.no_weights += 1
                warn(f"{self.w.frame_weights}: no per-frame weights for utterance {key}, skipped")
                return None
            v = np.asarray(v, dtype=np.float32).reshape(-1)
            if abs(v.shape[0] - frames) > self.tolerance:
                stats.length_mismatch += 1
                warn(f"utterance {key}: {frames} frames but {v.shape[0]} per-frame weights in "
                     f"{self.w.frame_weights}, skipped")
                return None
            if v.size and (not np.all(np.isfinite(v)) or v.min() < 0):
                raise NnetavgError(f"{self.w.frame_weights}: utterance {key} has a negative or non-finite frame weight")
            fw = v[:frames]
        if self.utts is not None:
            u = self.utts.get(key)
            if u is None:
                stats.no_weights += 1
                warn(f"{self.w.utt_weights}: no weight for utterance {key}, skipped")
                return None
            u = float(np.asarray(u).reshape(-1)[0])
            if not np.isfinite(u) or u < 0:
                raise NnetavgError(f"{self.w.utt_weights}: utterance {key} has weight {u} (must be >= 0)")
            if u == 0.0:
                return None
            fw = fw * np.float32(u)
        return fw


def held_out_frames(utterances, max_frames: int, source: str) -> tuple[np.ndarray, np.ndarray] | None:
    """The first ``max_frames`` frames (0: all) and their pdf targets from an iterator of
    ``(key, x, t)`` (e.g. :func:`labelled_utterances`), as two host arrays; None when the targets
    are soft (Posteriors). An error naming ``source`` when there are no frames."""
    xs, ts, n = [], [], 0
    for _, x, t in utterances:
        if not isinstance(t, np.ndarray):
            return None
        xs.append(x)
        ts.append(t)
        n += len(t)
        if max_frames and n >= max_frames:
            break
    if not xs:
        raise NnetavgError(f"no frames in {source}")
    x, t = np.concatenate(xs), np.concatenate(ts)
    return (x[:max_frames], t[:max_frames]) if max_frames else (x, t)
