"""A Kaldi ``lang`` directory from a Kaldi dict directory, with the semantics of Kaldi's
``utils/prepare_lang.sh`` for a monophone system, and the HMM pieces built from it with
kaldi-hmm-gmm: topology, monophone context dependency, transition model.

The dict directory holds ``lexicon.txt`` (``word phone ...``) or ``lexiconp.txt`` (``word prob
phone ...``), ``silence_phones.txt`` and ``nonsilence_phones.txt`` (one or more phones a line),
``optional_silence.txt`` (one silence phone) and, optionally, ``extra_questions.txt`` (checked,
unused by a monophone system). A bare lexicon file is accepted too: its silence phone is ``SIL``.

What is written, as Kaldi does:

* ``phones.txt``: ``<eps>`` 0, the silence phones, the non-silence phones (in the files' order;
  with word-position-dependent phones each becomes ``_B _E _I _S`` variants, silence phones keep
  their bare form first), then the disambiguation symbols ``#0 ... #N``;
* ``words.txt``: ``<eps>`` 0, the words sorted, then ``#0``, ``<s>``, ``</s>``;
* disambiguation (``utils/add_lex_disambig.pl``): a pronunciation shared by several entries
  (homophones) gets ``#1``, ``#2``, ... in turn, one that is a proper prefix of another gets ``#1``;
  ``#N`` (the largest plus one) marks the silence path of ``L_disambig.fst``, ``#0`` is the
  grammar's back-off symbol (self-loops on ``L_disambig.fst``'s loop state);
* ``topo``: 3-state left-to-right phones (self-loop 0.75, forward 0.25) and Kaldi's 5-state
  silence model (``utils/gen_topo.pl``: state 0 goes to states 0-3, states 1-3 go to states 1-4,
  each with probability 1/4; state 4 loops with 0.75 and leaves with 0.25);
* ``L.fst`` and ``L_disambig.fst`` (OpenFst text compiled with kaldifst, as
  ``utils/lang/make_lexicon_fst.py``): a loop state, optional silence after every word and at the
  start with probability ``sil_prob``, pronunciation probabilities as costs;
* ``phones/{silence,nonsilence,optional_silence,disambig,context_indep}.{txt,int,csl}``,
  ``phones/wdisambig*.int``, ``phones/word_boundary.{txt,int}`` (position-dependent only),
  ``lexicon.txt``, ``lexiconp.txt``, ``lexiconp_disambig.txt`` and ``num_pdfs`` (by the command).

kaldi-hmm-gmm cannot write a TransitionModel, so ``final.mdl`` is not a file here: the transition
model is rebuilt from ``topo`` whenever needed, which is exact for a monophone system with the
topology's own transition probabilities.
"""

from __future__ import annotations

import math
import os
import re
from dataclasses import dataclass, field

from nnetavg.errors import NnetavgError
from nnetavg.fileutil import atomic_output

SIL = "SIL"                 # the silence phone of a bare lexicon (no dict dir)
NONSIL_STATES, SIL_STATES = 3, 5
POSITIONS = ("_B", "_E", "_I", "_S")


def import_kaldi_hmm_gmm():
    """kaldi_hmm_gmm, imported before kaldifst (the other order can hang: platform notes)."""
    try:
        import kaldi_hmm_gmm
        import kaldifst  # noqa: F401
    except ImportError as e:
        raise NnetavgError(
            f"this needs kaldi-hmm-gmm and kaldifst ({e}); install them with "
            "pip install 'kaldi-hmm-gmm==1.1.4' 'kaldifst==1.7.17' (or ./setup.sh speech)"
        ) from e
    return kaldi_hmm_gmm


# --------------------------------------------------------------------------- reading a dict dir

@dataclass
class LexiconEntry:
    word: str
    prob: float
    pron: list[str]


@dataclass
class DictDir:
    entries: list[LexiconEntry]
    silence_phones: list[str]
    nonsilence_phones: list[str]
    optional_silence: str
    extra_questions: list[list[str]] = field(default_factory=list)
    phone_lines: list[list[str]] = field(default_factory=list)   # silence then nonsilence lines: phones
                                                                  # on one line share a tree root


def read_lexicon(path: str, with_probs: bool = False) -> list[LexiconEntry]:
    """``word phone ...`` lines (``word prob phone ...`` with ``with_probs``), in file order; a word
    may have several pronunciations."""
    entries = []
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            fields = line.split()
            if not fields:
                continue
            prob = 1.0
            if with_probs:
                try:
                    prob = float(fields[1]) if len(fields) > 1 else float("nan")
                except ValueError:
                    raise NnetavgError(f"{path}:{n}: word {fields[0]!r}: {fields[1]!r} is not a probability") from None
                if not 0.0 < prob <= 1.0:
                    raise NnetavgError(f"{path}:{n}: word {fields[0]!r}: probability {fields[1] if len(fields) > 1 else ''!r} not in (0, 1]")
                fields = fields[:1] + fields[2:]
            if len(fields) < 2:
                raise NnetavgError(f"{path}:{n}: word {fields[0]!r} has no pronunciation")
            if fields[0] in ("<eps>", "#0", "<s>", "</s>"):
                raise NnetavgError(f"{path}:{n}: {fields[0]!r} is a reserved word symbol")
            entries.append(LexiconEntry(fields[0], prob, fields[1:]))
    if not entries:
        raise NnetavgError(f"{path}: empty lexicon")
    return entries


def _phone_lines(path: str, required: bool = True) -> list[list[str]]:
    if not os.path.exists(path):
        if required:
            raise NnetavgError(f"{path}: missing (a Kaldi dict dir has lexicon.txt, silence_phones.txt, "
                               "nonsilence_phones.txt and optional_silence.txt)")
        return []
    with open(path, encoding="utf-8") as f:
        return [line.split() for line in f if line.split()]


def read_dict_dir(path: str) -> DictDir:
    """Reads and checks a Kaldi dict directory (or a bare lexicon file, whose silence is ``SIL``)."""
    if os.path.isfile(path):
        entries = read_lexicon(path)
        nonsil = sorted({p for e in entries for p in e.pron} - {SIL})
        return DictDir(entries, [SIL], nonsil, SIL, [], [[SIL]] + [[p] for p in nonsil])
    lexp = os.path.join(path, "lexiconp.txt")
    entries = read_lexicon(lexp, with_probs=True) if os.path.exists(lexp) else \
        read_lexicon(os.path.join(path, "lexicon.txt"))
    sil_lines = _phone_lines(os.path.join(path, "silence_phones.txt"))
    nonsil_lines = _phone_lines(os.path.join(path, "nonsilence_phones.txt"))
    sil = [p for line in sil_lines for p in line]
    nonsil = [p for line in nonsil_lines for p in line]
    opt = _phone_lines(os.path.join(path, "optional_silence.txt"))
    questions = _phone_lines(os.path.join(path, "extra_questions.txt"), required=False)
    d = DictDir(entries, sil, nonsil, opt[0][0] if opt else "", questions, sil_lines + nonsil_lines)
    _check_dict(path, d, [p for line in opt for p in line])
    return d


def _check_dict(path: str, d: DictDir, optional: list[str]) -> None:
    for name, phones in (("silence_phones.txt", d.silence_phones), ("nonsilence_phones.txt", d.nonsilence_phones)):
        seen = set()
        for p in phones:
            if p in seen:
                raise NnetavgError(f"{path}/{name}: phone {p!r} listed twice")
            if p.startswith("#") or p == "<eps>" or re.search(r"_[BEIS]$", p):
                raise NnetavgError(f"{path}/{name}: phone {p!r} clashes with a reserved symbol or a position suffix")
            seen.add(p)
    both = set(d.silence_phones) & set(d.nonsilence_phones)
    if both:
        raise NnetavgError(f"{path}: phones in both silence_phones.txt and nonsilence_phones.txt: {sorted(both)}")
    if not d.silence_phones:
        raise NnetavgError(f"{path}/silence_phones.txt: no silence phone")
    if len(optional) != 1 or optional[0] not in d.silence_phones:
        raise NnetavgError(f"{path}/optional_silence.txt: must hold one phone of silence_phones.txt, got {optional}")
    known = set(d.silence_phones) | set(d.nonsilence_phones)
    for e in d.entries:
        for p in e.pron:
            if p not in known:
                raise NnetavgError(f"{path}: word {e.word!r}: phone {p!r} is in neither silence_phones.txt "
                                   "nor nonsilence_phones.txt")
    for q in d.extra_questions:
        unknown = [p for p in q if p not in known]
        if unknown:
            raise NnetavgError(f"{path}/extra_questions.txt: unknown phones {unknown}")


def read_symbols(path: str) -> dict[str, int]:
    table = {}
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            fields = line.split()
            if not fields:
                continue
            if len(fields) != 2 or not fields[1].isdigit():
                raise NnetavgError(f"{path}:{n}: expected 'symbol id', got {line.strip()!r}")
            table[fields[0]] = int(fields[1])
    return table


# --------------------------------------------------------------------------- the lang's pieces

def add_disambig(entries: list[LexiconEntry]) -> tuple[list[LexiconEntry], int]:
    """Kaldi's add_lex_disambig.pl: entries whose pronunciation is shared (homophones) get #1, #2,
    ... in turn, a pronunciation that is a proper prefix of another gets #1. Returns the new
    entries and the largest symbol used."""
    count: dict[tuple, int] = {}
    prefixes = set()
    for e in entries:
        key = tuple(e.pron)
        count[key] = count.get(key, 0) + 1
        prefixes.update(key[:i] for i in range(1, len(key)))
    used: dict[tuple, int] = {}
    out, top = [], 0
    for e in entries:
        key = tuple(e.pron)
        if count[key] > 1 or key in prefixes:
            used[key] = used.get(key, 0) + 1
            top = max(top, used[key])
            out.append(LexiconEntry(e.word, e.prob, [*e.pron, f"#{used[key]}"]))
        else:
            out.append(e)
    return out, top


def position_dependent(pron: list[str]) -> list[str]:
    """A pronunciation with Kaldi's word-position suffixes (_S alone, _B _I ... _E)."""
    if len(pron) == 1:
        return [pron[0] + "_S"]
    return [pron[0] + "_B", *(p + "_I" for p in pron[1:-1]), pron[-1] + "_E"]


def topology_text(nonsil_phones: list[int], sil_phones: list[int]) -> str:
    """Kaldi's topology (utils/gen_topo.pl) with 3-state phones and 5-state silence."""
    lines = ["<Topology>", "<TopologyEntry>", "<ForPhones>", " ".join(map(str, nonsil_phones)), "</ForPhones>"]
    for s in range(NONSIL_STATES):
        lines.append(f"<State> {s} <PdfClass> {s} <Transition> {s} 0.75 <Transition> {s + 1} 0.25 </State>")
    lines += [f"<State> {NONSIL_STATES} </State>", "</TopologyEntry>"]
    if sil_phones:
        p = 1.0 / (SIL_STATES - 1)
        lines += ["<TopologyEntry>", "<ForPhones>", " ".join(map(str, sil_phones)), "</ForPhones>"]
        lines.append("<State> 0 <PdfClass> 0 " + "".join(f"<Transition> {n} {p} " for n in range(SIL_STATES - 1)) + "</State>")
        for s in range(1, SIL_STATES - 1):
            lines.append(f"<State> {s} <PdfClass> {s} " + "".join(f"<Transition> {n} {p} " for n in range(1, SIL_STATES))
                         + "</State>")
        last = SIL_STATES - 1
        lines.append(f"<State> {last} <PdfClass> {last} <Transition> {last} 0.75 <Transition> {SIL_STATES} 0.25 </State>")
        lines += [f"<State> {SIL_STATES} </State>", "</TopologyEntry>"]
    return "\n".join([*lines, "</Topology>", ""])


def topology_transitions(topo: str) -> dict[int, list[list[int]]]:
    """phone id -> for each emitting state, the destination states of its transitions in order
    (a transition id is the state's first id plus the index in this list)."""
    out: dict[int, list[list[int]]] = {}
    for entry in re.findall(r"<TopologyEntry>(.*?)</TopologyEntry>", topo, re.S):
        phones = [int(p) for p in re.search(r"<ForPhones>(.*?)</ForPhones>", entry, re.S).group(1).split()]
        states = []
        for body in re.findall(r"<State>\s*\d+\s*<PdfClass>(.*?)</State>", entry, re.S):
            states.append([int(d) for d in re.findall(r"<Transition>\s*(\d+)", body)])
        for p in phones:
            out[p] = states
    return out


def lexicon_fst_text(entries: list[LexiconEntry], phones: dict[str, int], words: dict[str, int], sil_prob: float,
                     sil_phone: str, sil_disambig: str | None = None, wdisambig: bool = False) -> str:
    """OpenFst text of Kaldi's lexicon FST with optional silence (make_lexicon_fst.py): start 0,
    loop state 1 (final), silence state 2; ``sil_disambig`` on the silence path and ``#0``
    self-loops on the loop state for ``L_disambig``."""
    sil_cost = -math.log(sil_prob) if sil_prob > 0 else 0.0
    no_sil_cost = -math.log(1.0 - sil_prob) if sil_prob < 1 else 0.0
    lines, nxt = [], 3
    arc = lambda a, b, i, o, c: lines.append(f"{a} {b} {i} {o} {c:.6f}")  # noqa: E731
    if sil_prob > 0:
        arc(0, 1, 0, 0, no_sil_cost)
        arc(0, 2, 0, 0, sil_cost)
        if sil_disambig is None:
            arc(2, 1, phones[sil_phone], 0, 0.0)
        else:
            arc(2, nxt, phones[sil_phone], 0, 0.0)
            arc(nxt, 1, phones[sil_disambig], 0, 0.0)
            nxt += 1
    else:
        arc(0, 1, 0, 0, 0.0)
    for e in entries:
        pron_cost = -math.log(e.prob)
        cur, word = 1, words[e.word]
        for i, p in enumerate(e.pron[:-1]):
            arc(cur, nxt, phones[p], word if i == 0 else 0, pron_cost if i == 0 else 0.0)
            cur, nxt = nxt, nxt + 1
        last_word, last_cost = (word, pron_cost) if len(e.pron) == 1 else (0, 0.0)
        if sil_prob > 0:
            arc(cur, 1, phones[e.pron[-1]], last_word, no_sil_cost + last_cost)
            arc(cur, 2, phones[e.pron[-1]], last_word, sil_cost + last_cost)
        else:
            arc(cur, 1, phones[e.pron[-1]], last_word, last_cost)
    if wdisambig:
        arc(1, 1, phones["#0"], words["#0"], 0.0)
    lines.append("1 0")
    return "\n".join(lines) + "\n"


@dataclass
class Lang:
    phones: dict[str, int]
    words: dict[str, int]
    topo: str
    silence_phones: list[str]
    optional_silence: str
    entries: list[LexiconEntry]                 # lexiconp, in order (position-dependent phones)
    disambig_entries: list[LexiconEntry]        # lexiconp_disambig
    sil_prob: float = 0.5
    sets: list[list[str]] = field(default_factory=list)             # phones/sets (share a tree root)
    extra_questions: list[list[str]] = field(default_factory=list)  # phones/extra_questions
    oov: str = ""                                                   # oov.txt: the word for unknown words
    _hmm: tuple | None = field(default=None, repr=False)

    @property
    def lexicon(self) -> dict[str, list[list[str]]]:
        """word -> its pronunciations."""
        out: dict[str, list[list[str]]] = {}
        for e in self.entries:
            out.setdefault(e.word, []).append(e.pron)
        return out

    @property
    def disambig_ids(self) -> list[int]:
        """The phone ids of #0 ... #N."""
        return sorted(i for p, i in self.phones.items() if p.startswith("#"))

    @property
    def real_words(self) -> list[str]:
        return sorted(w for w in self.words if w not in ("<eps>", "#0", "<s>", "</s>"))

    @property
    def id_to_word(self) -> dict[int, str]:
        return {i: w for w, i in self.words.items()}

    def lexicon_fst_text(self, disambig: bool = False) -> str:
        """L.fst (``disambig=False``) or L_disambig.fst as OpenFst text."""
        if disambig:
            return lexicon_fst_text(self.disambig_entries, self.phones, self.words, self.sil_prob,
                                    self.optional_silence, f"#{len(self.disambig_ids) - 1}", wdisambig=True)
        return lexicon_fst_text(self.entries, self.phones, self.words, self.sil_prob, self.optional_silence)

    def hmm(self):
        """(HmmTopology, ContextDependency, TransitionModel) from kaldi-hmm-gmm, built once."""
        if self._hmm is None:
            khg = import_kaldi_hmm_gmm()
            topo = khg.HmmTopology()
            topo.read(self.topo)
            tree = khg.monophone_context_dependency(
                phones=topo.phones, phone2num_pdf_classes=topo.get_phone_to_num_pdf_classes()
            )
            self._hmm = (topo, tree, khg.TransitionModel(ctx_dep=tree, hmm_topo=topo))
        return self._hmm

    @property
    def transition_model(self):
        return self.hmm()[2]


def _phone_table(d: DictDir, position_dependent_phones: bool, num_disambig: int) -> tuple[dict[str, int], list[str]]:
    """phones.txt's table and the silence phones' names (with their position variants)."""
    phones, silence = {"<eps>": 0}, []
    for p in d.silence_phones:
        for v in phone_variants(p, True, position_dependent_phones):
            phones[v] = len(phones)
            silence.append(v)
    for p in d.nonsilence_phones:
        for v in phone_variants(p, False, position_dependent_phones):
            phones[v] = len(phones)
    for n in range(num_disambig + 1):
        phones[f"#{n}"] = len(phones)
    return phones, silence


def phone_variants(phone: str, silence: bool, position_dependent_phones: bool) -> list[str]:
    """Kaldi's phone_map: a silence phone keeps its bare form before its position variants."""
    if not position_dependent_phones:
        return [phone]
    return ([phone] if silence else []) + [phone + s for s in POSITIONS]


def _sets_and_questions(d: DictDir, position_dependent_phones: bool) -> tuple[list[list[str]], list[list[str]]]:
    """phones/sets (one line of the dict's phone files with all their variants) and
    phones/extra_questions (the dict's, mapped to the variants, then with position-dependent phones
    one question per position for the non-silence and for the silence phones), as prepare_lang.sh."""
    sil = set(d.silence_phones)
    lines = d.phone_lines or [[p] for p in d.silence_phones + d.nonsilence_phones]
    sets = [[v for p in line for v in phone_variants(p, p in sil, position_dependent_phones)] for line in lines]
    questions = [[v for p in q for v in phone_variants(p, p in sil, position_dependent_phones)]
                 for q in d.extra_questions]
    if position_dependent_phones:
        for suffix in POSITIONS:
            questions.append([p + suffix for p in d.nonsilence_phones])
        for suffix in ("", *POSITIONS):
            questions.append([p + suffix for p in d.silence_phones])
    return sets, [q for q in questions if q]


def build_lang(d: DictDir, sil_prob: float = 0.5, position_dependent_phones: bool = True, oov: str = "") -> Lang:
    """The lang of a dict dir (in memory); ``oov``: the lexicon word that replaces words missing from
    the lexicon (Kaldi's prepare_lang.sh <oov-dict-entry>)."""
    if not 0.0 <= sil_prob < 1.0:
        raise NnetavgError(f"--sil-prob={sil_prob}: must be in [0, 1)")
    if oov and oov not in {e.word for e in d.entries}:
        raise NnetavgError(f"--oov {oov!r}: the word is not in the lexicon (add a pronunciation for it, e.g. "
                           f"'{oov} {d.optional_silence}')")
    entries = [LexiconEntry(e.word, e.prob, position_dependent(e.pron) if position_dependent_phones else list(e.pron))
               for e in d.entries]
    disambig_entries, top = add_disambig(entries)
    phones, silence = _phone_table(d, position_dependent_phones, top + 1)  # +1: the silence path's symbol
    words = {"<eps>": 0}
    for w in sorted({e.word for e in entries}):
        words[w] = len(words)
    for w in ("#0", "<s>", "</s>"):
        words[w] = len(words)
    nonsil_ids = [i for p, i in phones.items() if i and not p.startswith("#") and p not in silence]
    topo = topology_text(nonsil_ids, [phones[p] for p in silence])
    sets, questions = _sets_and_questions(d, position_dependent_phones)
    return Lang(phones, words, topo, silence, d.optional_silence, entries, disambig_entries, sil_prob, sets,
                questions, oov)


def _write(path: str, text: str) -> None:
    with atomic_output(path) as f:
        f.write(text.encode("utf-8"))


def write_lang(lang: Lang, out_dir: str, position_dependent_phones: bool = True) -> None:
    """Writes the files of a Kaldi lang dir for ``lang`` into ``out_dir``."""
    import_kaldi_hmm_gmm()
    import kaldifst

    os.makedirs(os.path.join(out_dir, "phones"), exist_ok=True)
    for name, table in (("phones.txt", lang.phones), ("words.txt", lang.words)):
        _write(os.path.join(out_dir, name), "".join(f"{s} {i}\n" for s, i in table.items()))
    _write(os.path.join(out_dir, "lexicon.txt"), "".join(f"{e.word} {' '.join(e.pron)}\n" for e in lang.entries))
    _write(os.path.join(out_dir, "lexiconp.txt"), "".join(f"{e.word} {e.prob:g} {' '.join(e.pron)}\n" for e in lang.entries))
    _write(os.path.join(out_dir, "lexiconp_disambig.txt"),
           "".join(f"{e.word} {e.prob:g} {' '.join(e.pron)}\n" for e in lang.disambig_entries))
    _write(os.path.join(out_dir, "topo"), lang.topo)
    _write(os.path.join(out_dir, "sil_prob"), f"{lang.sil_prob:g}\n")
    disambig = [p for p in lang.phones if p.startswith("#")]
    nonsil = [p for p in lang.phones if lang.phones[p] and p not in lang.silence_phones and p not in disambig]
    sets = {"silence": lang.silence_phones, "nonsilence": nonsil, "optional_silence": [lang.optional_silence],
            "disambig": disambig, "context_indep": lang.silence_phones}
    for name, phones in sets.items():
        base = os.path.join(out_dir, "phones", name)
        _write(base + ".txt", "".join(f"{p}\n" for p in phones))
        _write(base + ".int", "".join(f"{lang.phones[p]}\n" for p in phones))
        _write(base + ".csl", ":".join(str(lang.phones[p]) for p in phones) + "\n")
    for name, lines in (("sets", lang.sets), ("extra_questions", lang.extra_questions),
                        ("roots", [["shared", "split", *line] for line in lang.sets])):
        base = os.path.join(out_dir, "phones", name)
        _write(base + ".txt", "".join(" ".join(line) + "\n" for line in lines))
        _write(base + ".int", "".join(" ".join(x if x in ("shared", "split") else str(lang.phones[x]) for x in line) + "\n"
                                      for line in lines))
    align = [("<eps>", [lang.optional_silence])] + [(e.word, e.pron) for e in lang.entries]
    _write(os.path.join(out_dir, "phones", "align_lexicon.txt"), "".join(f"{w} {w} {' '.join(p)}\n" for w, p in align))
    _write(os.path.join(out_dir, "phones", "align_lexicon.int"),
           "".join(f"{lang.words[w]} {lang.words[w]} {' '.join(str(lang.phones[x]) for x in p)}\n" for w, p in align))
    if lang.oov:
        _write(os.path.join(out_dir, "oov.txt"), f"{lang.oov}\n")
        _write(os.path.join(out_dir, "oov.int"), f"{lang.words[lang.oov]}\n")
    _write(os.path.join(out_dir, "phones", "wdisambig.txt"), "#0\n")
    _write(os.path.join(out_dir, "phones", "wdisambig_phones.int"), f"{lang.phones['#0']}\n")
    _write(os.path.join(out_dir, "phones", "wdisambig_words.int"), f"{lang.words['#0']}\n")
    if position_dependent_phones:
        kind = {"_B": "begin", "_E": "end", "_I": "internal", "_S": "singleton"}
        rows = [(p, kind.get(p[-2:], "nonword")) for p in lang.phones if lang.phones[p] and p not in disambig]
        _write(os.path.join(out_dir, "phones", "word_boundary.txt"), "".join(f"{p} {k}\n" for p, k in rows))
        _write(os.path.join(out_dir, "phones", "word_boundary.int"), "".join(f"{lang.phones[p]} {k}\n" for p, k in rows))
    for name, dis in (("L.fst", False), ("L_disambig.fst", True)):
        fst = kaldifst.compile(lang.lexicon_fst_text(dis))
        kaldifst.arcsort(fst, sort_type="olabel")
        fst.write(os.path.join(out_dir, name + ".tmp"))
        os.replace(os.path.join(out_dir, name + ".tmp"), os.path.join(out_dir, name))


def prepare_lang(dict_dir: str, out_dir: str, sil_prob: float = 0.5, position_dependent_phones: bool = True,
                 oov: str = "") -> Lang:
    """Kaldi's utils/prepare_lang.sh: the lang dir of ``dict_dir`` (a Kaldi dict dir, or a bare
    lexicon file with silence ``SIL``) written into ``out_dir``; word-position-dependent phones by
    default, as Kaldi's."""
    lang = build_lang(read_dict_dir(dict_dir), sil_prob, position_dependent_phones, oov)
    write_lang(lang, out_dir, position_dependent_phones)
    return lang


def load_lang(lang_dir: str) -> Lang:
    for name in ("phones.txt", "words.txt", "lexiconp.txt", "lexiconp_disambig.txt", "topo",
                 "phones/silence.txt", "phones/optional_silence.txt"):
        if not os.path.exists(os.path.join(lang_dir, name)):
            raise NnetavgError(f"{lang_dir}: not a lang directory of this version (no {name}; make it with prepare-lang)")
    with open(os.path.join(lang_dir, "topo")) as f:
        topo = f.read()
    entries = read_lexicon(os.path.join(lang_dir, "lexiconp.txt"), with_probs=True)
    sil = [p for line in _phone_lines(os.path.join(lang_dir, "phones/silence.txt")) for p in line]
    opt = _phone_lines(os.path.join(lang_dir, "phones/optional_silence.txt"))[0][0]
    sil_prob = 0.5
    if os.path.exists(os.path.join(lang_dir, "sil_prob")):
        with open(os.path.join(lang_dir, "sil_prob")) as f:
            sil_prob = float(f.read())
    def lines(name):
        path = os.path.join(lang_dir, name)
        return _phone_lines(path) if os.path.exists(path) else []
    oov = lines("oov.txt")
    return Lang(read_symbols(os.path.join(lang_dir, "phones.txt")), read_symbols(os.path.join(lang_dir, "words.txt")),
                topo, sil, opt, entries,
                read_lexicon(os.path.join(lang_dir, "lexiconp_disambig.txt"), with_probs=True), sil_prob,
                lines("phones/sets.txt"), lines("phones/extra_questions.txt"), oov[0][0] if oov else "")
