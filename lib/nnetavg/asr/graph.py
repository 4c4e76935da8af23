"""An HCLG decoding graph for a word loop, built with kaldifst and kaldi-hmm-gmm.

The recipe of Kaldi's ``utils/mkgraph.sh``, for a monophone system and a unigram word loop:

  LG  = L o G, written directly: one loop state (start and final); from it, each pronunciation is
        a chain ``p1:word p2:<eps> ... pn:<eps> #1:<eps>`` back to the loop state, with cost
        log(num_words); silence is an optional ``SIL:<eps>`` self-loop of probability
        ``silence_prob``. The word-end symbol ``#1`` makes the phone string name the word string
        uniquely, so LG determinizes.
  det(LG), minimized; C o LG with a context width of 1 (compose_context);
  Ha  = H without self-loops (get_h_transducer, transition scale 1.0);
  HCLGa = det(Ha o CLG), with the disambiguation transition ids replaced by <eps> and epsilons
        removed, minimized;
  HCLG = HCLGa with self-loops (self-loop scale 0.1, reordered), as mkgraph.sh.
"""

from __future__ import annotations

import math

from nnetavg.asr.lang import SIL, Lang, import_kaldi_hmm_gmm
from nnetavg.errors import NnetavgError


def word_loop_lg_text(lang: Lang, silence_prob: float = 0.5, grammar: bool = True) -> str:
    """LG of the word loop as OpenFst text; ``grammar=False``: L alone (no word costs), the
    lexicon FST a training-graph compiler takes."""
    word_cost = math.log(len(lang.lexicon)) if grammar else 0.0
    sil_cost = -math.log(silence_prob)
    lines = [f"0 0 {lang.phones[SIL]} 0 {sil_cost:.6f}"]
    next_state = 1
    for word in sorted(lang.lexicon):
        prons = lang.lexicon[word]
        pron_cost = word_cost + (math.log(len(prons)) if grammar else 0.0)
        for pron in prons:
            src, olabel, cost = 0, lang.words[word], pron_cost
            for phone in pron:
                if phone not in lang.phones:
                    raise NnetavgError(f"lexicon: word {word}: phone {phone!r} is not in phones.txt")
                lines.append(f"{src} {next_state} {lang.phones[phone]} {olabel} {cost:.6f}")
                src, olabel, cost = next_state, 0, 0.0
                next_state += 1
            lines.append(f"{src} 0 {lang.word_end_id} 0")
    lines.append(f"0 {-math.log(1.0 - silence_prob) if silence_prob < 1 else 0.0:.6f}")
    return "\n".join(lines) + "\n"


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


def make_word_loop_graph(lang: Lang, silence_prob: float = 0.5, self_loop_scale: float = 0.1):
    khg = import_kaldi_hmm_gmm()
    import kaldifst

    _, tree, tm = lang.hmm()
    lg = kaldifst.compile(word_loop_lg_text(lang, silence_prob))
    if kaldifst.determinize_star(lg):  # returns True when it stopped early
        raise NnetavgError("the LG graph did not determinize (lexicon ambiguity?)")
    kaldifst.minimize_encoded(lg)
    kaldifst.arcsort(lg, sort_type="ilabel")
    clg, ilabels = kaldifst.compose_context(
        disambig_syms=[lang.word_end_id], context_width=tree.context_width,
        central_position=tree.central_position, ifst=lg,
    )
    kaldifst.arcsort(clg, sort_type="ilabel")
    ha, disambig_tids = khg.get_h_transducer(
        ilabel_info=ilabels, ctx_dep=tree, trans_model=tm, config=khg.HTransducerConfig(transition_scale=1.0)
    )
    kaldifst.arcsort(ha, sort_type="olabel")
    hclga = kaldifst.compose(ha, clg)
    if kaldifst.determinize_star(hclga):
        raise NnetavgError("the HCLG graph did not determinize")
    hclga = _relabel_inputs(hclga, set(disambig_tids))
    kaldifst.rmepsilon(hclga)
    kaldifst.minimize_encoded(hclga)
    hclg = khg.add_self_loops(self_loop_scale=self_loop_scale, disambig_syms=[], reorder=True, trans_model=tm, ifst=hclga)
    kaldifst.arcsort(hclg, sort_type="ilabel")
    return hclg
