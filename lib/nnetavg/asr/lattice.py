"""Kaldi lattices: the CompactLattice of ``latgen-faster-mapped`` and the scoring tools.

A CompactLattice is an acceptor over words whose weights are (graph cost, acoustic cost, string of
transition ids). The text form is Kaldi's (``src/lat/kaldi-lattice.cc``): after the key, a newline,
then one line per arc ``src dst word graph,acoustic,tid_tid_...`` and per final state
``state graph,acoustic,tids``, the start state's lines first, and an empty line to end it. Kaldi's
readers take this text form inside any archive (binary or not: they tell them apart by the first
byte), and a Lattice (transducer: ``src dst tid word graph,acoustic``) where a CompactLattice is
expected; both are read here. Acoustic costs are stored unscaled, as latgen writes them.

What ``latgen-faster-mapped`` writes here is the decoder's best path as a linear lattice (one arc
per frame, the words on the arcs where the graph emitted them): not the pruned, determinized
lattice Kaldi's decoder produces. Scoring over LM weights therefore rescales one path.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import BinaryIO

from nnetavg.errors import FormatError


@dataclass
class Arc:
    dst: int
    word: int
    graph: float
    acoustic: float
    tids: tuple[int, ...] = ()


@dataclass
class CompactLattice:
    """States 0..num_states-1, state 0 the start; ``finals`` maps a final state to its weight
    (graph, acoustic, tids)."""
    arcs: list[list[Arc]] = field(default_factory=list)
    finals: dict[int, tuple[float, float, tuple[int, ...]]] = field(default_factory=dict)

    @property
    def num_states(self) -> int:
        return len(self.arcs)

    def add_state(self) -> int:
        self.arcs.append([])
        return len(self.arcs) - 1

    @classmethod
    def linear(cls, tids, words_at, graph_costs, acoustic_costs, final_graph: float = 0.0) -> "CompactLattice":
        """One arc per frame: frame t carries ``tids[t]``, the word ``words_at[t]`` (0: none) and its
        costs; the last state is final with graph cost ``final_graph``."""
        lat = cls()
        lat.add_state()
        for t, tid in enumerate(tids):
            lat.add_state()
            lat.arcs[t].append(Arc(t + 1, int(words_at[t]), float(graph_costs[t]), float(acoustic_costs[t]), (int(tid),)))
        lat.finals[len(tids)] = (float(final_graph), 0.0, ())
        return lat

    def scale(self, graph_scale: float, acoustic_scale: float) -> None:
        """Kaldi's lattice-scale with a diagonal scale: costs multiplied in place."""
        for arcs in self.arcs:
            for a in arcs:
                a.graph *= graph_scale
                a.acoustic *= acoustic_scale
        self.finals = {s: (g * graph_scale, a * acoustic_scale, t) for s, (g, a, t) in self.finals.items()}

    def add_word_insertion_penalty(self, penalty: float) -> None:
        """Kaldi's lattice-add-penalty: ``penalty`` added to the graph cost of every word arc."""
        for arcs in self.arcs:
            for a in arcs:
                if a.word != 0:
                    a.graph += penalty

    def best_path(self) -> tuple[list[int], list[int], float, float] | None:
        """(words, transition ids, graph cost, acoustic cost) of the cheapest path (graph + acoustic
        cost, as stored); None if no final state is reachable. The lattice must be acyclic."""
        order = self._topological_order()
        inf = float("inf")
        cost = [inf] * self.num_states
        back: list[tuple[int, Arc] | None] = [None] * self.num_states
        cost[0] = 0.0
        for s in order:
            if cost[s] == inf:
                continue
            for a in self.arcs[s]:
                c = cost[s] + a.graph + a.acoustic
                if c < cost[a.dst]:
                    cost[a.dst], back[a.dst] = c, (s, a)
        best, end = inf, -1
        for s, (g, ac, _) in self.finals.items():
            if cost[s] + g + ac < best:
                best, end = cost[s] + g + ac, s
        if end < 0:
            return None
        fg, fa, ftids = self.finals[end]
        words, tids, graph, acoustic = [], list(ftids), fg, fa
        s = end
        while back[s] is not None:
            prev, a = back[s]
            if a.word:
                words.append(a.word)
            tids[:0] = a.tids
            graph, acoustic = graph + a.graph, acoustic + a.acoustic
            s = prev
        words.reverse()
        return words, tids, graph, acoustic

    def _topological_order(self) -> list[int]:
        indegree = [0] * self.num_states
        for arcs in self.arcs:
            for a in arcs:
                indegree[a.dst] += 1
        order, stack = [], [s for s in range(self.num_states) if indegree[s] == 0]
        while stack:
            s = stack.pop()
            order.append(s)
            for a in self.arcs[s]:
                indegree[a.dst] -= 1
                if indegree[a.dst] == 0:
                    stack.append(a.dst)
        if len(order) != self.num_states:
            raise FormatError("the lattice has a cycle")
        return order


def _weight_text(graph: float, acoustic: float, tids) -> str:
    return f"{graph:.7g},{acoustic:.7g},{'_'.join(str(t) for t in tids)}"


def write_lattice(f: BinaryIO, lat: CompactLattice) -> None:
    """The text form (after the key and its space): newline, the start state's lines first, then
    the other states', an empty line at the end."""
    lines = ["\n"]
    for s in range(lat.num_states):
        for a in lat.arcs[s]:
            lines.append(f"{s}\t{a.dst}\t{a.word}\t{_weight_text(a.graph, a.acoustic, a.tids)}\n")
        if s in lat.finals:
            lines.append(f"{s}\t{_weight_text(*lat.finals[s])}\n")
    lines.append("\n")
    f.write("".join(lines).encode())


def _parse_weight(text: str, compact: bool) -> tuple[float, float, tuple[int, ...]]:
    parts = text.split(",")
    if len(parts) != (3 if compact else 2):
        raise FormatError(f"bad lattice weight {text!r}")
    g, a = float(parts[0]), float(parts[1])
    tids = tuple(int(t) for t in parts[2].split("_") if t) if compact else ()
    return g, a, tids


def read_lattice(f: BinaryIO) -> CompactLattice:
    """A lattice in Kaldi's text form (CompactLattice, or a Lattice converted arc by arc)."""
    peek = getattr(f, "peek", None)
    if peek is not None and peek(1)[:1] == b"\xd6":
        raise FormatError("a binary (OpenFst) lattice: not read here; write it with lattice-copy ark,t:")
    first = f.readline()
    if first.strip():
        raise FormatError(f"expected a newline after the key, found {first[:40]!r}")
    rows = []
    while True:
        line = f.readline()
        if not line.strip():
            break
        rows.append(line.decode(errors="replace").split())
    if not rows:
        raise FormatError("empty lattice")
    # a CompactLattice has at most 4 fields a line, its 4th a weight with a string (has commas);
    # a Lattice's arcs have 5 (or 4 without weight: src dst tid word)
    compact = all(len(r) <= 4 and (len(r) < 4 or "," in r[3]) for r in rows)
    if not rows[0][0].isdigit():
        raise FormatError(f"bad lattice line {' '.join(rows[0])!r}")
    first = int(rows[0][0])

    def state(s: str) -> int:   # the first line's state is the start: swapped with state 0
        k = int(s)
        k = 0 if k == first else first if k == 0 else k
        if k < 0:
            raise ValueError(s)
        while k >= lat.num_states:
            lat.add_state()
        return k

    lat = CompactLattice()
    try:
        for r in rows:
            s = state(r[0])
            if len(r) <= 2:
                lat.finals[s] = _parse_weight(r[1], compact) if len(r) == 2 else (0.0, 0.0, ())
            elif compact:
                w = _parse_weight(r[3], True) if len(r) == 4 else (0.0, 0.0, ())
                lat.arcs[s].append(Arc(state(r[1]), int(r[2]), *w))
            else:   # Lattice: src dst tid word [graph,acoustic]
                g, a, _ = _parse_weight(r[4], False) if len(r) == 5 else (0.0, 0.0, ())
                tid = int(r[2])
                lat.arcs[s].append(Arc(state(r[1]), int(r[3]), g, a, (tid,) if tid else ()))
    except (ValueError, IndexError):
        raise FormatError(f"bad lattice line {' '.join(r)!r}") from None
    return lat
