"""Training graphs and forced alignment (Kaldi's compile-train-graphs, align-equal-compiled and
gmm-align-compiled), in numpy, for monophone and triphone trees.

An utterance's graph is built as Kaldi's ``L o transcript`` would be, then expanded:

* **phone graph**: optional silence at the start and after every word with the lang's ``sil_prob``
  (``-log p`` with silence, ``-log(1-p)`` without, as ``L.fst``), every pronunciation of a word as
  a parallel branch with its ``-log prob``;
* **context**: each phone node is copied once per (predecessor, successor) pair, so that a
  triphone tree sees the phones actually beside it (0 at the utterance's edges, as Kaldi);
* **HMM**: each copy becomes its topology's emitting states with pdfs from the tree; the topology's
  exit transition leads to the first state of every successor. Arc weights are Kaldi's with
  ``--transition-scale 1 --self-loop-scale 0.1``: a self-loop gets ``0.1 log p``, a transition
  leaving a state with self-loop probability ``q`` gets ``log p - log(1-q) + 0.1 log(1-q)``.

:func:`viterbi_align` runs exact Viterbi (no beam: an utterance fails only when no path of its
length exists) on a batch of utterances at once: their graphs are concatenated and every frame is
one gather and one max over the states' incoming arcs, so the Python loop runs once per frame of
the longest utterance, not once per utterance. A frame's score is ``acoustic_scale`` times the
log-likelihood of the pdf of the state the frame leaves, as in Kaldi, where a transition id carries
the pdf of its source state.
"""

from __future__ import annotations

import math
import zlib
from dataclasses import dataclass

import numpy as np

from nnetavg.asr.models import ContextDependency, TransitionModel
from nnetavg.errors import NnetavgError

SELF_LOOP_SCALE = 0.1
TRANSITION_SCALE = 1.0


@dataclass
class PhoneGraph:
    phones: list[int]                     # node -> phone id
    succ: list[list[tuple[int, float]]]   # node -> (successor node, cost)
    start: list[tuple[int, float]]        # (node, cost) at the start
    end: list[tuple[int, float]]          # (node, cost) at the end


def phone_graph(word_prons: list[list[tuple[list[int], float]]], sil_phone: int, sil_prob: float) -> PhoneGraph:
    """The phone graph of a transcript: ``word_prons[i]`` lists word i's (phone ids, prob)."""
    phones: list[int] = []
    succ: list[list[tuple[int, float]]] = []

    def node(p):
        phones.append(p)
        succ.append([])
        return len(phones) - 1

    sil_cost = -math.log(sil_prob) if sil_prob > 0 else math.inf
    nosil_cost = -math.log(1.0 - sil_prob)
    # "exits": (node or -1 for the start, extra cost) that lead to the next word or silence
    exits: list[tuple[int, float]] = [(-1, 0.0)]
    start: list[tuple[int, float]] = []

    def connect(sources, target, cost):
        for n, c in sources:
            if n < 0:
                start.append((target, c + cost))
            else:
                succ[n].append((target, c + cost))

    for prons in word_prons:
        sil = node(sil_phone) if sil_prob > 0 else None
        if sil is not None:
            connect(exits, sil, sil_cost)
        new_exits = []
        for pron, prob in prons:
            chain = [node(p) for p in pron]
            for a, b in zip(chain, chain[1:]):
                succ[a].append((b, 0.0))
            pc = -math.log(prob)
            connect(exits, chain[0], nosil_cost + pc)
            if sil is not None:
                succ[sil].append((chain[0], pc))
            new_exits.append((chain[-1], 0.0))
        exits = new_exits
    end = []
    if sil_prob > 0:
        sil = node(sil_phone)
        connect(exits, sil, sil_cost)
        end.append((sil, 0.0))
    end += [(n, c + nosil_cost) for n, c in exits if n >= 0]
    return PhoneGraph(phones, succ, start, end)


@dataclass
class HmmGraph:
    """One utterance's HMM-state graph: state s emits with pdf ``pdf[s]``; incoming arcs padded to
    a fixed width (src = -1 where there is none). The last state is the final one (no pdf)."""
    pdf: np.ndarray          # (S,) pdf of each state, -1 for the final state
    in_src: np.ndarray       # (S, K) source state of each incoming arc
    in_w: np.ndarray         # (S, K) graph log-probability of the arc
    in_tid: np.ndarray       # (S, K) transition id of the arc
    init: np.ndarray         # (S,) initial log-probability (-inf where a path cannot start)
    phone: np.ndarray        # (S,) phone of each state (for equal alignment)
    hmm_state: np.ndarray    # (S,) topology state
    node: np.ndarray         # (S,) expanded-phone node of each state
    node_succ: list          # expanded node -> successor nodes
    node_start: list         # expanded nodes that can start
    node_end: set            # expanded nodes that can end

    @property
    def num_states(self) -> int:
        return len(self.pdf)


class GraphCompiler:
    """Builds HMM graphs for a transition model and tree (Kaldi's TrainingGraphCompiler)."""

    def __init__(self, tm: TransitionModel, tree: ContextDependency, lexicon: dict[str, list[tuple[list[int], float]]],
                 sil_phone: int, sil_prob: float):
        if tree.N not in (1, 3) or tree.P != tree.N // 2:
            raise NnetavgError(f"tree with context width {tree.N} and central position {tree.P}: "
                               "only monophone (1, 0) and triphone (3, 1) trees are supported")
        self.tm, self.tree, self.lexicon = tm, tree, lexicon
        self.sil_phone, self.sil_prob = sil_phone, sil_prob
        # per (phone, hmm state): transitions (dest, log-prob weight) with Kaldi's scaling
        self._arcs: dict[tuple[int, int, int], list[tuple[int, float, int]]] = {}
        self._pdf_cache: dict[tuple, int] = {}

    def _state_arcs(self, phone: int, hs: int, pdf: int):
        key = (phone, hs, pdf)
        arcs = self._arcs.get(key)
        if arcs is None:
            tm = self.tm
            ts = tm.tstate(phone, hs, pdf)
            loop = tm.self_loop_log_prob(ts)
            arcs = []
            for t in range(tm.state2id[ts], tm.state2id[ts + 1]):
                lp = tm.log_probs[t]
                if tm.is_self_loop[t]:
                    w = SELF_LOOP_SCALE * lp
                elif loop is not None:
                    nl = math.log(max(1.0 - math.exp(loop), 1e-10))
                    w = TRANSITION_SCALE * (lp - nl) + SELF_LOOP_SCALE * nl
                else:
                    w = TRANSITION_SCALE * lp
                arcs.append((int(tm.tid2dest[t]), w, t))
            self._arcs[key] = arcs
        return arcs

    def _pdf(self, window: tuple, pdf_class: int) -> int:
        key = (window, pdf_class)
        pdf = self._pdf_cache.get(key)
        if pdf is None:
            pdf = self.tree.compute(window, pdf_class)
            if pdf is None:
                raise NnetavgError(f"the tree has no pdf for phones {window}, pdf class {pdf_class}")
            self._pdf_cache[key] = pdf
        return pdf

    def word_prons(self, utt: str, words: list[str]):
        out = []
        for w in words:
            prons = self.lexicon.get(w)
            if not prons:
                raise NnetavgError(f"utterance {utt}: word {w!r} is not in the lexicon")
            out.append(prons)
        return out

    def compile(self, utt: str, words: list[str]) -> HmmGraph:
        if not words:
            raise NnetavgError(f"utterance {utt}: empty transcript")
        pg = phone_graph(self.word_prons(utt, words), self.sil_phone, self.sil_prob)
        n = len(pg.phones)
        preds: list[list[tuple[int, float]]] = [[] for _ in range(n)]
        for a in range(n):
            for b, c in pg.succ[a]:
                preds[b].append((a, c))
        start_cost = dict(pg.start)
        end_cost = dict(pg.end)
        triphone = self.tree.N == 3
        # expanded nodes: (left node or -1, node, right node or -1)
        if triphone:
            nodes = []
            for v in range(n):
                lefts = [a for a, _ in preds[v]] + ([-1] if v in start_cost else [])
                rights = [b for b, _ in pg.succ[v]] + ([-1] if v in end_cost else [])
                nodes += [(a, v, b) for a in lefts for b in rights]
        else:
            nodes = [(-1, v, -1) for v in range(n)]
        index = {x: i for i, x in enumerate(nodes)}
        cost = {(a, b): c for a in range(n) for b, c in pg.succ[a]}
        node_succ: list[list[tuple[int, float]]] = [[] for _ in nodes]
        for i, (a, v, b) in enumerate(nodes):
            if triphone:
                if b >= 0:
                    node_succ[i] = [(index[(v, b, c)], cost[(v, b)]) for c in
                                    [x for x, _ in pg.succ[b]] + ([-1] if b in end_cost else [])]
            else:
                node_succ[i] = [(index[(-1, b, -1)], c) for b, c in pg.succ[v]]
        node_start = [(i, start_cost[v]) for i, (a, v, b) in enumerate(nodes) if a < 0 and v in start_cost] \
            if triphone else [(index[(-1, v, -1)], c) for v, c in pg.start]
        node_end = {i: end_cost[v] for i, (a, v, b) in enumerate(nodes) if (b < 0 or not triphone) and v in end_cost}
        # HMM states
        topo = self.tm.topo
        first = []
        pdf, phone, hstate, node_of = [], [], [], []
        for i, (a, v, b) in enumerate(nodes):
            ph = pg.phones[v]
            window = (pg.phones[a] if a >= 0 else 0, ph, pg.phones[b] if b >= 0 else 0) if triphone else (ph,)
            first.append(len(pdf))
            for hs, st in enumerate(topo.entry(ph)[:-1]):
                pdf.append(self._pdf(window, st.pdf_class))
                phone.append(ph)
                hstate.append(hs)
                node_of.append(i)
        final = len(pdf)
        pdf.append(-1)
        phone.append(0)
        hstate.append(-1)
        node_of.append(-1)
        num = final + 1
        incoming: list[list[tuple[int, float, int]]] = [[] for _ in range(num)]
        for i, (a, v, b) in enumerate(nodes):
            ph = pg.phones[v]
            n_emit = len(topo.entry(ph)) - 1
            for hs in range(n_emit):
                s = first[i] + hs
                for dest, w, tid in self._state_arcs(ph, hs, pdf[s]):
                    if dest < n_emit:
                        incoming[first[i] + dest].append((s, w, tid))
                    else:
                        for j, c in node_succ[i]:
                            incoming[first[j]].append((s, w - c, tid))
                        if i in node_end:
                            incoming[final].append((s, w - node_end[i], tid))
        k = max(len(x) for x in incoming)
        in_src = np.full((num, k), -1, dtype=np.int64)
        in_w = np.full((num, k), -np.inf)
        in_tid = np.zeros((num, k), dtype=np.int64)
        for s, arcs in enumerate(incoming):
            for j, (src, w, tid) in enumerate(arcs):
                in_src[s, j], in_w[s, j], in_tid[s, j] = src, w, tid
        init = np.full(num, -np.inf)
        for i, c in node_start:
            init[first[i]] = max(init[first[i]], -c)
        return HmmGraph(np.array(pdf), in_src, in_w, in_tid, init, np.array(phone), np.array(hstate),
                        np.array(node_of), [[j for j, _ in s] for s in node_succ], [i for i, _ in node_start],
                        set(node_end))


def viterbi_align(graphs: list[HmmGraph], loglikes: list[np.ndarray], acoustic_scale: float = 0.1,
                  pdf_boost: np.ndarray | None = None) -> list[tuple[np.ndarray | None, float]]:
    """Exact Viterbi alignment of a batch. ``loglikes[u]`` is utterance u's (T x num_pdfs) matrix of
    pdf log-likelihoods; ``pdf_boost`` is added to them (log of Kaldi's --boost-silence on silence
    pdfs). Returns per utterance (transition ids, total log-likelihood of the acoustics along the
    path), or (None, -inf) when no path has the utterance's length."""
    offsets = np.cumsum([0] + [g.num_states for g in graphs])
    total = int(offsets[-1])
    k = max(g.in_src.shape[1] for g in graphs)
    in_src = np.full((total, k), total, dtype=np.int64)     # `total`: a padding state scoring -inf
    in_w = np.full((total, k), -np.inf)
    in_tid = np.zeros((total, k), dtype=np.int64)
    for g, o in zip(graphs, offsets):
        s, kk = g.in_src.shape
        valid = g.in_src >= 0
        in_src[o:o + s, :kk] = np.where(valid, g.in_src + o, total)
        in_w[o:o + s, :kk] = g.in_w
        in_tid[o:o + s, :kk] = g.in_tid
    lengths = np.array([len(x) for x in loglikes])
    t_max = int(lengths.max())
    # emission scores per (frame, state): gather each utterance's pdf columns
    frame_off = np.cumsum(np.r_[0, lengths])
    ll = np.concatenate(loglikes).astype(np.float64)
    if pdf_boost is not None:
        ll = ll + pdf_boost[None, :]
    state_utt = np.repeat(np.arange(len(graphs)), [g.num_states for g in graphs])
    state_pdf = np.concatenate([g.pdf for g in graphs])
    emitting = state_pdf >= 0
    score = np.concatenate([g.init for g in graphs] + [[-np.inf]])
    back = np.empty((t_max, total), dtype=np.int8 if k < 127 else np.int16)
    finals = offsets[1:] - 1
    final_scores = np.full(len(graphs), -np.inf)
    rows = np.arange(total)
    for t in range(t_max):
        live = t < lengths[state_utt]
        emit = np.full(total + 1, -np.inf)
        idx = np.nonzero(emitting & live)[0]
        emit[idx] = score[idx] + acoustic_scale * ll[frame_off[state_utt[idx]] + t, state_pdf[idx]]
        cand = emit[in_src] + in_w
        best = cand.argmax(1)
        back[t] = best
        score[:total] = cand[rows, best]
        done = np.nonzero(lengths == t + 1)[0]
        final_scores[done] = score[finals[done]]
    out = []
    for u, g in enumerate(graphs):
        if not np.isfinite(final_scores[u]):
            out.append((None, -np.inf))
            continue
        s = int(finals[u])
        tids = np.empty(lengths[u], dtype=np.int32)
        src = np.empty(lengths[u], dtype=np.int64)
        for t in range(lengths[u] - 1, -1, -1):
            j = back[t, s]
            tids[t] = in_tid[s, j]
            s = src[t] = in_src[s, j]
        ac = float(ll[frame_off[u] + np.arange(lengths[u]), state_pdf[src]].sum())
        out.append((tids, ac))
    return out


def equal_align(g: HmmGraph, tm: TransitionModel, num_frames: int, utt: str) -> np.ndarray | None:
    """Kaldi's align-equal-compiled: a random path through the graph (seeded by the utterance
    name) whose emitting states share the frames equally; within a state, self-loops then the
    forward transition. None when the utterance is shorter than every path."""
    rng = np.random.default_rng(zlib.crc32(utt.encode()))
    # a random path of expanded nodes, retried with silence avoided if too long
    for _ in range(50):
        node = g.node_start[rng.integers(len(g.node_start))]
        path = [node]
        while True:
            options = list(g.node_succ[node]) + ([-1] if node in g.node_end else [])
            node = options[rng.integers(len(options))]
            if node < 0:
                break
            path.append(node)
        states = [s for x in path for s in np.nonzero(g.node == x)[0]]
        if len(states) <= num_frames:
            break
    else:
        return None
    # frames per state: equal shares
    n = len(states)
    bounds = np.linspace(0, num_frames, n + 1).round().astype(int)
    ali = np.empty(num_frames, dtype=np.int32)
    for i, s in enumerate(states):
        lo, hi = bounds[i], bounds[i + 1]
        ph, hs, pdf = int(g.phone[s]), int(g.hmm_state[s]), int(g.pdf[s])
        nxt_state = hs + 1
        ali[lo:hi - 1] = tm.tid(ph, hs, pdf, hs)
        ali[hi - 1] = tm.tid(ph, hs, pdf, nxt_state)
    return ali
