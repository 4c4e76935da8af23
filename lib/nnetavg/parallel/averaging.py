"""Averaging model files (``nnet-average``), Kaldi nnet2 ``nnet-am-average`` semantics.

``params = sum_k w_k params_k`` with the weights normalised to sum to 1 (uniform by default), over
every parameter in the flat buffer. Models are read one at a time and added into the first
one's buffer, so memory stays at about two models whatever their number. All models must have the
topology of the first (same components, dims and splice offsets); otherwise the error names the
file and the first component that differs.
"""

from __future__ import annotations

import logging
import os
from typing import Sequence

import numpy as np

from nnetavg.errors import NnetavgError, TopologyError
from nnetavg.io.nnet1 import read_nnet
from nnetavg.nnet.network import Network
from nnetavg.report import figures

log = logging.getLogger(__name__)


def normalised_weights(n: int, weights: Sequence[float] | None) -> np.ndarray:
    if weights is None:
        return np.full(n, 1.0 / n)
    w = np.asarray(weights, dtype=np.float64)
    if w.shape != (n,):
        raise NnetavgError(f"{len(w)} weights for {n} models")
    if np.any(w < 0) or w.sum() <= 0:
        raise NnetavgError("weights must be non-negative and not all zero")
    return w / w.sum()


def average_model_files(paths: Sequence[str], weights: Sequence[float] | None = None) -> Network:
    if not paths:
        raise NnetavgError("no models to average")
    w = normalised_weights(len(paths), weights)
    acc = read_nnet(paths[0], dtype=np.float32)
    if not np.all(np.isfinite(acc.params)):
        raise NnetavgError(f"{paths[0]}: the model has NaN or infinite parameters; not averaging it")
    acc.params *= np.float32(w[0])
    for path, wk in zip(paths[1:], w[1:]):
        m = read_nnet(path, dtype=np.float32)
        try:
            acc.check_same_topology(m)
        except TopologyError as exc:
            raise TopologyError(f"{path} does not match {paths[0]}: {exc}") from None
        if not np.all(np.isfinite(m.params)):
            raise NnetavgError(f"{path}: the model has NaN or infinite parameters; not averaging it")
        acc.params += np.float32(wk) * m.params
        del m
    return acc


def successful_models(job_logs: Sequence[str], models: Sequence[str], max_gap: float = 1.0) -> list[int]:
    """Indices of the jobs whose model may go into the average (Kaldi's "successful models").

    A job is left out, with a warning, when its model file is missing (the job failed), its log
    has no final ``done`` line or the objective there is not finite, or its cross-entropy is
    worse than the best job's by more than ``max_gap`` nats per frame (an outlier: a job that
    diverged without producing NaN).
    """
    objective: dict[int, float] = {}
    for i, (lg, model) in enumerate(zip(job_logs, models)):
        if not os.path.exists(model):
            log.warning("job %d: no model %s (the job failed; see %s): left out of the average", i + 1, model, lg)
            continue
        done = figures([lg], grep=" done ") if os.path.exists(lg) else []
        ce = done[-1].get("cross-entropy", float("nan")) if done else float("nan")
        if not np.isfinite(ce):
            log.warning("job %d: no finite objective in %s: %s left out of the average", i + 1, lg, model)
            continue
        objective[i] = ce
    if not objective:
        raise NnetavgError(f"no successful job among {len(models)}: nothing to average (see {job_logs[0]} ...)")
    best = min(objective.values())
    keep = []
    for i, ce in sorted(objective.items()):
        if ce > best + max_gap:
            log.warning("job %d: cross-entropy %.4f is worse than the best job's %.4f by more than %g: "
                        "%s left out of the average", i + 1, ce, best, max_gap, models[i])
        else:
            keep.append(i)
    return keep
