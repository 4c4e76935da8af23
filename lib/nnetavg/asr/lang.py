"""A Kaldi-style ``lang`` directory (phones.txt, words.txt, lexicon.txt, topo) and the HMM pieces
built from it with kaldi-hmm-gmm: topology, monophone context dependency, transition model.

Phone ids: 0 is ``<eps>``, 1 is the silence phone ``SIL``, then the lexicon's phones sorted; the
word-end disambiguation symbol ``#1`` comes last (used only while building graphs). Word ids: 0 is
``<eps>``, then the words sorted. Topology: 3 emitting left-to-right states for each phone and 5
for silence, each with a self-loop (Kaldi's standard monophone shape), transition probabilities
0.75 self-loop / 0.25 forward.

kaldi-hmm-gmm cannot write a TransitionModel, so ``final.mdl`` is not a file here: the transition
model is rebuilt from ``topo`` whenever needed, which is exact for a monophone system with the
topology's own transition probabilities.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from nnetavg.errors import NnetavgError

SIL = "SIL"
WORD_END = "#1"
NONSIL_STATES, SIL_STATES = 3, 5


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


def read_lexicon(path: str) -> dict[str, list[list[str]]]:
    """``word phone phone ...`` lines; a word may have several pronunciations."""
    lexicon: dict[str, list[list[str]]] = {}
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            fields = line.split()
            if not fields:
                continue
            if len(fields) < 2:
                raise NnetavgError(f"{path}:{n}: word {fields[0]!r} has no pronunciation")
            lexicon.setdefault(fields[0], []).append(fields[1:])
    if not lexicon:
        raise NnetavgError(f"{path}: empty lexicon")
    return lexicon


def read_symbols(path: str) -> dict[str, int]:
    table = {}
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            fields = line.split()
            if len(fields) != 2 or not fields[1].isdigit():
                raise NnetavgError(f"{path}:{n}: expected 'symbol id', got {line.strip()!r}")
            table[fields[0]] = int(fields[1])
    return table


def topology_text(nonsil_phones: list[int], sil_phones: list[int]) -> str:
    def entry(phones, num_states):
        lines = ["<TopologyEntry>", "<ForPhones>", " ".join(map(str, phones)), "</ForPhones>"]
        for s in range(num_states):
            lines.append(f"<State> {s} <PdfClass> {s} <Transition> {s} 0.75 <Transition> {s + 1} 0.25 </State>")
        lines.append(f"<State> {num_states} </State>")
        lines.append("</TopologyEntry>")
        return lines

    return "\n".join(["<Topology>", *entry(nonsil_phones, NONSIL_STATES), *entry(sil_phones, SIL_STATES), "</Topology>", ""])


@dataclass
class Lang:
    phones: dict[str, int]
    words: dict[str, int]
    lexicon: dict[str, list[list[str]]]
    topo: str
    _hmm: tuple | None = field(default=None, repr=False)

    @property
    def word_end_id(self) -> int:
        return self.phones[WORD_END]

    @property
    def id_to_word(self) -> dict[int, str]:
        return {i: w for w, i in self.words.items()}

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


def prepare_lang(lexicon_path: str, out_dir: str) -> Lang:
    """Write phones.txt, words.txt, lexicon.txt and topo for ``lexicon_path`` into ``out_dir``."""
    lexicon = read_lexicon(lexicon_path)
    phone_set = sorted({p for prons in lexicon.values() for pron in prons for p in pron} - {SIL})
    for p in phone_set:
        if p.startswith("#") or p == "<eps>":
            raise NnetavgError(f"{lexicon_path}: phone {p!r} clashes with a reserved symbol")
    phones = {"<eps>": 0, SIL: 1}
    for p in phone_set:
        phones[p] = len(phones)
    phones[WORD_END] = len(phones)
    words = {"<eps>": 0}
    for w in sorted(lexicon):
        words[w] = len(words)
    topo = topology_text(list(range(2, 2 + len(phone_set))), [1])
    os.makedirs(out_dir, exist_ok=True)
    for name, table in (("phones.txt", phones), ("words.txt", words)):
        with open(os.path.join(out_dir, name), "w", encoding="utf-8") as f:
            f.writelines(f"{s} {i}\n" for s, i in table.items())
    with open(os.path.join(out_dir, "lexicon.txt"), "w", encoding="utf-8") as f:
        for w in sorted(lexicon):
            f.writelines(f"{w} {' '.join(pron)}\n" for pron in lexicon[w])
    with open(os.path.join(out_dir, "topo"), "w") as f:
        f.write(topo)
    return Lang(phones, words, lexicon, topo)


def load_lang(lang_dir: str) -> Lang:
    for name in ("phones.txt", "words.txt", "lexicon.txt", "topo"):
        if not os.path.exists(os.path.join(lang_dir, name)):
            raise NnetavgError(f"{lang_dir}: not a lang directory (no {name}; make it with prepare-lang)")
    with open(os.path.join(lang_dir, "topo")) as f:
        topo = f.read()
    return Lang(
        read_symbols(os.path.join(lang_dir, "phones.txt")),
        read_symbols(os.path.join(lang_dir, "words.txt")),
        read_lexicon(os.path.join(lang_dir, "lexicon.txt")),
        topo,
    )
