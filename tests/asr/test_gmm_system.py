"""GMM systems built here, against independent references: Kaldi's file formats (kaldi-hmm-gmm
writes the tree; its transition model and GMM arithmetic are the reference for ours), exact Viterbi
against kaldi-hmm-gmm's aligner on the same model and scores, tree building on statistics whose
best question is known, and the Kaldi tools' output."""

import math

import numpy as np
import pytest

khg = pytest.importorskip("kaldi_hmm_gmm")

from nnetavg.asr.align_graph import GraphCompiler, equal_align, viterbi_align  # noqa: E402
from nnetavg.asr.gmm_est import GmmAccs, GmmScorer, MleOptions, mixup, mle_update, split_targets  # noqa: E402
from nnetavg.asr.lang import load_lang, prepare_lang  # noqa: E402
from nnetavg.asr.models import (AmDiagGmm, ContextDependency, DiagGmm, Topology, TransitionModel,  # noqa: E402
                                monophone_tree, read_model, read_tree, write_model, write_tree)
from nnetavg.asr.train_gmm import lexicon_ids, load_data, phone_sets  # noqa: E402
from nnetavg.asr.tree_build import TreeBuilder, TreeStats, convert_alignment, phone_instances  # noqa: E402
from nnetavg.errors import FormatError  # noqa: E402
from nnetavg.io.tables import INT_VECTOR, MATRIX, SequentialReader, TableWriter  # noqa: E402
from tests.conftest import run_cmd  # noqa: E402

def cmd(*args, check=True):
    return run_cmd([str(a) for a in args], check=check)


LEXICON = "cat k a t\ncap k a p\ntack t a k\npack p a k\nact a k t\n"


@pytest.fixture
def lang(tmp_path):
    (tmp_path / "lexicon.txt").write_text(LEXICON)
    prepare_lang(str(tmp_path / "lexicon.txt"), str(tmp_path / "lang"), position_dependent_phones=False)
    return load_lang(str(tmp_path / "lang"))


def random_am(num_pdfs, dim, rng, gauss=(1, 3)):
    pdfs = []
    for _ in range(num_pdfs):
        n = int(rng.integers(*gauss))
        w = rng.random(n) + 0.1
        pdfs.append(DiagGmm(w / w.sum(), rng.normal(0, 2, (n, dim)), rng.uniform(0.5, 2.0, (n, dim))))
    return AmDiagGmm(pdfs)


# --------------------------------------------------------------------------- Kaldi's files

@pytest.mark.parametrize("binary", [False, True])
def test_kaldi_tree_reads_back_byte_identical(lang, tmp_path, binary):
    _, tree, _ = lang.hmm()
    tree.write(binary, str(tmp_path / "tree.kaldi"))
    ours = read_tree(str(tmp_path / "tree.kaldi"))
    write_tree(str(tmp_path / "tree.ours"), ours, binary)
    assert (tmp_path / "tree.ours").read_bytes() == (tmp_path / "tree.kaldi").read_bytes()
    # and the tree we build for a monophone system is Kaldi's own, byte for byte
    write_tree(str(tmp_path / "tree.mono"), monophone_tree(Topology.parse(lang.topo)), binary)
    assert (tmp_path / "tree.mono").read_bytes() == (tmp_path / "tree.kaldi").read_bytes()


def test_transition_model_matches_kaldi_hmm_gmm(lang):
    _, _, ktm = lang.hmm()
    tm = TransitionModel.build(Topology.parse(lang.topo), monophone_tree(Topology.parse(lang.topo)))
    assert tm.num_tids == ktm.num_transition_ids and tm.num_pdfs == ktm.num_pdfs
    assert (tm.tid2pdf[1:] == np.asarray(ktm.transition_id_to_pdf_array())[1:]).all()
    assert [int(x) for x in tm.tid2phone[1:]] == [ktm.transition_id_to_phone(t) for t in range(1, tm.num_tids + 1)]
    assert [bool(x) for x in tm.is_self_loop[1:]] == [ktm.is_self_loop(t) for t in range(1, tm.num_tids + 1)]
    assert np.allclose(tm.log_probs[1:], np.asarray(ktm.log_probs)[1:], atol=1e-6)


@pytest.mark.parametrize("binary", [False, True])
def test_model_file_round_trip(lang, tmp_path, binary):
    topo = Topology.parse(lang.topo)
    tm = TransitionModel.build(topo, monophone_tree(topo))
    tm.log_probs[3] = math.log(0.6)
    am = random_am(tm.num_pdfs, 4, np.random.default_rng(0))
    write_model(str(tmp_path / "a.mdl"), tm, am, binary)
    tm2, am2 = read_model(str(tmp_path / "a.mdl"))
    write_model(str(tmp_path / "b.mdl"), tm2, am2, binary)
    assert (tmp_path / "a.mdl").read_bytes() == (tmp_path / "b.mdl").read_bytes()
    assert tm2.triples == tm.triples and np.allclose(tm2.log_probs, tm.log_probs, atol=1e-6)
    assert np.allclose(am2.pdfs[5].means, am.pdfs[5].means, rtol=1e-5)
    if not binary:
        text = (tmp_path / "a.mdl").read_text()
        # Kaldi's layout: tokens followed by a space, a newline after each triple
        assert text.startswith("<TransitionModel> \n<Topology> \n<TopologyEntry> \n<ForPhones> \n")
        assert f"<Triples> {len(tm.triples)} \n" in text and "<DIMENSION> 4 <NUMPDFS> " in text
        assert "<DiagGMM> \n<GCONSTS>  [ " in text and "<INV_VARS>  [\n  " in text
    else:
        assert (tmp_path / "a.mdl").read_bytes()[:2] == b"\0B"


def test_truncated_model_is_a_clear_error(lang, tmp_path):
    topo = Topology.parse(lang.topo)
    tm = TransitionModel.build(topo, monophone_tree(topo))
    write_model(str(tmp_path / "a.mdl"), tm, random_am(tm.num_pdfs, 3, np.random.default_rng(1)))
    data = (tmp_path / "a.mdl").read_bytes()
    (tmp_path / "t.mdl").write_bytes(data[:len(data) // 2])
    with pytest.raises(FormatError, match="t.mdl"):
        read_model(str(tmp_path / "t.mdl"))


def test_gmm_scores_match_kaldi_hmm_gmm(lang):
    rng = np.random.default_rng(2)
    am = random_am(6, 5, rng, gauss=(2, 5))
    x = rng.normal(0, 2, (40, 5)).astype(np.float32)
    sc = GmmScorer(am)
    ours = sc.pdf_loglikes(sc.component_loglikes(x))
    for p, g in enumerate(am.pdfs):
        k = khg.DiagGmm(nmix=g.num_gauss, dim=5)
        k.set_weights(g.weights.astype(np.float32))
        k.set_means(g.means.astype(np.float32))
        k.set_invvars((1.0 / g.vars).astype(np.float32))
        k.compute_gconsts()
        assert np.allclose(np.asarray(k.gconsts), g.gconsts(), rtol=1e-4)
        ref = [k.log_likelihood(row) for row in x]
        assert np.allclose(ours[:, p], ref, rtol=1e-4, atol=1e-3)


def test_ml_update_is_the_weighted_moments_and_mixup_splits_the_heaviest():
    rng = np.random.default_rng(3)
    am = AmDiagGmm([DiagGmm(np.array([1.0]), np.zeros((1, 2)), np.ones((1, 2)))])
    x = rng.normal([3.0, -1.0], [2.0, 0.5], (500, 2))
    accs = GmmAccs(am, 0)
    accs.accumulate(GmmScorer(am), x, np.zeros(500, dtype=np.int64))
    new, info = mle_update(am, accs, MleOptions())
    assert np.allclose(new.pdfs[0].means[0], x.mean(0)) and np.allclose(new.pdfs[0].vars[0], x.var(0))
    grown = mixup(new, np.array([500.0]), 2, perturb_factor=0.01, seed=0)
    g = grown.pdfs[0]
    assert g.num_gauss == 2 and np.allclose(g.weights, [0.5, 0.5])
    # the two means sit symmetrically around the old one, 0.01 standard deviations apart per dim at most
    assert np.allclose(g.means.mean(0), new.pdfs[0].means[0])
    assert np.all(np.abs(g.means[0] - g.means[1]) < 0.1 * np.sqrt(g.vars[0]))
    # occupancy ** power shares the Gaussians; a pdf never gets fewer than occ / min_count allows
    assert list(split_targets(np.array([1000.0, 10.0, 1000.0]), np.ones(3, int), 7, 1.0, 20.0)) == [3, 1, 3]


# --------------------------------------------------------------------------- alignment

def kaldi_am(am):
    k = khg.AmDiagGmm()
    for g in am.pdfs:
        d = khg.DiagGmm(nmix=g.num_gauss, dim=g.means.shape[1])
        d.set_weights(g.weights.astype(np.float32))
        d.set_means(g.means.astype(np.float32))
        d.set_invvars((1.0 / g.vars).astype(np.float32))
        d.compute_gconsts()
        k.add_pdf(d)
    return k


def test_viterbi_equals_kaldi_aligner(lang):
    """Same model, same features: our exact Viterbi and kaldi-hmm-gmm's gmm-align-compiled (wide
    beam) find the same path: the same pdf and HMM state in every frame, the same phones. (Kaldi
    writes a state's forward transition first, its self-loops after, compile-train-graphs'
    --reorder; we write them in time order; both are read back into the same phones.)"""
    from nnetavg.asr.gmm import align_with_gmm

    rng = np.random.default_rng(4)
    topo = Topology.parse(lang.topo)
    tree = monophone_tree(topo)
    tm = TransitionModel.build(topo, tree)
    am = random_am(tm.num_pdfs, 3, rng)
    texts = {"u1": ["cat", "act"], "u2": ["pack"], "u3": ["tack", "cap", "cat"]}
    feats = {u: rng.normal(0, 1.5, (18 + 9 * len(w), 3)).astype(np.float32) for u, w in texts.items()}
    ref, failed = align_with_gmm(lang, kaldi_am(am), feats, texts, beam=1000.0, retry_beam=2000.0)
    assert not failed
    comp = GraphCompiler(tm, tree, lexicon_ids(lang), lang.phones["SIL"], lang.sil_prob)
    sc = GmmScorer(am)
    graphs = [comp.compile(u, texts[u]) for u in texts]
    out = viterbi_align(graphs, [sc.pdf_loglikes(sc.component_loglikes(feats[u])) for u in texts])
    for u, (tids, _) in zip(texts, out):
        assert tids is not None and (tm.tid2pdf[tids] == tm.tid2pdf[ref[u]]).all(), u
        assert (tm.tid2hmm_state[tids] == tm.tid2hmm_state[ref[u]]).all(), u
        assert phone_instances(tids, tm) == phone_instances(ref[u], tm), u
    assert any((tids != ref[u]).any() for u, (tids, _) in zip(texts, out))  # the orders do differ
    # too short for its transcript: no path, reported as such
    short = viterbi_align([comp.compile("s", ["tack", "cap", "cat"])], [np.zeros((5, tm.num_pdfs))])
    assert short[0][0] is None


def test_equal_alignment_is_a_path_with_equal_shares(lang):
    topo = Topology.parse(lang.topo)
    tree = monophone_tree(topo)
    tm = TransitionModel.build(topo, tree)
    comp = GraphCompiler(tm, tree, lexicon_ids(lang), lang.phones["SIL"], lang.sil_prob)
    g = comp.compile("utt-7", ["cat", "pack"])
    ali = equal_align(g, tm, 61, "utt-7")
    assert len(ali) == 61 and (ali == equal_align(g, tm, 61, "utt-7")).all()  # seeded by the name
    inst = phone_instances(ali, tm)
    id2p = {i: p for p, i in lang.phones.items()}
    assert [id2p[p] for p, _, _ in inst if id2p[p] != "SIL"] == ["k", "a", "t", "p", "a", "k"]
    # each emitting state gets floor or ceil of frames / states
    states = sum(len(topo.entry(p)) - 1 for p, _, _ in inst)
    lens = np.diff([0] + [i + 1 for i in range(61) if tm.tid2dest[ali[i]] != tm.tid2hmm_state[ali[i]]])
    assert len(lens) == states and lens.max() - lens.min() <= 1


# --------------------------------------------------------------------------- trees

def test_tree_splits_on_the_context_that_matters(lang):
    """Statistics where phone a's right neighbour decides its mean and, before k only, its left
    neighbour t moves it further: the first split of a's root asks about key 2 (right context)
    and separates {k} from {t, p}, the second splits the k branch by the left context; no more
    leaves than asked."""
    rng = np.random.default_rng(5)
    ph = lang.phones
    events, xs = [], []
    for left in (ph["k"], ph["t"], ph["p"]):
        for right in (ph["k"], ph["t"], ph["p"]):
            for pc in range(3):
                mean = (5.0 + 6.0 * (left == ph["t"])) if right == ph["k"] else -5.0
                x = rng.normal(mean + pc * 0.1, 1.0, (50, 2))
                events.append((left, ph["a"], right, pc))
                xs.append(x)
    stats = TreeStats(np.array(events), np.array([len(x) for x in xs], float),
                      np.array([x.sum(0) for x in xs]), np.array([(x * x).sum(0) for x in xs]))
    sets, extra = phone_sets(lang)
    topo = Topology.parse(lang.topo)
    roots = [(s, True, True) for s in sets]
    tree, info = TreeBuilder(stats, roots, sets + extra + [[ph["t"], ph["p"]]], topo).build(
        max_leaves=len(sets) + 2, thresh=0.0, cluster_thresh=0.0)
    root = tree.to_pdf.table[ph["a"]]
    assert root.key == 2 and set(root.yes_set) in ({ph["k"]}, {ph["t"], ph["p"]})
    assert tree.compute((ph["t"], ph["a"], ph["k"]), 0) != tree.compute((ph["t"], ph["a"], ph["p"]), 0)
    assert tree.compute((ph["t"], ph["a"], ph["p"]), 2) == tree.compute((ph["k"], ph["a"], ph["t"]), 1)
    assert tree.compute((ph["t"], ph["a"], ph["k"]), 0) != tree.compute((ph["p"], ph["a"], ph["k"]), 0)
    assert tree.compute((ph["p"], ph["a"], ph["k"]), 0) == tree.compute((ph["k"], ph["a"], ph["k"]), 1)
    assert tree.compute((ph["t"], ph["a"], ph["t"]), 0) == tree.compute((ph["p"], ph["a"], ph["p"]), 2)
    assert tree.num_pdfs == len(sets) + 2 == info["pdfs"]
    # the tree is a Kaldi tree: written, read back, same answers; a transition model builds on it
    buf = ContextDependency(3, 1, tree.to_pdf)
    tm = TransitionModel.build(topo, buf)
    assert tm.num_pdfs == tree.num_pdfs


def test_convert_alignment_keeps_phones_and_states(lang):
    topo = Topology.parse(lang.topo)
    mono = monophone_tree(topo)
    tm = TransitionModel.build(topo, mono)
    comp = GraphCompiler(tm, mono, lexicon_ids(lang), lang.phones["SIL"], lang.sil_prob)
    ali = equal_align(comp.compile("x", ["act", "tack"]), tm, 50, "x")
    # a "triphone" tree that gives a's pdfs by right context
    from nnetavg.asr.models import ConstantEventMap, SplitEventMap, TableEventMap
    table = list(mono.to_pdf.table)
    a = lang.phones["a"]
    table[a] = SplitEventMap(2, frozenset({lang.phones["k"]}), table[a],
                             TableEventMap(-1, [ConstantEventMap(tm.num_pdfs + c) for c in range(3)]))
    tri = ContextDependency(3, 1, TableEventMap(1, table))
    new_tm = TransitionModel.build(topo, tri)
    new = convert_alignment(ali, tm, new_tm, tri)
    assert (new_tm.tid2phone[new] == tm.tid2phone[ali]).all()
    assert (new_tm.tid2hmm_state[new] == tm.tid2hmm_state[ali]).all()
    assert (new_tm.is_self_loop[new] == tm.is_self_loop[ali]).all()
    # "act" = a k t: its a is before k (old pdfs); "tack" = t a k: a before k too; none moved
    assert set(new_tm.tid2pdf[new]) <= set(range(tm.num_pdfs))


# --------------------------------------------------------------------------- data and tools

def write_data(tmp_path, lang, texts, frames=40, dim=13):
    d = tmp_path / "data"
    d.mkdir()
    rng = np.random.default_rng(6)
    with TableWriter(f"ark,scp:{d}/feats.ark,{d}/feats.scp", MATRIX) as w:
        for u in texts:
            w.write(u, rng.normal(0, 1, (frames, dim)).astype(np.float32))
    (d / "text").write_text("".join(f"{u} {' '.join(ws)}\n" for u, ws in texts.items()))
    (d / "utt2spk").write_text("".join(f"{u} {u}\n" for u in texts))
    return str(d)


def test_bad_transcripts_are_named_or_mapped(lang, tmp_path, caplog):
    texts = {"good": ["cat"], "oov": ["cat", "dog"], "empty": []}
    d = write_data(tmp_path, lang, texts)
    data = load_data(d, lang)
    assert data.utts == ["good"]
    assert "dog" in data.skipped["oov"] and data.skipped["empty"] == "empty transcript"
    assert "2 utterances left out" in caplog.text and "oov: words not in the lexicon: dog" in caplog.text
    mapped = load_data(d, lang, oov="act")
    assert mapped.words["oov"] == ["cat", "act"] and mapped.oov_count == 1 and "empty" in mapped.skipped


def test_kaldi_tools_on_a_model(lang, tmp_path):
    topo = Topology.parse(lang.topo)
    tree = monophone_tree(topo)
    tm = TransitionModel.build(topo, tree)
    write_model(str(tmp_path / "final.mdl"), tm, random_am(tm.num_pdfs, 3, np.random.default_rng(7)))
    write_tree(str(tmp_path / "tree"), tree)
    info = cmd("hmm-info", str(tmp_path / "final.mdl")).stdout
    assert info == (f"number of phones {len(topo.phones)}\nnumber of pdfs {tm.num_pdfs}\n"
                    f"number of transition-ids {tm.num_tids}\nnumber of transition-states {len(tm.triples)}\n")
    assert cmd("tree-info", str(tmp_path / "tree")).stdout == f"num-pdfs {tm.num_pdfs}\ncontext-width 1\ncentral-position 0\n"
    comp = GraphCompiler(tm, tree, lexicon_ids(lang), lang.phones["SIL"], lang.sil_prob)
    alis = {"a": equal_align(comp.compile("a", ["cat"]), tm, 30, "a"),
            "b": equal_align(comp.compile("b", ["pack", "act"]), tm, 45, "b")}
    with TableWriter(f"ark:{tmp_path}/ali.ark", INT_VECTOR) as w:
        for u, a in alis.items():
            w.write(u, a)
    cmd("ali-to-pdf", str(tmp_path / "final.mdl"), f"ark:{tmp_path}/ali.ark", f"ark:{tmp_path}/pdf.ark")
    pdfs = dict(SequentialReader(f"ark:{tmp_path}/pdf.ark", INT_VECTOR))
    ktm = lang.transition_model
    for u, a in alis.items():
        assert list(pdfs[u]) == [ktm.transition_id_to_pdf(int(t)) for t in a]
    cmd("ali-to-phones", "--per-frame=true", str(tmp_path / "final.mdl"), f"ark:{tmp_path}/ali.ark",
            f"ark,t:{tmp_path}/ph.txt")
    frames = {ln.split()[0]: ln.split()[1:] for ln in open(tmp_path / "ph.txt")}
    assert [int(p) for p in frames["a"]] == [ktm.transition_id_to_phone(int(t)) for t in alis["a"]]
    cmd("ali-to-phones", str(tmp_path / "final.mdl"), f"ark:{tmp_path}/ali.ark", f"ark,t:{tmp_path}/seq.txt")
    seq = {ln.split()[0]: [int(x) for x in ln.split()[1:]] for ln in open(tmp_path / "seq.txt")}
    id2p = {i: p for p, i in lang.phones.items()}
    assert [id2p[p] for p in seq["b"] if id2p[p] != "SIL"] == ["p", "a", "k", "a", "k", "t"]
    cmd("copy-transition-model", "--binary=false", str(tmp_path / "final.mdl"), str(tmp_path / "tm.txt"))
    assert read_model(str(tmp_path / "tm.txt"))[1] is None
    assert (tmp_path / "tm.txt").read_text().rstrip().endswith("</TransitionModel>")
    shown = cmd("show-transitions", str(tmp_path / "lang" / "phones.txt"), str(tmp_path / "final.mdl")).stdout
    assert shown.startswith("Transition-state 1: phone = SIL hmm-state = 0 pdf = 0\n Transition-id = 1 p = 0.25 [self-loop]\n"
                            " Transition-id = 2 p = 0.25 [0 -> 1]\n")
    bad = cmd("ali-to-pdf", str(tmp_path / "final.mdl"), "ark:echo a 1 2 999 |", "ark:/dev/null", check=False)
    assert bad.returncode != 0 and "999 out of range" in bad.stderr


def test_position_dependent_lang_shares_pdfs_and_roots(tmp_path):
    """With Kaldi's word-position-dependent phones, the monophone system shares one set of pdfs among
    a phone's variants (gmm-init-mono --shared-phones=phones/sets.int) and the tree roots are the
    sets; transcripts compile into graphs of the positional phones."""
    from nnetavg.asr.train_gmm import GmmSystem, train_mono, MonoOptions, GmmData

    (tmp_path / "lexicon.txt").write_text(LEXICON)
    lang = prepare_lang(str(tmp_path / "lexicon.txt"), str(tmp_path / "lang"))
    sets, extra = phone_sets(lang)
    assert sets[1] == [lang.phones[p] for p in ("a_B", "a_E", "a_I", "a_S")]
    assert sorted(lang.phones[p + "_B"] for p in "akpt") in [sorted(q) for q in extra]
    topo = Topology.parse(lang.topo)
    tree = monophone_tree(topo, sets)
    tm = TransitionModel.build(topo, tree)
    assert tm.num_pdfs == 5 + 4 * 3          # as without positions: variants share
    assert tree.compute((lang.phones["a_B"],), 1) == tree.compute((lang.phones["a_E"],), 1)
    rng = np.random.default_rng(8)
    texts = {f"u{i}": [["cat", "act", "tack"][i % 3], "pack"] for i in range(12)}
    data = GmmData({u: rng.normal(0, 1, (60, 3)).astype(np.float32) for u in texts}, texts)
    system, alis = train_mono(lang, data, MonoOptions(num_iters=4, totgauss=40, realign_iters=(1, 2, 3)))
    assert isinstance(system, GmmSystem) and system.tm.num_pdfs == 17 and len(alis) == 12
    id2p = {i: p for p, i in lang.phones.items()}
    seq = [id2p[p] for p, _, _ in phone_instances(alis["u0"], system.tm) if not id2p[p].startswith("SIL")]
    assert seq == ["k_B", "a_I", "t_E", "p_B", "a_I", "k_E"]


def test_add_deltas_sum_matrices_and_cuda_check(tmp_path):
    from nnetavg import backend
    from nnetavg.asr.features import add_deltas
    from nnetavg.io.tables import read_single, write_single

    x = np.random.default_rng(9).normal(0, 1, (20, 4)).astype(np.float32)
    with TableWriter(f"ark:{tmp_path}/f.ark", MATRIX) as w:
        w.write("u", x)
    cmd("add-deltas", "--delta-order=1", f"ark:{tmp_path}/f.ark", f"ark:{tmp_path}/d.ark")
    d = dict(SequentialReader(f"ark:{tmp_path}/d.ark", MATRIX))["u"]
    assert d.shape == (20, 8) and np.allclose(d, add_deltas(x, 1, 2)) and np.allclose(d[:, :4], x)
    # the delta of a ramp is its slope: regression over +-2 frames
    ramp = np.arange(10, dtype=np.float32)[:, None] * 3.0
    assert np.allclose(add_deltas(ramp, 1, 2)[2:-2, 1], 3.0)
    for i, m in enumerate(([[1.0, 2.0], [3.0, 4.0]], [[10.0, 20.0], [30.0, 40.0]])):
        write_single(str(tmp_path / f"m{i}"), np.array(m), MATRIX, binary=False)
    cmd("sum-matrices", "--binary=false", tmp_path / "sum", tmp_path / "m0", tmp_path / "m1")
    assert np.allclose(read_single(str(tmp_path / "sum")), [[11, 22], [33, 44]])
    write_single(str(tmp_path / "m2"), np.zeros((3, 2)), MATRIX)
    bad = cmd("sum-matrices", tmp_path / "s2", tmp_path / "m0", tmp_path / "m2", check=False)
    assert bad.returncode == 1 and "m2: a 3x2 matrix, the first was 2x2" in bad.stderr
    usable = backend._try_cupy()[0] is not None
    p = cmd("cuda-gpu-available", check=False)
    assert p.returncode == (0 if usable else 1) and "IS CUDA GPU AVAILABLE?" in p.stderr
    assert ("softmax test on the device: OK" if usable else "NO CUDA GPU FOR COMPUTATION") in p.stderr
