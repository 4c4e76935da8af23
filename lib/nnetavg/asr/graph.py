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
