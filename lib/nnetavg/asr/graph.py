"""An HCLG decoding graph for a word loop, built with kaldifst and kaldi-hmm-gmm.

The recipe of Kaldi's ``utils/mkgraph.sh``, for a monophone system and a unigram word loop:

  G   = one state, start and final, with a ``word:word`` loop of cost log(number of words) for
        every word of the lexicon;
  LG  = det(min(L_disambig o G)): the lang's lexicon FST with its disambiguation symbols
        (homophones and prefixes get #1, #2, ...; optional silence between words with the lang's
        ``sil_prob``), so LG determinizes whatever the lexicon;
  C o LG with a context width of 1 (compose_context, every #n a disambiguation symbol);
  Ha  = H without self-loops (get_h_transducer, transition scale 1.0);
  HCLGa = det(Ha o CLG), with the disambiguation transition ids replaced by <eps> and epsilons
        removed, minimized;
  HCLG = HCLGa with self-loops (self-loop scale 0.1, reordered), as mkgraph.sh.
"""

from __future__ import annotations

import dataclasses
import math

from nnetavg.asr.lang import Lang, import_kaldi_hmm_gmm
from nnetavg.errors import NnetavgError


def word_loop_g_text(lang: Lang) -> str:
    """G of the unigram word loop as OpenFst text."""
    words = lang.real_words
    cost = math.log(len(words))
    return "".join(f"0 0 {lang.words[w]} {lang.words[w]} {cost:.6f}\n" for w in words) + "0 0\n"


def compose_lg(lang: Lang):
    """det(min(L_disambig o G)) of the word loop."""
    import_kaldi_hmm_gmm()
    import kaldifst

    lex = kaldifst.compile(lang.lexicon_fst_text(disambig=True))
    kaldifst.arcsort(lex, sort_type="olabel")
    g = kaldifst.compile(word_loop_g_text(lang))
    kaldifst.arcsort(g, sort_type="ilabel")
    lg = kaldifst.compose(lex, g)
    try:
        stopped_early = kaldifst.determinize_star(lg)
    except Exception as e:  # kaldifst raises a bare RuntimeError ("FST was not functional")
        stopped_early, why = True, str(e).strip().splitlines()[-1]
    else:
        why = "stopped early"
    if stopped_early:
        raise NnetavgError(f"the LG graph did not determinize ({why}): a lexicon ambiguity without a "
                           "disambiguation symbol? (rebuild the lang dir with prepare-lang)")
    kaldifst.minimize_encoded(lg)
    kaldifst.arcsort(lg, sort_type="ilabel")
    return lg


def _relabel_inputs(fst, labels: set[int]):
    """A copy of ``fst`` with the given input labels replaced by <eps> (Kaldi's fstrmsymbols)."""
    import kaldifst

    out = []
    for line in fst.to_str().splitlines():
        f = line.split()
        if len(f) >= 4 and int(f[2]) in labels:
            f[2] = "0"
        out.append(" ".join(f))
    return kaldifst.compile("\n".join(out) + "\n", keep_state_numbering=True)


def _compose_h(h, clg, disambig_inputs):
    """det(H o CLG) with H's disambiguation inputs then removed, epsilon-free and minimized."""
    import kaldifst

    kaldifst.arcsort(h, sort_type="olabel")
    hclg = kaldifst.compose(h, clg)
    if kaldifst.determinize_star(hclg):
        raise NnetavgError("the HCLG graph did not determinize")
    hclg = _relabel_inputs(hclg, set(disambig_inputs))
    kaldifst.rmepsilon(hclg)
    kaldifst.minimize_encoded(hclg)
    return hclg


def make_word_loop_graph(lang: Lang, silence_prob: float | None = None, self_loop_scale: float = 0.1):
    """HCLG of the word loop; ``silence_prob`` replaces the lang's optional-silence probability."""
    khg = import_kaldi_hmm_gmm()
    import kaldifst

    if silence_prob is not None:
        if not 0.0 <= silence_prob < 1.0:
            raise NnetavgError(f"silence probability {silence_prob}: must be in [0, 1)")
        lang = dataclasses.replace(lang, sil_prob=silence_prob)
    _, tree, tm = lang.hmm()
    lg = compose_lg(lang)
    clg, ilabels = kaldifst.compose_context(
        disambig_syms=lang.disambig_ids, context_width=tree.context_width,
        central_position=tree.central_position, ifst=lg,
    )
    kaldifst.arcsort(clg, sort_type="ilabel")
    ha, disambig_tids = khg.get_h_transducer(
        ilabel_info=ilabels, ctx_dep=tree, trans_model=tm, config=khg.HTransducerConfig(transition_scale=1.0)
    )
    hclga = _compose_h(ha, clg, disambig_tids)
    hclg = khg.add_self_loops(self_loop_scale=self_loop_scale, disambig_syms=[], reorder=True, trans_model=tm, ifst=hclga)
    kaldifst.arcsort(hclg, sort_type="ilabel")
    return hclg


# --------------------------------------------------------------------------- any tree (ours)

def h_transducer_text(ilabels: list[list[int]], tm, tree, self_loop_scale: float = 0.1,
                      transition_scale: float = 1.0) -> tuple[str, list[int]]:
    """Kaldi's H as OpenFst text, with the HMMs' self-loops included (mkgraph.sh adds them after
    determinization; here they are in from the start): for each C label (a phone window), the
    central phone's HMM with the tree's pdfs, entered by an arc that outputs the label and left
    back to state 0; disambiguation windows become arcs whose input is a new symbol above the
    transition ids. Returns the text and those disambiguation input symbols."""
    lines, nxt, disambig = [], 1, []
    cost = lambda lp: -lp  # noqa: E731
    for label, window in enumerate(ilabels):
        if label == 0 or not window:
            continue
        if len(window) == 1 and window[0] <= 0:      # a disambiguation symbol (-phone id)
            sym = tm.num_tids + 1 + len(disambig)
            disambig.append(sym)
            lines.append(f"0 0 {sym} {label} 0")
            continue
        phone = window[tree.P]
        entry = tm.topo.entry(phone)
        n_emit = len(entry) - 1
        states = list(range(nxt, nxt + n_emit))
        nxt += n_emit
        lines.append(f"0 {states[0]} 0 {label} 0")
        for hs in range(n_emit):
            pdf = tree.compute(tuple(window), entry[hs].pdf_class)
            ts = tm.tstate(phone, hs, pdf)
            loop = tm.self_loop_log_prob(ts)
            nl = math.log(max(1.0 - math.exp(loop), 1e-10)) if loop is not None else 0.0
            for t in range(tm.state2id[ts], tm.state2id[ts + 1]):
                dest = int(tm.tid2dest[t])
                lp = float(tm.log_probs[t])
                w = self_loop_scale * lp if dest == hs else transition_scale * (lp - nl) + self_loop_scale * nl
                to = states[dest] if dest < n_emit else 0
                lines.append(f"{states[hs]} {to} {t} 0 {cost(w):.6f}")
    lines.append("0 0")
    return "\n".join(lines) + "\n", disambig


def make_graph(lang: Lang, tm, tree, self_loop_scale: float = 0.1):
    """HCLG of the word loop for our transition model and tree (monophone or triphone): C from
    kaldifst's compose_context, H built here with self-loops, det(H o CLG) with the
    disambiguation symbols removed afterwards, epsilons removed, minimized."""
    import_kaldi_hmm_gmm()
    import kaldifst

    lg = compose_lg(lang)
    clg, ilabels = kaldifst.compose_context(disambig_syms=lang.disambig_ids, context_width=tree.N,
                                            central_position=tree.P, ifst=lg)
    kaldifst.arcsort(clg, sort_type="ilabel")
    text, disambig = h_transducer_text(ilabels, tm, tree, self_loop_scale)
    hclg = _compose_h(kaldifst.compile(text), clg, disambig)
    kaldifst.arcsort(hclg, sort_type="ilabel")
    return hclg


_FST_MAGIC = 2125659606


def read_fst(path: str):
    """An OpenFst graph file (Kaldi's HCLG.fst: ``const`` as utils/mkgraph.sh writes it, or
    ``vector`` as make-graph does) as a kaldifst StdVectorFst. kaldifst reads only the vector type,
    so a ConstFst (OpenFst's const-fst.h layout: header, state records (final weight, first arc,
    arc count, epsilon counts), then the arcs; 16-byte aligned in file version 1) is read here."""
    import numpy as np

    import_kaldi_hmm_gmm()
    import kaldifst

    with open(path, "rb") as f:
        data = f.read()

    def string_at(pos: int) -> tuple[str, int]:
        n = int.from_bytes(data[pos:pos + 4], "little")
        return data[pos + 4:pos + 4 + n].decode(errors="replace"), pos + 4 + n

    if len(data) < 8 or int.from_bytes(data[:4], "little") != _FST_MAGIC:
        raise NnetavgError(f"{path}: not an OpenFst binary FST (no FST magic number)")
    fst_type, pos = string_at(4)
    arc_type, pos = string_at(pos)
    if arc_type != "standard":
        raise NnetavgError(f"{path}: arc type {arc_type!r}; a decoding graph has 'standard' (tropical) arcs")
    if fst_type == "vector":
        fst = kaldifst.StdVectorFst.read(path)
        if fst is None:
            raise NnetavgError(f"{path}: cannot read the vector FST")
        return fst
    if fst_type != "const":
        raise NnetavgError(f"{path}: FST type {fst_type!r}; only 'vector' and 'const' are read")
    version, flags = np.frombuffer(data, "<i4", 2, pos)
    start, num_states, num_arcs = np.frombuffer(data, "<i8", 3, pos + 16)
    pos += 16 + 24
    if flags & 3:
        raise NnetavgError(f"{path}: a graph with symbol tables inside is not read here (fstconvert it without them)")
    aligned = version == 1 or bool(flags & 4)   # version 2 (fstconvert's default) is unaligned
    if version not in (1, 2):
        raise NnetavgError(f"{path}: ConstFst file version {version}; versions 1 and 2 are read")
    align = (lambda p: -(-p // 16) * 16) if aligned else (lambda p: p)
    pos = align(pos)
    states = np.frombuffer(data, np.dtype([("final", "<f4"), ("pos", "<u4"), ("narcs", "<u4"), ("nie", "<u4"),
                                           ("noe", "<u4")]), int(num_states), pos)
    pos = align(pos + states.nbytes)
    arcs = np.frombuffer(data, np.dtype([("il", "<i4"), ("ol", "<i4"), ("w", "<f4"), ("next", "<i4")]),
                         int(num_arcs), pos)
    src = np.repeat(np.arange(num_states), states["narcs"].astype(np.int64))
    order = np.argsort(src != start, kind="stable")   # the text form's first line is the start state's
    lines = [f"{s} {d} {i} {o} {w!r}" for s, d, i, o, w in zip(src[order].tolist(), arcs["next"][order].tolist(),
                                                            arcs["il"][order].tolist(), arcs["ol"][order].tolist(),
                                                            arcs["w"][order].tolist())]
    finals = np.flatnonzero(np.isfinite(states["final"]))
    if not lines:
        lines = [str(start)]
    lines += [f"{s} {states['final'][s].item()!r}" for s in finals.tolist()]
    fst = kaldifst.compile("\n".join(lines) + "\n", keep_state_numbering=True)
    if fst.num_states != num_states and num_states:
        raise NnetavgError(f"{path}: read {fst.num_states} of {num_states} states")
    return fst
