"""Lang directory, alignments from phone timings, the word-loop HCLG and decoding: a path's own
scores decode to its words; WER against hand-counted edits."""

import numpy as np
import pytest

pytest.importorskip("kaldi_hmm_gmm")

from nnetavg.asr.align import PhoneTimeAligner, frame_geometry, parse_phone_times  # noqa: E402
from nnetavg.asr.decode import Decoder, DecodeOptions  # noqa: E402
from nnetavg.asr.graph import make_word_loop_graph  # noqa: E402
from nnetavg.asr.lang import load_lang, prepare_lang  # noqa: E402
from nnetavg.asr.score import compute_wer  # noqa: E402
from nnetavg.errors import NnetavgError  # noqa: E402
from tests.conftest import run_cmd  # noqa: E402

LEXICON = "cat k a t\ncap k a p\ntack t a k\npack p a k\nact a k t\n"
RATE = 16000


@pytest.fixture
def lang(tmp_path):
    (tmp_path / "lexicon.txt").write_text(LEXICON)
    prepare_lang(str(tmp_path / "lexicon.txt"), str(tmp_path / "lang"), position_dependent_phones=False)
    return load_lang(str(tmp_path / "lang"))


def test_lang_files(lang, tmp_path):
    # no homophones or prefixes: #0 (grammar back-off) and #1 (the silence path of L_disambig)
    assert lang.phones["<eps>"] == 0 and lang.phones["SIL"] == 1 and lang.phones["#1"] == max(lang.phones.values())
    assert lang.disambig_ids == [lang.phones["#0"], lang.phones["#1"]]
    assert list(lang.words) == ["<eps>", "act", "cap", "cat", "pack", "tack", "#0", "<s>", "</s>"]
    tm = lang.transition_model
    # 4 phones x 3 states + silence x 5 states, one pdf each; two transitions per phone state,
    # Kaldi's silence: 4 from each of states 0-3, 2 from state 4
    assert tm.num_pdfs == 4 * 3 + 5
    assert tm.num_transition_ids == 2 * 4 * 3 + 4 * 4 + 2


def segments_for(lang, words, phone_ms=60, sil_ms=200):
    segs, t = [("SIL", 0.0)], sil_ms
    for w in words:
        for p in lang.lexicon[w][0]:
            segs.append((p, float(t)))
            t += phone_ms
        if w != words[-1] and len(segs) % 2:
            segs.append(("SIL", float(t)))  # a pause between some words
            t += 100
    segs.append(("SIL", float(t)))
    return segs, t + sil_ms


def test_alignment_follows_the_timings(lang):
    aligner = PhoneTimeAligner(lang)
    segs, dur = segments_for(lang, ["cat", "act"])
    window, shift = frame_geometry(RATE)
    num_frames = 1 + (int(dur * RATE / 1000) - window) // shift
    ali = aligner.align("u", segs, num_frames, RATE)
    tm = lang.transition_model
    phones = [tm.transition_id_to_phone(int(t)) for t in ali]
    # frame t's centre is at 10 t + 12.5 ms; it lies in the segment starting at or before it
    for t in (0, 25, 40, 60, num_frames - 1):
        centre = t * 10 + 12.5
        expect = [p for p, s in segs if s <= centre][-1]
        assert phones[t] == lang.phones[expect], t
    # each state's last frame takes the forward transition, the others its self-loop
    pdfs = aligner.to_pdfs(ali)
    for t in range(num_frames - 1):
        if pdfs[t] != pdfs[t + 1]:
            assert not tm.is_self_loop(int(ali[t]))
    with pytest.raises(NnetavgError, match="not in the lang"):
        aligner.align("u", [("zz", 0.0)], 5, RATE)
    with pytest.raises(NnetavgError, match="increasing"):
        parse_phone_times("u 100 SIL 0 k 50 a 20")


def test_decoding_a_path_gives_its_words(lang, tmp_path):
    aligner = PhoneTimeAligner(lang)
    decoder = Decoder(make_word_loop_graph(lang), lang, DecodeOptions())
    rng = np.random.default_rng(0)
    for words in (["cat"], ["tack", "pack", "act"], ["cap", "cat", "cap", "act", "pack"]):
        segs, dur = segments_for(lang, words)
        window, shift = frame_geometry(RATE)
        n = 1 + (int(dur * RATE / 1000) - window) // shift
        pdfs = aligner.to_pdfs(aligner.align("u", segs, n, RATE))
        loglikes = -8.0 + rng.normal(0, 1.0, (n, aligner.num_pdfs))
        loglikes[np.arange(n), pdfs] = 0.0
        hyp, _ = decoder.decode_mapped("u", loglikes.astype(np.float32))
        assert hyp == words
    with pytest.raises(NnetavgError, match="pdfs"):
        decoder.decode_mapped("u", np.zeros((10, 3), np.float32))


def test_graph_command_and_wer(lang, tmp_path):
    run_cmd(["make-loop-graph", str(tmp_path / "lang"), str(tmp_path / "graph/HCLG.fst")])
    assert (tmp_path / "graph/HCLG.fst").stat().st_size > 0
    refs = {"a": "cat act".split(), "b": "tack pack cap".split(), "c": "act".split()}
    hyps = {"a": "cat".split(), "b": "tack cat cap".split(), "c": "act cat".split()}
    r = compute_wer(refs, hyps, replications=200)
    assert (r.errors, r.words, r.ins, r.dels, r.subs) == (3, 6, 1, 1, 1)  # a: 1 del, b: 1 sub, c: 1 ins
    assert r.wer == pytest.approx(50.0) and r.sentence_errors == 3
    assert 0.0 <= r.ci95min <= r.wer <= r.ci95max
    (tmp_path / "ref").write_text("".join(f"{k} {' '.join(v)}\n" for k, v in refs.items()))
    (tmp_path / "hyp").write_text("".join(f"{k} {' '.join(v)}\n" for k, v in hyps.items() if k != "c"))
    out = run_cmd(["compute-wer", str(tmp_path / "ref"), str(tmp_path / "hyp")])
    assert out.stdout.startswith("%WER 50.00 [ 3 / 6, 0 ins, 2 del, 1 sub ]")  # c scored as deleted
    assert "%WER-CI95" in out.stdout
    out = run_cmd(["compute-wer", "--replications", "0", str(tmp_path / "ref"), str(tmp_path / "hyp")])
    assert out.stdout.startswith("%WER 50.00") and "%WER-CI95" not in out.stdout   # no interval asked for


def test_state_bounds_even_split_and_short_phones():
    from nnetavg.asr.align import _state_bounds

    assert list(_state_bounds(10, 19, 3)) == [10, 13, 16, 19]
    assert list(_state_bounds(0, 2, 3)) == [0, 1, 2, 2]        # 2 frames, 3 states: the last gets none
    assert list(_state_bounds(5, 10, 5)) == [5, 6, 7, 8, 9, 10]


def test_gmm_trained_on_alignments_realigns_them(lang):
    """A GMM trained on known alignments of synthetic features (one mean per pdf) force-aligns the
    same utterances back to (nearly) the same pdfs, and decodes them to their words."""
    from nnetavg.asr.gmm import align_with_gmm, train_mono_gmm

    aligner = PhoneTimeAligner(lang)
    rng = np.random.default_rng(1)
    means = rng.normal(0, 3.0, (aligner.num_pdfs, 4))
    words = sorted(w for w in lang.lexicon)
    feats, pdfs, texts = {}, {}, {}
    window, shift = frame_geometry(RATE)
    for u in range(40):
        sent = [words[i] for i in rng.integers(0, len(words), 3)]
        segs, dur = segments_for(lang, sent)
        n = 1 + (int(dur * RATE / 1000) - window) // shift
        p = aligner.to_pdfs(aligner.align(f"u{u}", segs, n, RATE))
        feats[f"u{u}"] = (means[p] + rng.normal(0, 0.5, (n, 4))).astype(np.float32)
        pdfs[f"u{u}"], texts[f"u{u}"] = p, sent
    am = train_mono_gmm(lang, feats, pdfs, num_iters=4, total_gauss=2 * aligner.num_pdfs)
    alis, failed = align_with_gmm(lang, am, feats, texts)
    assert not failed and len(alis) == 40
    agree = np.mean(np.concatenate([aligner.to_pdfs(alis[u]) == pdfs[u] for u in alis]))
    assert agree > 0.9, agree
    decoder = Decoder(make_word_loop_graph(lang), lang, DecodeOptions())
    assert decoder.decode_gmm("u0", am, feats["u0"])[0] == texts["u0"]
