"""GMM systems trained here, in Kaldi's formats and on Kaldi's schedules: the monophone flat start
(``steps/train_mono.sh``), alignment (``steps/align_si.sh``) and the triphone system
(``steps/train_deltas.sh``, tree building in :mod:`nnetavg.asr.tree_build`).

Features are Kaldi's for these scripts: the data dir's ``feats.scp`` with per-speaker mean
normalisation from ``cmvn.scp`` (``apply-cmvn``, no variance normalisation) and deltas and
delta-deltas (``add-deltas``). A pass of EM scores a batch of utterances with every Gaussian (two
GEMMs), realigns it where the schedule says so (exact Viterbi, :mod:`nnetavg.asr.align_graph`) and
accumulates its statistics from the same scores.
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass, field

import numpy as np

from nnetavg.asr.align_graph import GraphCompiler, HmmGraph, equal_align, viterbi_align
from nnetavg.asr.gmm_est import GmmAccs, GmmScorer, MleOptions, init_single_gaussian, mle_update, mixup
from nnetavg.asr.lang import Lang
from nnetavg.asr.models import (AmDiagGmm, ContextDependency, Topology, TransitionModel, monophone_tree,
                                write_model, write_tree)
from nnetavg.data.cmvn import apply_cmvn
from nnetavg.errors import NnetavgError
from nnetavg.io.tables import INT_VECTOR, MATRIX, RandomAccessReader, SequentialReader, TableWriter

log = logging.getLogger(__name__)

MONO_REALIGN = (1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 12, 14, 16, 18, 20, 23, 26, 29, 32, 35, 38)


# --------------------------------------------------------------------------- data

@dataclass
class GmmData:
    feats: dict[str, np.ndarray]
    words: dict[str, list[str]]
    skipped: dict[str, str] = field(default_factory=dict)   # utterance -> why it is left out
    oov_count: int = 0

    @property
    def utts(self) -> list[str]:
        return [u for u in self.feats if u in self.words]

    @property
    def num_frames(self) -> int:
        return sum(len(self.feats[u]) for u in self.utts)

    def keep(self, utts) -> "GmmData":
        """Only the utterances in ``utts``."""
        keep = set(utts)
        self.feats = {u: x for u, x in self.feats.items() if u in keep}
        self.words = {u: w for u, w in self.words.items() if u in keep}
        return self


def read_text(path: str) -> dict[str, list[str]]:
    out = {}
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            fields = line.split()
            if fields:
                out[fields[0]] = fields[1:]
    return out


def load_data(data_dir: str, lang: Lang | None = None, oov: str | None = None, deltas: bool = True,
              with_text: bool = True) -> GmmData:
    """A data dir's features for a GMM (CMVN by speaker, deltas) and transcripts; words outside the
    lexicon map to ``oov`` (counted) or leave the utterance out (named in ``skipped``)."""
    from nnetavg.asr.features import add_deltas

    for name in ("feats.scp", "utt2spk") + (("text",) if with_text else ()):
        if not os.path.exists(os.path.join(data_dir, name)):
            raise NnetavgError(f"{data_dir}: no {name} (a Kaldi data dir with features is needed)")
    utt2spk = dict(line.split()[:2] for line in open(os.path.join(data_dir, "utt2spk")) if line.strip())
    cmvn_scp = os.path.join(data_dir, "cmvn.scp")
    cmvn = RandomAccessReader(f"scp:{cmvn_scp}", MATRIX) if os.path.exists(cmvn_scp) else None
    feats = {}
    for utt, x in SequentialReader(f"scp:{data_dir}/feats.scp", MATRIX):
        if cmvn is not None:
            spk = utt2spk.get(utt)
            if spk is None or spk not in cmvn:
                raise NnetavgError(f"{data_dir}: utterance {utt}: no CMVN stats for its speaker {spk}")
            x = apply_cmvn(x, cmvn[spk], name=f"{cmvn_scp} ({spk})")
        feats[utt] = add_deltas(x) if deltas else np.asarray(x, np.float32)
    data = GmmData(feats, {})
    if not with_text:
        return data
    known = set(lang.lexicon) if lang is not None else None
    for utt, words in read_text(os.path.join(data_dir, "text")).items():
        if utt not in feats:
            continue
        if not words:
            data.skipped[utt] = "empty transcript"
            continue
        if known is not None:
            bad = [w for w in words if w not in known]
            if bad:
                if oov and oov in known:
                    data.oov_count += len(bad)
                    words = [w if w in known else oov for w in words]
                else:
                    data.skipped[utt] = f"words not in the lexicon: {' '.join(bad[:5])}"
                    continue
        data.words[utt] = words
    for utt in feats:
        if utt not in data.words and utt not in data.skipped:
            data.skipped[utt] = "no transcript"
    if data.skipped:
        shown = "; ".join(f"{u}: {why}" for u, why in list(data.skipped.items())[:5])
        log.warning("%s: %d utterances left out (%s%s)", data_dir, len(data.skipped), shown,
                    "; ..." if len(data.skipped) > 5 else "")
    if data.oov_count:
        log.warning("%s: %d words not in the lexicon mapped to %s", data_dir, data.oov_count, oov)
    return data


def lexicon_ids(lang: Lang) -> dict[str, list[tuple[list[int], float]]]:
    out: dict[str, list[tuple[list[int], float]]] = {}
    for e in lang.entries:
        out.setdefault(e.word, []).append(([lang.phones[p] for p in e.pron], e.prob))
    return out


# --------------------------------------------------------------------------- a GMM system

@dataclass
class GmmSystem:
    tm: TransitionModel
    tree: ContextDependency
    am: AmDiagGmm
    lang: Lang

    def compiler(self) -> GraphCompiler:
        return GraphCompiler(self.tm, self.tree, lexicon_ids(self.lang), self.lang.phones[self.lang.optional_silence],
                             self.lang.sil_prob)

    def silence_boost(self, boost: float) -> np.ndarray | None:
        """log(boost) on the pdfs of silence phones (Kaldi's gmm-boost-silence)."""
        if boost == 1.0:
            return None
        sil = {self.lang.phones[p] for p in self.lang.silence_phones}
        out = np.zeros(self.tm.num_pdfs)
        for phone, _, pdf in self.tm.triples:
            if phone in sil:
                out[pdf] = np.log(boost)
        return out


def batches(utts: list[str], feats: dict, max_frames: int = 20000):
    """Utterances grouped by length, about ``max_frames`` frames a batch."""
    order = sorted(utts, key=lambda u: len(feats[u]))
    batch, frames = [], 0
    for u in order:
        batch.append(u)
        frames += len(feats[u])
        if frames >= max_frames:
            yield batch
            batch, frames = [], 0
    if batch:
        yield batch


@dataclass
class PassStats:
    frames: int = 0
    aligned: int = 0
    failed: list = field(default_factory=list)
    ac_loglike: float = 0.0


def em_pass(system: GmmSystem, data: GmmData, graphs: dict[str, HmmGraph], alis: dict[str, np.ndarray],
            realign: bool, boost: float = 1.0, acoustic_scale: float = 0.1, accumulate: bool = True):
    """One pass: (re)align where asked, accumulate GMM and transition statistics with the current
    model. Returns (accs, alignments, stats)."""
    scorer = GmmScorer(system.am)
    accs = GmmAccs(system.am, system.tm.num_tids) if accumulate else None
    boost_vec = system.silence_boost(boost)
    stats = PassStats()
    new_alis = {}
    for batch in batches([u for u in data.utts if u in graphs], data.feats):
        x = np.concatenate([data.feats[u] for u in batch])
        bounds = np.cumsum([0] + [len(data.feats[u]) for u in batch])
        if realign:
            lls = [scorer.pdf_loglikes_of(data.feats[u], np.unique(graphs[u].pdf[graphs[u].pdf >= 0])) for u in batch]
            results = viterbi_align([graphs[u] for u in batch], lls, acoustic_scale, boost_vec)
            for u, (tids, _) in zip(batch, results):
                if tids is None:
                    stats.failed.append(u)
                else:
                    new_alis[u] = tids
        else:
            for u in batch:
                if u in alis:
                    new_alis[u] = alis[u]
        keep = [i for i, u in enumerate(batch) if u in new_alis]
        if not keep:
            continue
        rows = np.concatenate([np.arange(bounds[i], bounds[i + 1]) for i in keep])
        tids = np.concatenate([new_alis[batch[i]] for i in keep])
        pdfs = system.tm.tid2pdf[tids]
        stats.frames += len(rows)
        stats.aligned += len(keep)
        if accs is None:
            pll = np.concatenate(lls)
            stats.ac_loglike += float(pll[rows, pdfs].sum())
        else:
            before = accs.loglike
            accs.accumulate(scorer, x[rows], pdfs)
            accs.trans += np.bincount(tids, minlength=system.tm.num_tids + 1)
            stats.ac_loglike += accs.loglike - before
    return accs, new_alis, stats


def update(system: GmmSystem, accs: GmmAccs, num_gauss: int, power: float, min_occ: float, seed: int) -> dict:
    """gmm-est: ML update of the GMMs and the transitions, then mix-up towards ``num_gauss``."""
    t_impr, t_count = system.tm.update(accs.trans)
    am, info = mle_update(system.am, accs, MleOptions(min_gaussian_occupancy=min_occ))
    sizes = np.array([g.num_gauss for g in system.am.pdfs])
    occs = np.add.reduceat(accs.occ, np.r_[0, np.cumsum(sizes)[:-1]])      # per pdf, before the update
    system.am = mixup(am, occs, num_gauss, power=power, seed=seed)
    info.update(transition_impr=t_impr / max(t_count, 1.0), gauss=system.am.num_gauss)
    return info


def compile_graphs(system: GmmSystem, data: GmmData) -> dict[str, HmmGraph]:
    comp = system.compiler()
    graphs = {}
    for u in data.utts:
        try:
            graphs[u] = comp.compile(u, data.words[u])
        except NnetavgError as e:
            data.skipped[u] = str(e)
            log.warning("%s", e)
    return graphs


def _log_pass(tag, it, stats: PassStats, info: dict | None, t0: float):
    like = stats.ac_loglike / max(stats.frames, 1)
    extra = "" if info is None else f" gauss={info['gauss']} removed={info['removed']}"
    log.info("%s iteration %d: utterances=%d failed=%d frames=%d avg-loglike=%.4f%s (%.1fs)", tag, it,
             stats.aligned, len(stats.failed), stats.frames, like, extra, time.time() - t0)
    if stats.failed:
        log.warning("%s iteration %d: no alignment for %d utterances (shorter than their transcript's "
                    "shortest path): %s", tag, it, len(stats.failed), " ".join(stats.failed[:5]))


@dataclass
class EmSchedule:
    """The passes of train_mono.sh and train_deltas.sh: realign on ``realign_iters``, grow the
    Gaussians by equal steps to ``totgauss`` until pass ``max_iter_inc``."""
    num_iters: int
    max_iter_inc: int
    totgauss: int
    realign_iters: tuple
    power: float = 0.25
    boost_silence: float = 1.0
    seed: int = 0


@dataclass
class MonoOptions(EmSchedule):
    num_iters: int = 40
    max_iter_inc: int = 30
    totgauss: int = 1000
    realign_iters: tuple = MONO_REALIGN


def em_passes(tag: str, system: "GmmSystem", data: GmmData, graphs: dict, alis: dict, opts: EmSchedule) -> dict:
    """Passes 1 .. num_iters-1 after the first estimate: (re)align, accumulate, update, mix up.
    Returns the last alignments."""
    num_gauss = system.tm.num_pdfs
    inc = max(0, (opts.totgauss - num_gauss) // opts.max_iter_inc)
    for x in range(1, opts.num_iters):
        t0 = time.time()
        accs, alis, stats = em_pass(system, data, graphs, alis, x in opts.realign_iters, opts.boost_silence)
        info = update(system, accs, num_gauss, opts.power, 10.0, opts.seed + x)
        _log_pass(tag, x, stats, info, t0)
        if x <= opts.max_iter_inc:
            num_gauss += inc
    return alis


def train_mono(lang: Lang, data: GmmData, opts: MonoOptions = MonoOptions()) -> tuple[GmmSystem, dict]:
    """Kaldi's train_mono.sh: a flat start from equal alignments, no alignments given."""
    topo = Topology.parse(lang.topo)
    tree = monophone_tree(topo, phone_sets(lang)[0])    # gmm-init-mono --shared-phones=phones/sets.int
    tm = TransitionModel.build(topo, tree)
    first = data.utts[:10]
    am = init_single_gaussian(tm.num_pdfs, np.concatenate([data.feats[u] for u in first]))
    system = GmmSystem(tm, tree, am, lang)
    graphs = compile_graphs(system, data)
    t0 = time.time()
    alis = {}
    for u, g in graphs.items():
        a = equal_align(g, tm, len(data.feats[u]), u)
        if a is not None:
            alis[u] = a
    accs, alis, stats = em_pass(system, data, graphs, alis, realign=False)
    stats.failed = [u for u in graphs if u not in alis]
    info = update(system, accs, tm.num_pdfs, opts.power, 3.0, opts.seed)   # gmm-est --min-gaussian-occupancy=3
    _log_pass("mono", 0, stats, info, t0)
    return system, em_passes("mono", system, data, graphs, alis, opts)


def align(system: GmmSystem, data: GmmData, boost: float = 1.0) -> tuple[dict, list]:
    """steps/align_si.sh: alignments of every utterance with the final model."""
    graphs = compile_graphs(system, data)
    _, alis, stats = em_pass(system, data, graphs, {}, realign=True, boost=boost, accumulate=False)
    log.info("aligned %d utterances (%d failed), %d frames, avg-loglike=%.4f", stats.aligned, len(stats.failed),
             stats.frames, stats.ac_loglike / max(stats.frames, 1))
    return alis, stats.failed


# --------------------------------------------------------------------------- Kaldi's exp dir

def write_exp_dir(out_dir: str, system: GmmSystem, alis: dict[str, np.ndarray], lang_dir: str | None = None) -> None:
    """final.mdl, tree, ali.1.gz (transition ids), num_jobs, phones.txt: what Kaldi's GMM steps
    leave and its nnet1 scripts read."""
    os.makedirs(out_dir, exist_ok=True)
    write_model(os.path.join(out_dir, "final.mdl"), system.tm, system.am)
    write_tree(os.path.join(out_dir, "tree"), system.tree)
    with TableWriter(f"ark:| gzip -c > {out_dir}/ali.1.gz.tmp", INT_VECTOR) as w:
        for u in sorted(alis):
            w.write(u, alis[u])
    os.replace(f"{out_dir}/ali.1.gz.tmp", f"{out_dir}/ali.1.gz")
    with open(os.path.join(out_dir, "num_jobs"), "w") as f:
        f.write("1\n")
    with open(os.path.join(out_dir, "phones.txt"), "w", encoding="utf-8") as f:
        f.write("".join(f"{p} {i}\n" for p, i in system.lang.phones.items()))


# --------------------------------------------------------------------------- triphones

DELTAS_REALIGN = (10, 20, 30)


@dataclass
class DeltasOptions(EmSchedule):
    num_iters: int = 35
    max_iter_inc: int = 25
    totgauss: int = 3000
    realign_iters: tuple = DELTAS_REALIGN
    num_leaves: int = 300
    thresh: float = 300.0            # build-tree --thresh
    cluster_thresh: float = -1.0     # build-tree --cluster-thresh (-1: the last split's gain)


def phone_sets(lang: Lang) -> tuple[list[list[int]], list[list[int]]]:
    """phones/sets (phones sharing a tree root: a base phone with its word-position variants, or a
    line of the dict's phone files) and phones/extra_questions, as ids; a lang dir written before
    these files existed gets them derived as prepare_lang.sh would (every phone with its variants;
    the position questions)."""
    if lang.sets:
        sets = [[lang.phones[p] for p in line] for line in lang.sets]
        extra = [[lang.phones[p] for p in q] for q in lang.extra_questions]
        return sets, [q for q in extra if q]
    groups: dict[str, list[int]] = {}
    for p, i in lang.phones.items():
        if i == 0 or p.startswith("#"):
            continue
        base = p[:-2] if p[-2:] in ("_B", "_E", "_I", "_S") else p
        groups.setdefault(base, []).append(i)
    sil = {lang.phones[p] for p in lang.silence_phones}
    extra = []
    for suffix in ("_B", "_E", "_I", "_S"):
        pos = [i for p, i in lang.phones.items() if p.endswith(suffix) and not p.startswith("#")]
        extra += [sorted(i for i in pos if i not in sil), sorted(i for i in pos if i in sil)]
    return list(groups.values()), [q for q in extra if q]


def train_deltas(lang: Lang, data: GmmData, prev: GmmSystem, alis: dict[str, np.ndarray],
                 opts: DeltasOptions = DeltasOptions()) -> tuple[GmmSystem, dict, dict]:
    """Kaldi's train_deltas.sh: a triphone tree from the previous system's alignments, then EM
    with realignment. Returns (system, alignments, tree-building figures)."""
    from nnetavg.asr.tree_build import TreeBuilder, acc_tree_stats, cluster_phones, convert_alignment, init_model_from_stats

    t0 = time.time()
    ci = {lang.phones[p] for p in lang.silence_phones}
    alis = {u: a for u, a in alis.items() if u in data.words}
    stats = acc_tree_stats(prev.tm, data.feats, alis, ci)
    sets, extra = phone_sets(lang)
    questions = cluster_phones(stats, sets) + extra
    topo = prev.tm.topo
    roots = [(s, True, True) for s in sets]
    tree, info = TreeBuilder(stats, roots, questions, topo).build(opts.num_leaves, opts.thresh, opts.cluster_thresh)
    tm, am, occs = init_model_from_stats(tree, stats, topo)
    am = mixup(am, occs, opts.num_leaves, power=opts.power, seed=opts.seed)
    system = GmmSystem(tm, tree, am, lang)
    log.info("tree: %d events, %d questions, %d leaves after splitting, %d pdfs after clustering (threshold "
             "%.1f), %.1fs", len(stats.count), len(questions), info["leaves_after_split"], info["pdfs"],
             info["cluster_thresh"], time.time() - t0)
    alis = {u: convert_alignment(a, prev.tm, tm, tree) for u, a in alis.items()}
    return system, em_passes("tri", system, data, compile_graphs(system, data), alis, opts), info
