"""Kaldi's GMM-system model files, read and written here, text and binary, byte-compatible with
Kaldi: the HMM topology, the transition model, the diagonal-covariance acoustic model
(``final.mdl`` = transition model + ``AmDiagGmm``) and the phonetic context-dependency tree
(``tree`` = ``ContextDependency`` over an ``EventMap``).

Formats, as written by Kaldi (``src/hmm/hmm-topology.cc``, ``transition-model.cc``,
``src/gmm/diag-gmm.cc``, ``am-diag-gmm.cc``, ``src/tree/event-map.cc``, ``context-dep.cc``):

* ``<Topology>``: text lists each ``<TopologyEntry>`` with ``<ForPhones>`` and its ``<State>``
  lines; binary holds the phone list, the phone-to-entry index and per state its pdf class and
  ``(destination, probability)`` transitions;
* ``<TransitionModel>``: the topology, ``<Triples>`` (phone, HMM state, pdf) sorted, which
  define the transition ids, and ``<LogProbs>`` (index 0 unused);
* ``<DIMENSION> <NUMPDFS>`` then per pdf ``<DiagGMM>`` with ``<GCONSTS> <WEIGHTS>
  <MEANS_INVVARS> <INV_VARS>``;
* ``ContextDependency N P ToPdf <EventMap> EndContextDependency``, the map built of ``CE answer``,
  ``TE key size ( maps )`` (``NULL`` for a hole) and ``SE key [ yes-set ] { yes no }``. The keys
  are the positions of the phone window (0 .. N-1) and -1, the pdf class.

These are plain numpy objects, so the GMM training here owns its arithmetic; kaldi-hmm-gmm is not
needed to read or write them.
"""

from __future__ import annotations

import abc
import io
import math
import struct
from dataclasses import dataclass, field

import numpy as np

from nnetavg.errors import FormatError, NnetavgError
from nnetavg.fileutil import atomic_output
from nnetavg.io.kaldi_basic import KaldiReader, KaldiWriter, read_rxfilename

PDF_CLASS = -1          # the EventMap key of the pdf class (Kaldi's kPdfClass)
LOG_2PI = math.log(2.0 * math.pi)


# --------------------------------------------------------------------------- topology

@dataclass
class HmmState:
    pdf_class: int                                  # -1 for the final, non-emitting state
    transitions: list[tuple[int, float]]            # (destination state, probability)


@dataclass
class Topology:
    entries: list[list[HmmState]]
    phone2idx: list[int]                            # phone -> entry index, -1 where not covered

    @property
    def phones(self) -> list[int]:
        return [p for p, i in enumerate(self.phone2idx) if i >= 0]

    def entry(self, phone: int) -> list[HmmState]:
        if phone >= len(self.phone2idx) or self.phone2idx[phone] < 0:
            raise NnetavgError(f"phone {phone} is not covered by the topology")
        return self.entries[self.phone2idx[phone]]

    def num_pdf_classes(self, phone: int) -> int:
        return 1 + max(s.pdf_class for s in self.entry(phone))

    @classmethod
    def parse(cls, text: str) -> "Topology":
        return cls.read(KaldiReader(text.encode(), "topo", binary=False))

    @classmethod
    def read(cls, r: KaldiReader) -> "Topology":
        r.expect_token("<Topology>")
        entries, phone2idx = [], []
        if r.binary:
            phones = r.read_int_vector()
            phone2idx = [int(x) for x in r.read_int_vector()]
            for _ in range(r.read_int()):
                states = []
                for _ in range(r.read_int()):
                    pdf_class = r.read_int()
                    states.append(HmmState(pdf_class, [(r.read_int(), r.read_float()) for _ in range(r.read_int())]))
                entries.append(states)
            r.expect_token("</Topology>")
            del phones
        else:
            while (tok := r.read_token()) != "</Topology>":
                if tok != "<TopologyEntry>":
                    raise r.fail(f"expected <TopologyEntry>, found {tok[:40]}")
                r.expect_token("<ForPhones>")
                phones = []
                while (tok := r.read_token()) != "</ForPhones>":
                    phones.append(int(tok))
                states = []
                while (tok := r.read_token()) != "</TopologyEntry>":
                    if tok != "<State>":
                        raise r.fail(f"expected <State>, found {tok[:40]}")
                    if r.read_int() != len(states):
                        raise r.fail("topology states must be numbered 0, 1, ... in order")
                    pdf_class, trans = -1, []
                    while (tok := r.read_token()) != "</State>":
                        if tok == "<PdfClass>":
                            pdf_class = r.read_int()
                        elif tok == "<Transition>":
                            trans.append((r.read_int(), r.read_float()))
                        elif tok in ("<ForwardPdfClass>", "<SelfLoopPdfClass>"):
                            raise r.fail("non-HMM topologies (separate self-loop pdf classes) are not supported")
                        else:
                            raise r.fail(f"unexpected {tok[:40]} in a topology state")
                    states.append(HmmState(pdf_class, trans))
                for p in phones:
                    while len(phone2idx) <= p:
                        phone2idx.append(-1)
                    if phone2idx[p] >= 0:
                        raise r.fail(f"phone {p} is in two topology entries")
                    phone2idx[p] = len(entries)
                entries.append(states)
        topo = cls(entries, phone2idx)
        for e in entries:
            if len(e) < 2 or e[-1].transitions or e[-1].pdf_class != -1:
                raise r.fail("a topology entry needs emitting states and a final state without transitions")
        return topo

    def write(self, w: KaldiWriter) -> None:
        w.write_token("<Topology>")
        if not w.binary:
            w.f.write(b"\n")
            for i, entry in enumerate(self.entries):
                phones = " ".join(str(p) for p, j in enumerate(self.phone2idx) if j == i)
                w.f.write(f"<TopologyEntry> \n<ForPhones> \n{phones} \n</ForPhones> \n".encode())
                for s, st in enumerate(entry):
                    w.write_token("<State>")
                    w.write_int(s)
                    if st.pdf_class != -1:
                        w.write_token("<PdfClass>")
                        w.write_int(st.pdf_class)
                    for d, p in st.transitions:
                        w.write_token("<Transition>")
                        w.write_int(d)
                        w.write_float(p)
                    w.f.write(b"</State> \n")
                w.f.write(b"</TopologyEntry> \n")
        else:
            w.write_int_vector(self.phones)
            w.write_int_vector(self.phone2idx)
            w.write_int(len(self.entries))
            for entry in self.entries:
                w.write_int(len(entry))
                for st in entry:
                    w.write_int(st.pdf_class)
                    w.write_int(len(st.transitions))
                    for d, p in st.transitions:
                        w.write_int(d)
                        w.write_float(p)
        w.write_token("</Topology>")
        w.newline()


# --------------------------------------------------------------------------- event maps (trees)

class EventMap(abc.ABC):
    """A decision tree over events: {key: value} with keys -1 (pdf class) and 0..N-1 (phones of
    the context window). The three kinds below are Kaldi's."""

    @abc.abstractmethod
    def lookup(self, event: dict[int, int]) -> int | None:
        """The answer for a complete event, None where the tree has no answer (a NULL entry)."""

    @abc.abstractmethod
    def multimap(self, event: dict[int, int], out: set[int]) -> None:
        """All answers reachable when the keys missing from ``event`` may take any value."""

    def max_answer(self) -> int:
        out: set[int] = set()
        self.multimap({}, out)
        return max(out) if out else -1


@dataclass
class ConstantEventMap(EventMap):
    answer: int

    def lookup(self, event):
        return self.answer

    def multimap(self, event, out):
        out.add(self.answer)


@dataclass
class TableEventMap(EventMap):
    key: int
    table: list[EventMap | None]

    def lookup(self, event):
        v = event.get(self.key)
        if v is None or not 0 <= v < len(self.table) or self.table[v] is None:
            return None
        return self.table[v].lookup(event)

    def multimap(self, event, out):
        v = event.get(self.key)
        if v is None:
            for t in self.table:
                if t is not None:
                    t.multimap(event, out)
        elif 0 <= v < len(self.table) and self.table[v] is not None:
            self.table[v].multimap(event, out)


@dataclass
class SplitEventMap(EventMap):
    key: int
    yes_set: frozenset[int]
    yes: EventMap
    no: EventMap

    def lookup(self, event):
        v = event.get(self.key)
        if v is None:
            return None
        return (self.yes if v in self.yes_set else self.no).lookup(event)

    def multimap(self, event, out):
        v = event.get(self.key)
        if v is None:
            self.yes.multimap(event, out)
            self.no.multimap(event, out)
        else:
            (self.yes if v in self.yes_set else self.no).multimap(event, out)


def _read_uint32(r: KaldiReader) -> int:
    if r.binary:
        size = r._take(1)[0]
        if size not in (4, 0xFC):
            raise r.fail(f"expected a 4-byte unsigned integer, size byte is {size}")
        return struct.unpack("<I", r._take(4))[0]
    return r.read_int()


def read_event_map(r: KaldiReader) -> EventMap | None:
    tok = r.read_token()
    if tok == "NULL":
        return None
    if tok == "CE":
        return ConstantEventMap(r.read_int())
    if tok == "TE":
        key, size = r.read_int(), _read_uint32(r)
        r.expect_token("(")
        table = [read_event_map(r) for _ in range(size)]
        r.expect_token(")")
        return TableEventMap(key, table)
    if tok == "SE":
        key = r.read_int()
        yes_set = frozenset(int(x) for x in r.read_int_vector())
        r.expect_token("{")
        yes, no = read_event_map(r), read_event_map(r)
        r.expect_token("}")
        if yes is None or no is None:
            raise r.fail("a split of the tree has an empty branch")
        return SplitEventMap(key, yes_set, yes, no)
    raise r.fail(f"expected an event map (CE, TE, SE or NULL), found {tok[:40]}")


def write_event_map(w: KaldiWriter, m: EventMap | None) -> None:
    if m is None:
        w.write_token("NULL")
    elif isinstance(m, ConstantEventMap):
        w.write_token("CE")
        w.write_int(m.answer)
    elif isinstance(m, TableEventMap):
        w.write_token("TE")
        w.write_int(m.key)
        if w.binary:
            w.f.write(b"\xfc" + struct.pack("<I", len(m.table)))
        else:
            w.write_int(len(m.table))
        w.write_token("(")
        for t in m.table:
            write_event_map(w, t)
        w.write_token(")")
        w.newline()
    elif isinstance(m, SplitEventMap):
        w.write_token("SE")
        w.write_int(m.key)
        w.write_int_vector(sorted(m.yes_set))
        w.write_token("{")
        write_event_map(w, m.yes)
        write_event_map(w, m.no)
        w.write_token("}")
        w.newline()
    else:
        raise TypeError(m)


@dataclass
class ContextDependency:
    """A phonetic decision tree: context width N, central position P, the map to pdfs."""
    N: int
    P: int
    to_pdf: EventMap

    @property
    def num_pdfs(self) -> int:
        return self.to_pdf.max_answer() + 1

    def compute(self, window: tuple[int, ...], pdf_class: int) -> int | None:
        """The pdf of ``pdf_class`` of the central phone of ``window`` (0 = no phone, at an edge)."""
        event = {i: p for i, p in enumerate(window)}
        event[PDF_CLASS] = pdf_class
        return self.to_pdf.lookup(event)

    def pdf_info(self, topo: Topology) -> list[list[tuple[int, int]]]:
        """For each pdf, the (phone, pdf class) pairs it can belong to (Kaldi's GetPdfInfo)."""
        info: list[set] = [set() for _ in range(self.num_pdfs)]
        for phone in topo.phones:
            for c in range(topo.num_pdf_classes(phone)):
                out: set[int] = set()
                self.to_pdf.multimap({self.P: phone, PDF_CLASS: c}, out)
                for pdf in out:
                    info[pdf].add((phone, c))
        return [sorted(s) for s in info]

    @classmethod
    def read(cls, r: KaldiReader) -> "ContextDependency":
        r.expect_token("ContextDependency")
        n, p = r.read_int(), r.read_int()
        r.expect_token("ToPdf")
        m = read_event_map(r)
        r.expect_token("EndContextDependency")
        if m is None or not 0 <= p < n:
            raise r.fail(f"bad tree: context width {n}, central position {p}")
        return cls(n, p, m)

    def write(self, w: KaldiWriter) -> None:
        w.write_token("ContextDependency")
        w.write_int(self.N)
        w.write_int(self.P)
        w.write_token("ToPdf")
        write_event_map(w, self.to_pdf)
        w.write_token("EndContextDependency")


def monophone_tree(topo: Topology, shared: list[list[int]] | None = None) -> ContextDependency:
    """Kaldi's monophone tree (gmm-init-mono): a table on the phone, then on the pdf class, one pdf
    per (phone, pdf class) in phone order; ``shared`` lists phone sets that share their pdfs."""
    groups = shared or [[p] for p in topo.phones]
    table: list[EventMap | None] = [None] * (max(topo.phones) + 1)
    pdf = 0
    for group in groups:
        n = topo.num_pdf_classes(group[0])
        sub = TableEventMap(PDF_CLASS, [ConstantEventMap(pdf + c) for c in range(n)])
        pdf += n
        for p in group:
            table[p] = sub
    return ContextDependency(1, 0, TableEventMap(0, table))


# --------------------------------------------------------------------------- transition model

class TransitionModel:
    """Kaldi's TransitionModel: transition states are the sorted (phone, HMM state, pdf) triples;
    transition ids number their transitions from 1."""

    def __init__(self, topo: Topology, triples: list[tuple[int, int, int]], log_probs: np.ndarray | None = None):
        self.topo = topo
        self.triples = list(triples)
        first, tid = [0], 1
        tstate_of, index_of = [0], [0]
        for ts, (phone, hs, _) in enumerate(self.triples, start=1):
            first.append(tid)
            n = len(topo.entry(phone)[hs].transitions)
            tstate_of += [ts] * n
            index_of += list(range(n))
            tid += n
        first.append(tid)
        self.state2id = np.array(first, dtype=np.int64)        # [tstate] -> first tid, 1-based
        self.id2state = np.array(tstate_of, dtype=np.int64)    # [tid] -> tstate
        self.id2index = np.array(index_of, dtype=np.int64)
        self.num_tids = tid - 1
        trip = np.array(self.triples, dtype=np.int64).reshape(-1, 3)
        self.tid2pdf = np.r_[-1, trip[self.id2state[1:] - 1, 2]].astype(np.int64)
        self.tid2phone = np.r_[0, trip[self.id2state[1:] - 1, 0]].astype(np.int64)
        self.tid2hmm_state = np.r_[-1, trip[self.id2state[1:] - 1, 1]].astype(np.int64)
        dest, pdf_class, final = [0], [-1], [False]
        for t in range(1, tid):
            phone, hs, _ = self.triples[self.id2state[t] - 1]
            entry = topo.entry(phone)
            dest.append(entry[hs].transitions[self.id2index[t]][0])
            pdf_class.append(entry[hs].pdf_class)
            final.append(dest[-1] == len(entry) - 1)
        self.tid2dest = np.array(dest, dtype=np.int64)
        self.tid2pdf_class = np.array(pdf_class, dtype=np.int64)   # pdf class of the source state
        self.is_final = np.array(final)                            # into the phone's final state (Kaldi's IsFinal)
        self.is_self_loop = self.tid2dest == self.tid2hmm_state
        self.is_self_loop[0] = False
        self.num_pdfs = int(trip[:, 2].max()) + 1 if len(trip) else 0
        self._index = {t: i + 1 for i, t in enumerate(self.triples)}
        if log_probs is None:
            log_probs = np.zeros(tid)
            for t in range(1, tid):
                phone, hs, _ = self.triples[self.id2state[t] - 1]
                log_probs[t] = math.log(topo.entry(phone)[hs].transitions[self.id2index[t]][1])
        if len(log_probs) != tid:
            raise NnetavgError(f"transition model: {len(log_probs)} log-probabilities for {tid - 1} transition ids")
        self.log_probs = np.asarray(log_probs, dtype=np.float64)

    @classmethod
    def build(cls, topo: Topology, tree: ContextDependency) -> "TransitionModel":
        """The transition model of a tree (Kaldi's ComputeTriples)."""
        triples = []
        for pdf, pairs in enumerate(tree.pdf_info(topo)):
            for phone, c in pairs:
                for hs, st in enumerate(topo.entry(phone)):
                    if st.pdf_class == c:
                        triples.append((phone, hs, pdf))
        return cls(topo, sorted(triples))

    def tstate(self, phone: int, hmm_state: int, pdf: int) -> int:
        return self._index[(phone, hmm_state, pdf)]

    def tid(self, phone: int, hmm_state: int, pdf: int, dest_state: int) -> int:
        ts = self.tstate(phone, hmm_state, pdf)
        for i, (d, _) in enumerate(self.topo.entry(phone)[hmm_state].transitions):
            if d == dest_state:
                return int(self.state2id[ts] + i)
        raise NnetavgError(f"phone {phone} state {hmm_state} has no transition to state {dest_state}")

    @property
    def num_transition_states(self) -> int:
        return len(self.triples)

    def self_loop_log_prob(self, tstate: int) -> float | None:
        for t in range(self.state2id[tstate], self.state2id[tstate + 1]):
            if self.is_self_loop[t]:
                return float(self.log_probs[t])
        return None

    def update(self, counts: np.ndarray, floor: float = 0.01, mincount: float = 5.0) -> tuple[float, float]:
        """Kaldi's ML transition update (gmm-est): per transition state with at least ``mincount``
        counts, probabilities = counts normalised, floored at ``floor`` and renormalised 3 times.
        Returns (objective improvement, count)."""
        impr = total = 0.0
        for ts in range(1, self.num_transition_states + 1):
            lo, hi = self.state2id[ts], self.state2id[ts + 1]
            if hi - lo < 2:
                continue
            c = np.asarray(counts[lo:hi], dtype=np.float64)
            tot = c.sum()
            total += tot
            if tot < mincount:
                continue
            new = c / tot
            for _ in range(3):
                new = np.maximum(new / new.sum(), floor)
            impr += float((c * (np.log(new) - self.log_probs[lo:hi])).sum())
            self.log_probs[lo:hi] = np.log(new)
        return impr, total

    @classmethod
    def read(cls, r: KaldiReader) -> "TransitionModel":
        r.expect_token("<TransitionModel>")
        topo = Topology.read(r)
        tok = r.read_token()
        if tok not in ("<Triples>", "<Tuples>"):
            raise r.fail(f"expected <Triples>, found {tok[:40]}")
        n = r.read_int()
        triples = []
        for _ in range(n):
            t = (r.read_int(), r.read_int(), r.read_int())
            if tok == "<Tuples>" and r.read_int() != t[2]:
                raise r.fail("separate self-loop pdfs (chain models) are not supported")
            triples.append(t)
        r.expect_token("</Triples>" if tok == "<Triples>" else "</Tuples>")
        r.expect_token("<LogProbs>")
        log_probs = r.read_vector().astype(np.float64)
        r.expect_token("</LogProbs>")
        r.expect_token("</TransitionModel>")
        return cls(topo, triples, log_probs)

    def write(self, w: KaldiWriter) -> None:
        w.write_token("<TransitionModel>")
        w.newline()
        self.topo.write(w)
        w.write_token("<Triples>")
        w.write_int(len(self.triples))
        w.newline()
        for t in self.triples:
            for x in t:
                w.write_int(x)
            w.newline()
        w.write_token("</Triples>")
        w.newline()
        w.write_token("<LogProbs>")
        w.newline()
        w.write_vector(self.log_probs.astype(np.float32))
        w.write_token("</LogProbs>")
        w.newline()
        w.write_token("</TransitionModel>")
        w.newline()


# --------------------------------------------------------------------------- acoustic model

@dataclass
class DiagGmm:
    weights: np.ndarray          # (C,)
    means: np.ndarray            # (C, D)
    vars: np.ndarray             # (C, D)
    stored_gconsts: np.ndarray | None = field(default=None, repr=False)   # as read from a file

    @property
    def num_gauss(self) -> int:
        return len(self.weights)

    def gconsts(self) -> np.ndarray:
        d = self.means.shape[1]
        with np.errstate(divide="ignore"):
            return (np.log(self.weights) - 0.5 * d * LOG_2PI - 0.5 * np.log(self.vars).sum(1)
                    - 0.5 * (self.means ** 2 / self.vars).sum(1))

    @classmethod
    def read(cls, r: KaldiReader) -> "DiagGmm":
        r.expect_token("<DiagGMM>")
        tok = r.read_token()
        gconsts = None
        if tok == "<GCONSTS>":
            gconsts = r.read_vector()
            tok = r.read_token()
        if tok != "<WEIGHTS>":
            raise r.fail(f"expected <WEIGHTS>, found {tok[:40]}")
        weights = r.read_vector().astype(np.float64)
        r.expect_token("<MEANS_INVVARS>")
        means_invvars = r.read_matrix().astype(np.float64)
        r.expect_token("<INV_VARS>")
        inv_vars = r.read_matrix().astype(np.float64)
        r.expect_token("</DiagGMM>")
        if inv_vars.shape != means_invvars.shape or len(weights) != len(inv_vars) or (inv_vars <= 0).any():
            raise r.fail("inconsistent or non-positive GMM parameters")
        if gconsts is not None and len(gconsts) != len(weights):
            raise r.fail("<GCONSTS> and <WEIGHTS> differ in size")
        return cls(weights, means_invvars / inv_vars, 1.0 / inv_vars, gconsts)

    def write(self, w: KaldiWriter) -> None:
        inv = (1.0 / self.vars).astype(np.float32)
        w.write_token("<DiagGMM>")
        w.newline()
        w.write_token("<GCONSTS>")
        gc = self.stored_gconsts if self.stored_gconsts is not None else self.gconsts()
        w.write_vector(np.asarray(gc, dtype=np.float32))
        w.write_token("<WEIGHTS>")
        w.write_vector(self.weights.astype(np.float32))
        w.write_token("<MEANS_INVVARS>")
        w.write_matrix((self.means / self.vars).astype(np.float32))
        w.write_token("<INV_VARS>")
        w.write_matrix(inv)
        w.write_token("</DiagGMM>")
        w.newline()


@dataclass
class AmDiagGmm:
    pdfs: list[DiagGmm] = field(default_factory=list)

    @property
    def dim(self) -> int:
        return self.pdfs[0].means.shape[1] if self.pdfs else 0

    @property
    def num_pdfs(self) -> int:
        return len(self.pdfs)

    @property
    def num_gauss(self) -> int:
        return sum(g.num_gauss for g in self.pdfs)

    @classmethod
    def read(cls, r: KaldiReader) -> "AmDiagGmm":
        r.expect_token("<DIMENSION>")
        dim = r.read_int()
        r.expect_token("<NUMPDFS>")
        n = r.read_int()
        am = cls([DiagGmm.read(r) for _ in range(n)])
        if any(g.means.shape[1] != dim for g in am.pdfs):
            raise r.fail(f"a GMM's dimension differs from <DIMENSION> {dim}")
        return am

    def write(self, w: KaldiWriter) -> None:
        w.write_token("<DIMENSION>")
        w.write_int(self.dim)
        w.write_token("<NUMPDFS>")
        w.write_int(self.num_pdfs)
        for g in self.pdfs:
            g.write(w)


# --------------------------------------------------------------------------- files

def _reader(rxfilename: str) -> KaldiReader:
    return KaldiReader(read_rxfilename(rxfilename), rxfilename)


def _guard(rxfilename: str, fn):
    try:
        return fn()
    except FormatError:
        raise
    except (ValueError, KeyError, IndexError) as e:
        raise FormatError(f"{rxfilename}: not a valid Kaldi model ({e})") from None


def read_model(rxfilename: str) -> tuple[TransitionModel, AmDiagGmm | None]:
    """A ``final.mdl``: the transition model and, when it follows, the GMM acoustic model (nnet1's
    ``final.mdl`` copies hold the transition model only)."""
    r = _reader(rxfilename)

    def go():
        tm = TransitionModel.read(r)
        am = None if r.at_end() else AmDiagGmm.read(r)
        if am is not None and am.num_pdfs != tm.num_pdfs:
            raise r.fail(f"the acoustic model has {am.num_pdfs} pdfs, the transition model {tm.num_pdfs}")
        return tm, am
    return _guard(rxfilename, go)


def read_transition_model(rxfilename: str) -> TransitionModel:
    return read_model(rxfilename)[0]


def read_tree(rxfilename: str) -> ContextDependency:
    r = _reader(rxfilename)
    return _guard(rxfilename, lambda: ContextDependency.read(r))


def _write(path: str, objects, binary: bool) -> None:
    buf = io.BytesIO()
    w = KaldiWriter(buf, binary)
    w.write_header()
    for o in objects:
        o.write(w)
    with atomic_output(path) as f:
        f.write(buf.getvalue())


def write_model(path: str, tm: TransitionModel, am: AmDiagGmm | None = None, binary: bool = True) -> None:
    _write(path, [tm] if am is None else [tm, am], binary)


def write_tree(path: str, tree: ContextDependency, binary: bool = True) -> None:
    _write(path, [tree], binary)
