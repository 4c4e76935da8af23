"""Maximum-likelihood estimation of a diagonal-covariance GMM acoustic model, in numpy, with
Kaldi's update rules (``gmm-acc-stats-ali``, ``gmm-est``, ``gmm-mixup``).

* Scoring: every Gaussian's log-likelihood of a batch of frames is two GEMMs
  (``gconst + x . mean/var - 0.5 x^2 . 1/var``); a pdf's is the log-sum-exp over its Gaussians,
  which are stored contiguously.
* Accumulation from an alignment: each frame's posterior over the Gaussians of its pdf; zeroth,
  first and second order statistics as GEMMs with the (frames x Gaussians) posterior matrix.
* Update (``MleDiagGmmOptions``' defaults): a Gaussian with less than ``min_gaussian_occupancy``
  frames is removed (kept if it is its pdf's only one), weights floored at ``min_gaussian_weight``,
  variances floored at ``min_variance``.
* Mix-up (``SplitByCount``): the target number of Gaussians is shared out among pdfs in proportion
  to occupancy ** power, no pdf getting more than occupancy / ``min_count``; a pdf grows by
  splitting its heaviest Gaussian into two with means moved by +-``perturb_factor`` standard
  deviations along a random direction (seeded here, unlike Kaldi).
"""

from __future__ import annotations

import heapq
import logging
from dataclasses import dataclass

import numpy as np

from nnetavg.asr.models import LOG_2PI, AmDiagGmm, DiagGmm

log = logging.getLogger(__name__)


@dataclass
class MleOptions:
    min_gaussian_weight: float = 1e-5
    min_gaussian_occupancy: float = 10.0
    min_variance: float = 0.001


class GmmScorer:
    """The stacked parameters of an AmDiagGmm for fast scoring."""

    def __init__(self, am: AmDiagGmm):
        self.am = am
        inv = np.concatenate([1.0 / g.vars for g in am.pdfs])
        means = np.concatenate([g.means for g in am.pdfs])
        self.a = -0.5 * inv                                       # (G, D)
        self.b = means * inv
        self.gconst = np.concatenate([g.gconsts() for g in am.pdfs])
        self.sizes = np.array([g.num_gauss for g in am.pdfs])
        self.starts = np.r_[0, np.cumsum(self.sizes)[:-1]]
        self.comp2pdf = np.repeat(np.arange(am.num_pdfs), self.sizes)
        # scoring runs in single precision, as Kaldi's decodable scores
        self._a32, self._b32, self._g32 = (self.a.astype(np.float32), self.b.astype(np.float32),
                                           self.gconst.astype(np.float32))

    def component_loglikes(self, x: np.ndarray) -> np.ndarray:
        """(N x num_gauss), in single precision."""
        x = np.asarray(x, dtype=np.float32)
        out = x @ self._b32.T
        out += (x * x) @ self._a32.T
        out += self._g32
        return out

    def pdf_loglikes_of(self, x: np.ndarray, pdfs: np.ndarray) -> np.ndarray:
        """(N x num_pdfs) log-likelihoods with only the columns of ``pdfs`` computed (-inf elsewhere):
        an utterance's graph uses a small share of a triphone system's pdfs."""
        pdfs = np.asarray(pdfs)
        sizes = self.sizes[pdfs]
        rows = np.concatenate([np.arange(s, s + n) for s, n in zip(self.starts[pdfs], sizes)])
        x = np.asarray(x, dtype=np.float32)
        comp = x @ self._b32[rows].T
        comp += (x * x) @ self._a32[rows].T
        comp += self._g32[rows]
        local = np.r_[0, np.cumsum(sizes)[:-1]]
        m = np.maximum.reduceat(comp, local, axis=1)
        out = np.full((len(x), len(self.sizes)), -np.inf, dtype=np.float32)
        with np.errstate(invalid="ignore"):
            out[:, pdfs] = m + np.log(np.add.reduceat(np.exp(comp - np.repeat(m, sizes, axis=1)), local, axis=1))
        return out

    def pdf_loglikes(self, comp: np.ndarray) -> np.ndarray:
        """(N x num_pdfs) from (N x num_gauss) component log-likelihoods."""
        m = np.maximum.reduceat(comp, self.starts, axis=1)
        with np.errstate(invalid="ignore"):
            s = np.add.reduceat(np.exp(comp - m[:, self.comp2pdf]), self.starts, axis=1)
            return m + np.log(s)


class GmmAccs:
    """Per-Gaussian statistics (occupancy, sum of x, sum of x^2) and transition counts."""

    def __init__(self, am: AmDiagGmm, num_tids: int):
        g, d = am.num_gauss, am.dim
        self.occ = np.zeros(g)
        self.x = np.zeros((g, d))
        self.x2 = np.zeros((g, d))
        self.trans = np.zeros(num_tids + 1)
        self.loglike = 0.0
        self.frames = 0

    def accumulate(self, scorer: GmmScorer, x: np.ndarray, pdfs: np.ndarray) -> None:
        """Frames ``x`` aligned to ``pdfs``: each pdf's frames scored against its own Gaussians only."""
        x = np.asarray(x, dtype=np.float64)
        order = np.argsort(pdfs, kind="stable")
        counts = np.bincount(pdfs, minlength=len(scorer.sizes))
        ends = np.cumsum(counts)
        for p in np.nonzero(counts)[0]:
            rows = order[ends[p] - counts[p]:ends[p]]
            xp = x[rows]
            c = slice(scorer.starts[p], scorer.starts[p] + scorer.sizes[p])
            comp = scorer.gconst[c] + xp @ scorer.b[c].T + (xp * xp) @ scorer.a[c].T
            m = comp.max(1, keepdims=True)
            e = np.exp(comp - m)
            tot = e.sum(1, keepdims=True)
            post = e / tot
            self.loglike += float((m + np.log(tot)).sum())
            self.occ[c] += post.sum(0)
            self.x[c] += post.T @ xp
            self.x2[c] += post.T @ (xp * xp)
        self.frames += len(pdfs)


def mle_update(am: AmDiagGmm, accs: GmmAccs, opts: MleOptions = MleOptions()) -> tuple[AmDiagGmm, dict]:
    """The ML re-estimate of ``am`` from ``accs`` (Kaldi's MleAmDiagGmmUpdate)."""
    pdfs, start = [], 0
    removed = floored = 0
    for g in am.pdfs:
        n = g.num_gauss
        occ = accs.occ[start:start + n]
        x, x2 = accs.x[start:start + n], accs.x2[start:start + n]
        start += n
        total = occ.sum()
        if total <= 0:
            pdfs.append(g)
            continue
        keep = occ >= opts.min_gaussian_occupancy
        if not keep.any():
            keep = occ == occ.max()
        removed += int((~keep).sum())
        occ, x, x2 = occ[keep], x[keep], x2[keep]
        means = x / occ[:, None]
        var = x2 / occ[:, None] - means ** 2
        floored += int((var < opts.min_variance).sum())
        var = np.maximum(var, opts.min_variance)
        w = np.maximum(occ / total, opts.min_gaussian_weight)
        pdfs.append(DiagGmm(w / w.sum(), means, var))
    new = AmDiagGmm(pdfs)
    return new, {"removed": removed, "floored_variances": floored}


def split_targets(occs: np.ndarray, current: np.ndarray, target: int, power: float, min_count: float) -> np.ndarray:
    """Gaussians per pdf for a total of ``target`` (Kaldi's GetSplitTargets): each added Gaussian
    goes to the pdf with the largest occ**power / count, while occ / count stays >= min_count."""
    counts = np.maximum(current.copy(), 1)
    heap = [(-(o ** power) / c, i) for i, (o, c) in enumerate(zip(occs, counts))]
    heapq.heapify(heap)
    total = int(counts.sum())
    while total < target and heap:
        _, i = heapq.heappop(heap)
        if occs[i] / (counts[i] + 1) < min_count:
            continue
        counts[i] += 1
        total += 1
        heapq.heappush(heap, (-(occs[i] ** power) / counts[i], i))
    return counts


def mixup(am: AmDiagGmm, occs: np.ndarray, target: int, power: float = 0.2, min_count: float = 20.0,
          perturb_factor: float = 0.01, seed: int = 0) -> AmDiagGmm:
    """Grows ``am`` towards ``target`` Gaussians (Kaldi's AmDiagGmm::SplitByCount)."""
    current = np.array([g.num_gauss for g in am.pdfs])
    if target <= current.sum():
        return am
    counts = split_targets(occs, current, target, power, min_count)
    rng = np.random.default_rng(seed)
    out = []
    for g, n in zip(am.pdfs, counts):
        w, m, v = g.weights.copy(), g.means.copy(), g.vars.copy()
        while len(w) < n:
            k = int(w.argmax())
            delta = perturb_factor * np.sqrt(v[k]) * rng.standard_normal(m.shape[1])
            w[k] /= 2.0
            w = np.r_[w, w[k]]
            m = np.vstack([m, m[k] + delta])
            m[k] -= delta
            v = np.vstack([v, v[k]])
        out.append(DiagGmm(w, m, v))
    return AmDiagGmm(out)


def init_single_gaussian(num_pdfs: int, x: np.ndarray) -> AmDiagGmm:
    """Every pdf one Gaussian with the global mean and variance (Kaldi's gmm-init-mono)."""
    x = np.asarray(x, dtype=np.float64)
    mean, var = x.mean(0), np.maximum(x.var(0), 1e-3)
    return AmDiagGmm([DiagGmm(np.ones(1), mean[None].copy(), var[None].copy()) for _ in range(num_pdfs)])


def gaussian_objf(count: float, x: np.ndarray, x2: np.ndarray, var_floor: float = 0.01) -> float:
    """Log-likelihood of ``count`` frames with sums ``x``, ``x2`` under their own ML Gaussian
    (Kaldi's GaussClusterable::Objf, variance floor 0.01)."""
    if count <= 0:
        return 0.0
    mean = x / count
    var = np.maximum(x2 / count - mean * mean, var_floor)
    return float(-0.5 * count * (np.log(var).sum() + len(x) * (LOG_2PI + 1.0)))
