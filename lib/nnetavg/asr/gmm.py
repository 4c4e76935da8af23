"""A monophone GMM baseline with kaldi-hmm-gmm, trained on given frame alignments, and forced
alignment with it (Kaldi's gmm-align-compiled) to make a GMM system's targets for the DNN.

Kaldi's ``train_mono.sh`` without the flat start: each pdf starts as one Gaussian with the mean
and variance of its aligned frames; then ``num_iters`` passes of ML re-estimation, each followed
by a mix-up (``split_by_count``) towards ``total_gauss`` Gaussians in ``num_iters // 2`` equal
steps. Transition probabilities stay those of the topology (the decoding graph is built from the
same topology). kaldi-hmm-gmm's mix-up is not seedable, so results vary slightly run to run.
"""

from __future__ import annotations

import logging

import numpy as np

from nnetavg.asr.lang import Lang, import_kaldi_hmm_gmm

log = logging.getLogger(__name__)


def train_mono_gmm(lang: Lang, feats: dict[str, np.ndarray], pdf_ali: dict[str, np.ndarray],
                   num_iters: int = 10, total_gauss: int = 1000):
    khg = import_kaldi_hmm_gmm()
    num_pdfs = lang.transition_model.num_pdfs
    keys = [k for k in feats if k in pdf_ali]
    x = np.concatenate([feats[k] for k in keys]).astype(np.float64)
    y = np.concatenate([pdf_ali[k] for k in keys])
    dim = x.shape[1]
    glob_mean, glob_var = x.mean(0), x.var(0) + 1e-3
    am = khg.AmDiagGmm()
    for pdf in range(num_pdfs):
        rows = x[y == pdf]
        mean, var = (rows.mean(0), rows.var(0) + 1e-3) if len(rows) > 2 else (glob_mean, glob_var)
        gmm = khg.DiagGmm(nmix=1, dim=dim)
        gmm.set_weights(np.ones(1, np.float32))
        gmm.set_means(mean[None].astype(np.float32))
        gmm.set_invvars((1.0 / var)[None].astype(np.float32))
        gmm.compute_gconsts()
        am.add_pdf(gmm)
    flags = khg.str_to_gmm_flags("mvw")
    mix_iters = max(1, num_iters // 2)
    step = max(0, (total_gauss - num_pdfs) // mix_iters)
    target = num_pdfs
    x32 = x.astype(np.float32)
    for it in range(num_iters):
        acc = khg.AccumAmDiagGmm()
        acc.init(model=am, flags=flags)
        like = 0.0
        for t in range(len(y)):
            like += acc.accumulate_for_gmm(model=am, data=x32[t], gmm_index=int(y[t]), weight=1.0)
        impr, count = khg.mle_am_diag_gmm_update(config=khg.MleDiagGmmOptions(), amdiag_gmm_acc=acc, flags=flags, am_gmm=am)
        log.info("GMM iteration %d: avg_loglike=%.3f impr_per_frame=%.4f gauss=%d", it, like / len(y), impr / count, am.num_gauss)
        if it < mix_iters:
            target = min(total_gauss, target + step)
            occs = np.array([acc.get_acc(i).occupancy.sum() for i in range(acc.num_accs)], np.float32)
            am.split_by_count(state_occs=occs, target_components=target, perturb_factor=0.01, power=0.2, min_count=20.0)
    return am


def align_with_gmm(lang: Lang, am, feats: dict[str, np.ndarray], texts: dict[str, list[str]],
                   beam: float = 10.0, retry_beam: float = 40.0, acoustic_scale: float = 0.1):
    """Viterbi alignment (transition ids) of each utterance to its transcript, as Kaldi's
    gmm-align-compiled: training graphs from L (optional silence between words, self-loop scale
    0.1), beam ``beam`` retried with ``retry_beam``. Returns ({utt: tids}, failed utterances)."""
    khg = import_kaldi_hmm_gmm()
    import kaldifst

    _, tree, tm = lang.hmm()
    lex = kaldifst.compile(lang.lexicon_fst_text())  # L.fst, as compile-train-graphs takes
    kaldifst.arcsort(lex, sort_type="olabel")
    compiler = khg.TrainingGraphCompiler(trans_model=tm, ctx_dep=tree, lex_fst=lex, disambig_syms=lang.disambig_ids,
                                         opts=khg.TrainingGraphCompilerOptions(self_loop_scale=0.1))
    config = khg.AlignConfig(beam=beam, retry_beam=retry_beam, careful=False)
    out, failed = {}, []
    for utt, x in feats.items():
        words = texts.get(utt)
        if not words or any(w not in lang.words for w in words):
            failed.append(utt)
            continue
        graph = compiler.compile_graph_from_text([lang.words[w] for w in words])
        decodable = khg.DecodableAmDiagGmmScaled(am=am, tm=tm, feats=np.ascontiguousarray(x, np.float32),
                                                 scale=acoustic_scale)
        result = khg.align_utterance_wrapper(config, utt, acoustic_scale, graph, decodable, 0, 0, 0, 0.0, 0)
        ali = result[5]
        if result[0] != 1 or len(ali) != x.shape[0]:
            failed.append(utt)
            continue
        out[utt] = np.asarray(ali, dtype=np.int32)
    return out, failed
