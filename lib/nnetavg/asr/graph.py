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
