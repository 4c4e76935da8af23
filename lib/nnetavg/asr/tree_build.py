"""Phonetic decision trees, as Kaldi builds them for a triphone system (``acc-tree-stats``,
``cluster-phones``, ``compile-questions``, ``build-tree``, ``gmm-init-model``, ``convert-ali``).

* **Tree statistics**: for every aligned frame, the event (left phone, phone, right phone, pdf
  class) and the frame's sufficient statistics (count, sum x, sum x^2). The context of a
  context-independent phone (silence) is recorded as 0, as ``--ci-phones`` does.
* **Questions**: the phone sets of ``phones/sets`` clustered bottom-up by the likelihood of their
  pooled statistics (each merge a question: a hierarchy of phone classes, as ``cluster-phones``
  gives), plus ``phones/extra_questions``; for the pdf class, {0}, {0,1}, ... as
  ``compile-questions`` generates them.
* **Building**: one root per line of ``phones/roots`` (``shared``: one leaf for all of the phones'
  pdf classes to start with; ``not-split``: never split), then greedy splitting, over all roots at
  once, of the leaf whose best question gains most likelihood (a leaf's likelihood is that of a
  single diagonal Gaussian on its statistics, variances floored at 0.01), until ``max_leaves`` or
  a gain below ``thresh``; then leaves of one root are merged while a merge costs less than
  ``cluster_thresh`` (-1: the gain of the last split), as ``build-tree``.
"""

from __future__ import annotations

import heapq
import logging
from dataclasses import dataclass

import numpy as np

from nnetavg.asr.gmm_est import gaussian_objf
from nnetavg.asr.models import (PDF_CLASS, AmDiagGmm, ConstantEventMap, ContextDependency, DiagGmm, EventMap,
                                SplitEventMap, TableEventMap, Topology, TransitionModel)
from nnetavg.errors import NnetavgError

log = logging.getLogger(__name__)
VAR_FLOOR = 0.01


def phone_instances(tids: np.ndarray, tm: TransitionModel) -> list[tuple[int, int, int]]:
    """(phone, first frame, end frame) of each phone of an alignment (Kaldi's SplitToPhones). A
    phone starts where its first HMM state starts: state 0 after a frame of another state or
    another phone, or after a transition into the final state. This reads both orders of
    transition ids within a state: ours (self-loops, then the forward transition) and Kaldi's
    default reordered one (the forward transition first, as compile-train-graphs --reorder writes)."""
    tids = np.asarray(tids)
    if len(tids) == 0:
        return []
    phone = tm.tid2phone[tids]
    hs = tm.tid2hmm_state[tids]
    to_final = tm.is_final[tids]
    prev_other = np.r_[True, (hs[:-1] != 0) | (phone[:-1] != phone[1:]) | to_final[:-1]]
    starts = np.nonzero((hs == 0) & prev_other)[0]
    if len(starts) == 0 or starts[0] != 0:
        raise NnetavgError("alignment does not start at the first state of a phone")
    ends = np.r_[starts[1:], len(tids)]
    return [(int(phone[a]), int(a), int(b)) for a, b in zip(starts, ends)]


@dataclass
class TreeStats:
    events: np.ndarray       # (E, 4): left, phone, right, pdf class
    count: np.ndarray        # (E,)
    x: np.ndarray            # (E, D)
    x2: np.ndarray           # (E, D)


def pool_events(events: np.ndarray, x: np.ndarray) -> TreeStats:
    """Frames' events and features pooled into one row of statistics per distinct event."""
    uniq, inv = np.unique(events, axis=0, return_inverse=True)
    inv = inv.ravel()
    sx = np.zeros((len(uniq), x.shape[1]))
    sx2 = np.zeros((len(uniq), x.shape[1]))
    np.add.at(sx, inv, x)
    np.add.at(sx2, inv, x * x)
    return TreeStats(uniq, np.bincount(inv, minlength=len(uniq)).astype(np.float64), sx, sx2)


def acc_tree_stats(tm: TransitionModel, feats: dict[str, np.ndarray], alis: dict[str, np.ndarray],
                   ci_phones: set[int]) -> TreeStats:
    """Kaldi's acc-tree-stats with context width 3."""
    rows, xs = [], []
    for utt, tids in alis.items():
        x = feats[utt]
        inst = phone_instances(tids, tm)
        ev = np.empty((len(tids), 4), dtype=np.int64)
        for i, (phone, a, b) in enumerate(inst):
            left = inst[i - 1][0] if i > 0 else 0
            right = inst[i + 1][0] if i + 1 < len(inst) else 0
            if phone in ci_phones:
                left = right = 0
            ev[a:b, 0], ev[a:b, 1], ev[a:b, 2] = left, phone, right
        ev[:, 3] = tm.tid2pdf_class[tids]
        rows.append(ev)
        xs.append(np.asarray(x, np.float64))
    return pool_events(np.concatenate(rows), np.concatenate(xs))


def _objf(count, x, x2):
    return gaussian_objf(count, x, x2, VAR_FLOOR)


def _objf_many(count: np.ndarray, x: np.ndarray, x2: np.ndarray) -> np.ndarray:
    c = np.maximum(count, 1e-10)[:, None]
    mean = x / c
    var = np.maximum(x2 / c - mean * mean, VAR_FLOOR)
    d = x.shape[1]
    out = -0.5 * count * (np.log(var).sum(1) + d * (np.log(2 * np.pi) + 1.0))
    return np.where(count > 0, out, 0.0)


def cluster_phones(stats: TreeStats, sets: list[list[int]]) -> list[list[int]]:
    """Questions from phone sets: bottom-up merging of the sets (pooled over contexts and pdf
    classes) by least loss of likelihood; every cluster formed is a question."""
    d = stats.x.shape[1]
    clusters = []
    for s in sets:
        m = np.isin(stats.events[:, 1], s)
        clusters.append((list(s), float(stats.count[m].sum()), stats.x[m].sum(0), stats.x2[m].sum(0)))
    clusters = [c for c in clusters if c[1] > 0] + [(list(s), 0.0, np.zeros(d), np.zeros(d))
                                                   for s in sets if not np.isin(stats.events[:, 1], s).any()]
    questions = []
    active = list(clusters)
    while len(active) > 1:
        best = None
        for i in range(len(active)):
            for j in range(i + 1, len(active)):
                a, b = active[i], active[j]
                loss = _objf(a[1], a[2], a[3]) + _objf(b[1], b[2], b[3]) - _objf(a[1] + b[1], a[2] + b[2], a[3] + b[3])
                if best is None or loss < best[0]:
                    best = (loss, i, j)
        _, i, j = best
        a, b = active[i], active[j]
        merged = (sorted(a[0] + b[0]), a[1] + b[1], a[2] + b[2], a[3] + b[3])
        active = [c for k, c in enumerate(active) if k not in (i, j)] + [merged]
        questions.append(merged[0])
    # the single sets are questions too (Kaldi's tree includes its leaves)
    return [list(s) for s in sets] + questions[:-1]


@dataclass
class _Leaf:
    idx: np.ndarray          # rows of the stats in this leaf
    root: int
    objf: float
    node: dict               # the tree node this leaf is ({"leaf": ...} until split)


class TreeBuilder:
    def __init__(self, stats: TreeStats, roots: list[tuple[list[int], bool, bool]], questions: list[list[int]],
                 topo: Topology):
        self.stats, self.roots, self.topo = stats, roots, topo
        self.num_phones = max(max(p) for p, _, _ in roots) + 1
        max_classes = max(topo.num_pdf_classes(p) for p in topo.phones)
        uniq = []
        for q in questions:
            t = tuple(sorted(set(q)))
            if t and t not in uniq:
                uniq.append(t)
        self.phone_q = np.zeros((len(uniq), self.num_phones))
        for i, q in enumerate(uniq):
            self.phone_q[i, list(q)] = 1.0
        self.phone_questions = uniq
        self.class_questions = [tuple(range(k + 1)) for k in range(max_classes - 1)]
        self.class_q = np.zeros((len(self.class_questions), max_classes))
        for i, q in enumerate(self.class_questions):
            self.class_q[i, list(q)] = 1.0

    def _best_split(self, idx: np.ndarray):
        s = self.stats
        ev, c, x, x2 = s.events[idx], s.count[idx], s.x[idx], s.x2[idx]
        total = _objf(c.sum(), x.sum(0), x2.sum(0))
        best = (0.0, None, None)
        for key, col, qmat, qs in ((PDF_CLASS, 3, self.class_q, self.class_questions),
                                   (0, 0, self.phone_q, self.phone_questions),
                                   (1, 1, self.phone_q, self.phone_questions),
                                   (2, 2, self.phone_q, self.phone_questions)):
            vals = ev[:, col]
            nv = qmat.shape[1]
            if len(np.unique(vals)) < 2:
                continue
            vc = np.bincount(vals, c, minlength=nv)
            vx = np.zeros((nv, x.shape[1]))
            vx2 = np.zeros((nv, x.shape[1]))
            np.add.at(vx, vals, x)
            np.add.at(vx2, vals, x2)
            yc, yx, yx2 = qmat @ vc, qmat @ vx, qmat @ vx2
            nc, nx, nx2 = vc.sum() - yc, vx.sum(0) - yx, vx2.sum(0) - yx2
            ok = (yc > 0) & (nc > 0)
            if not ok.any():
                continue
            gain = _objf_many(yc, yx, yx2) + _objf_many(nc, nx, nx2) - total
            gain[~ok] = -np.inf
            q = int(gain.argmax())
            if gain[q] > best[0]:
                best = (float(gain[q]), key, qs[q])
        return total, best

    def build(self, max_leaves: int, thresh: float = 300.0, cluster_thresh: float = -1.0) -> tuple[ContextDependency, dict]:
        leaves, heap, roots_nodes = [], [], []
        for r, (phones, shared, split) in enumerate(self.roots):
            if not shared:
                raise NnetavgError("phones/roots: 'not-shared' roots are not supported (use 'shared')")
            idx = np.nonzero(np.isin(self.stats.events[:, 1], phones))[0]
            node = {"leaf": len(leaves)}
            roots_nodes.append(node)
            total, best = self._best_split(idx) if split and len(idx) else (0.0, (0.0, None, None))
            leaves.append(_Leaf(idx, r, total, node))
            if best[1] is not None:
                heapq.heappush(heap, (-best[0], len(leaves) - 1, best))
        num_leaves = len(leaves)
        last_gain = 0.0
        splits = 0
        while heap and num_leaves < max_leaves:
            neg, li, (gain, key, q) = heapq.heappop(heap)
            if gain < thresh:
                break
            leaf = leaves[li]
            col = 3 if key == PDF_CLASS else key
            yes = np.isin(self.stats.events[leaf.idx, col], q)
            node = leaf.node
            node.clear()
            node.update(key=key, q=q, yes={}, no={})
            for side, sel in (("yes", yes), ("no", ~yes)):
                idx = leaf.idx[sel]
                child = node[side]
                total, best = self._best_split(idx)
                child["leaf"] = len(leaves)
                leaves.append(_Leaf(idx, leaf.root, total, child))
                if best[1] is not None:
                    heapq.heappush(heap, (-best[0], len(leaves) - 1, best))
            leaf.idx = None
            num_leaves += 1
            splits += 1
            last_gain = gain
        # clustering of the leaves within each root
        if cluster_thresh < 0:
            cluster_thresh = last_gain
        live = [i for i, lf in enumerate(leaves) if lf.idx is not None]
        pdf_of = {}
        merges = 0
        s = self.stats
        for r in range(len(self.roots)):
            group = [[i] for i in live if leaves[i].root == r]
            st = [(s.count[leaves[i].idx].sum(), s.x[leaves[i].idx].sum(0), s.x2[leaves[i].idx].sum(0)) for i in live
                  if leaves[i].root == r]
            while cluster_thresh > 0 and len(group) > 1:
                best = None
                for a in range(len(group)):
                    for b in range(a + 1, len(group)):
                        ca, cb = st[a], st[b]
                        cost = _objf(*ca) + _objf(*cb) - _objf(ca[0] + cb[0], ca[1] + cb[1], ca[2] + cb[2])
                        if best is None or cost < best[0]:
                            best = (cost, a, b)
                if best[0] >= cluster_thresh:
                    break
                _, a, b = best
                group[a] += group[b]
                st[a] = (st[a][0] + st[b][0], st[a][1] + st[b][1], st[a][2] + st[b][2])
                del group[b], st[b]
                merges += 1
            for g in group:
                pdf = len(set(pdf_of.values()))
                for i in g:
                    pdf_of[i] = pdf
        table: list[EventMap | None] = [None] * self.num_phones
        for r, (phones, _, _) in enumerate(self.roots):
            em = _to_event_map(roots_nodes[r], pdf_of)
            for p in phones:
                table[p] = em
        tree = ContextDependency(3, 1, TableEventMap(1, table))
        info = {"leaves_after_split": num_leaves, "pdfs": len(set(pdf_of.values())), "merges": merges,
                "last_split_gain": last_gain, "cluster_thresh": cluster_thresh}
        self.leaf_pdf = {i: pdf_of[i] for i in live}
        self.leaves = leaves
        return tree, info


def _to_event_map(node: dict, pdf_of: dict) -> EventMap:
    if "leaf" in node:
        return ConstantEventMap(pdf_of[node["leaf"]])
    return SplitEventMap(node["key"], frozenset(node["q"]), _to_event_map(node["yes"], pdf_of),
                         _to_event_map(node["no"], pdf_of))


def init_model_from_stats(tree: ContextDependency, stats: TreeStats, topo: Topology) -> tuple[TransitionModel, AmDiagGmm, np.ndarray]:
    """gmm-init-model: the transition model of the tree and one Gaussian per pdf from the pooled
    tree statistics of its events; also the pdfs' occupancies (for the mix-up)."""
    tm = TransitionModel.build(topo, tree)
    n = tm.num_pdfs
    d = stats.x.shape[1]
    c, x, x2 = np.zeros(n), np.zeros((n, d)), np.zeros((n, d))
    for i, (l, p, r, pc) in enumerate(stats.events):
        pdf = tree.compute((int(l), int(p), int(r)), int(pc))
        c[pdf] += stats.count[i]
        x[pdf] += stats.x[i]
        x2[pdf] += stats.x2[i]
    gx, gx2, gc = x.sum(0), x2.sum(0), c.sum()
    pdfs = []
    for k in range(n):
        if c[k] <= 0:
            log.warning("pdf %d has no statistics: initialised with the global mean and variance", k)
            mean, var = gx / gc, gx2 / gc - (gx / gc) ** 2
        else:
            mean = x[k] / c[k]
            var = x2[k] / c[k] - mean * mean
        pdfs.append(DiagGmm(np.ones(1), mean[None], np.maximum(var, 0.001)[None]))
    return tm, AmDiagGmm(pdfs), c


def convert_alignment(tids: np.ndarray, old: TransitionModel, new: TransitionModel, tree: ContextDependency) -> np.ndarray:
    """convert-ali: the same phones, states and transitions, with the pdfs of the new tree (the
    topology is shared, so a transition keeps its index within its state)."""
    inst = phone_instances(tids, old)
    out = np.empty_like(tids)
    hs_of, index_of, class_of = old.tid2hmm_state[tids], old.id2index[tids], old.tid2pdf_class[tids]
    for i, (phone, a, b) in enumerate(inst):
        left = inst[i - 1][0] if i > 0 else 0
        right = inst[i + 1][0] if i + 1 < len(inst) else 0
        window = (left, phone, right) if tree.N == 3 else (phone,)
        first = {}   # hmm state -> first transition id of its transition state in the new model
        for hs, c in set(zip(hs_of[a:b].tolist(), class_of[a:b].tolist())):
            first[hs] = new.state2id[new.tstate(phone, hs, tree.compute(window, c))]
        out[a:b] = [first[h] for h in hs_of[a:b].tolist()] + index_of[a:b]
    return out
