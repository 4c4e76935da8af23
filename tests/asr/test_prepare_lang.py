"""prepare-lang with the semantics of Kaldi's utils/prepare_lang.sh: a Kaldi dict dir with its own
silence phones, homophones and prefixes (disambiguation symbols as add_lex_disambig.pl gives
them), Kaldi's topologies, optional silence in L.fst, word-position-dependent phones; the lang
goes through make-loop-graph and decoding."""

import numpy as np
import pytest

pytest.importorskip("kaldi_hmm_gmm")

from nnetavg.asr.align import PhoneTimeAligner, frame_geometry  # noqa: E402
from nnetavg.asr.decode import Decoder, DecodeOptions  # noqa: E402
from nnetavg.asr.graph import make_word_loop_graph  # noqa: E402
from nnetavg.asr.lang import LexiconEntry, add_disambig, load_lang, prepare_lang  # noqa: E402
from nnetavg.errors import NnetavgError  # noqa: E402
from tests.conftest import run_cmd  # noqa: E402

RATE = 16000
# red/read and two/too/to are homophones; "a" (ah) is a prefix of "an" and "at"
LEXICON = """red r eh d
read r eh d
reed r iy d
two t uw
too t uw
to t uw
a ah
an ah n
at ah t
<noise> nsn
"""


def write_dict(d, lexicon=LEXICON, silence="sil\nnsn\n", nonsilence="r\neh d\niy\nt\nuw\nah\nn\n", optional="sil\n",
               questions=None):
    d.mkdir(parents=True, exist_ok=True)
    (d / "lexicon.txt").write_text(lexicon)
    (d / "silence_phones.txt").write_text(silence)
    (d / "nonsilence_phones.txt").write_text(nonsilence)
    (d / "optional_silence.txt").write_text(optional)
    if questions is not None:
        (d / "extra_questions.txt").write_text(questions)
    return d


def test_disambiguation_symbols_follow_add_lex_disambig():
    entries = [LexiconEntry(w, 1.0, p.split()) for w, p in
               (("red", "r eh d"), ("read", "r eh d"), ("reed", "r iy d"), ("a", "ah"), ("an", "ah n"),
                ("two", "t uw"), ("too", "t uw"), ("to", "t uw"), ("re", "r"))]
    out, top = add_disambig(entries)
    got = {(e.word, " ".join(e.pron)) for e in out}
    assert got == {("red", "r eh d #1"), ("read", "r eh d #2"), ("reed", "r iy d"), ("a", "ah #1"), ("an", "ah n"),
                   ("two", "t uw #1"), ("too", "t uw #2"), ("to", "t uw #3"), ("re", "r #1")}
    assert top == 3


def test_dict_dir_with_homophones_and_own_silence(tmp_path):
    write_dict(tmp_path / "dict", questions="sil nsn\nr t\n")
    p = run_cmd(["prepare-lang", "--position-dependent-phones=false", "--oov", "<noise>", str(tmp_path / "dict"),
                 str(tmp_path / "lang")])
    assert "disambiguation-symbols=5" in p.stderr  # #0, #1-#3 (two/too/to), #4 for the silence path
    lang = load_lang(str(tmp_path / "lang"))
    phones = (tmp_path / "lang" / "phones.txt").read_text().split()[::2]
    assert phones == ["<eps>", "sil", "nsn", "r", "eh", "d", "iy", "t", "uw", "ah", "n", "#0", "#1", "#2", "#3", "#4"]
    words = (tmp_path / "lang" / "words.txt").read_text().split()[::2]
    assert words == ["<eps>", "<noise>", "a", "an", "at", "read", "red", "reed", "to", "too", "two", "#0", "<s>", "</s>"]
    disambig = dict(line.split(" ", 1) for line in (tmp_path / "lang/lexiconp_disambig.txt").read_text().splitlines())
    assert disambig["red"] == "1 r eh d #1" and disambig["read"] == "1 r eh d #2" and disambig["to"] == "1 t uw #3"
    assert disambig["a"] == "1 ah #1" and disambig["reed"] == "1 r iy d" and disambig["<noise>"] == "1 nsn"
    for name, want in (("silence", "sil nsn"), ("optional_silence", "sil"), ("disambig", "#0 #1 #2 #3 #4")):
        assert (tmp_path / "lang/phones" / f"{name}.txt").read_text().split() == want.split()
        ids = (tmp_path / "lang/phones" / f"{name}.int").read_text().split()
        assert ids == [str(lang.phones[q]) for q in want.split()]
        assert (tmp_path / "lang/phones" / f"{name}.csl").read_text().strip() == ":".join(ids)
    assert (tmp_path / "lang/L.fst").stat().st_size > 0 and (tmp_path / "lang/L_disambig.fst").stat().st_size > 0
    # the tree-building files of prepare_lang.sh: a line of the phone files is a set and a root
    sets = (tmp_path / "lang/phones/sets.txt").read_text().splitlines()
    assert sets == ["sil", "nsn", "r", "eh d", "iy", "t", "uw", "ah", "n"]
    roots = (tmp_path / "lang/phones/roots.int").read_text().splitlines()
    assert roots[3] == f"shared split {lang.phones['eh']} {lang.phones['d']}"
    assert (tmp_path / "lang/phones/extra_questions.txt").read_text() == "sil nsn\nr t\n"
    align = (tmp_path / "lang/phones/align_lexicon.txt").read_text().splitlines()
    assert align[0] == "<eps> <eps> sil" and "red red r eh d" in align
    assert (tmp_path / "lang/oov.txt").read_text() == "<noise>\n"
    assert (tmp_path / "lang/oov.int").read_text() == f"{lang.words['<noise>']}\n" and lang.oov == "<noise>"
    assert lang.sets[3] == ["eh", "d"]
    # Kaldi's topologies: both silence phones have the 5-state model with gen_topo.pl's transitions
    topo, _, tm = lang.hmm()
    assert topo.phones == list(range(1, 11))
    for sil in ("sil", "nsn"):
        entry = topo.topology_for_phone(lang.phones[sil])
        assert len(entry) == 6
        assert [d for d, _ in entry[0].transitions] == [0, 1, 2, 3]
        for s in (1, 2, 3):
            assert [d for d, _ in entry[s].transitions] == [1, 2, 3, 4]
            assert all(pr == pytest.approx(0.25) for _, pr in entry[s].transitions)
        assert entry[4].transitions == [(4, pytest.approx(0.75)), (5, pytest.approx(0.25))]
    entry = topo.topology_for_phone(lang.phones["eh"])
    assert len(entry) == 4 and entry[1].transitions == [(1, pytest.approx(0.75)), (2, pytest.approx(0.25))]
    assert tm.num_pdfs == 2 * 5 + 8 * 3
    # the graph determinizes (it would not without the homophones' symbols) and decodes
    run_cmd(["make-loop-graph", str(tmp_path / "lang"), str(tmp_path / "graph/HCLG.fst")])
    assert (tmp_path / "graph/HCLG.fst").stat().st_size > 0


def decode_path(lang, words, sil="sil"):
    """Decode a synthetic path through ``words``' first pronunciations (pdf scores 0 on the path,
    around -8 elsewhere); returns the hypothesis."""
    aligner = PhoneTimeAligner(lang)
    segs, t = [(sil, 0.0)], 200
    for w in words:
        for p in lang.lexicon[w][0]:
            segs.append((p, float(t)))
            t += 60
    segs.append((sil, float(t)))
    window, shift = frame_geometry(RATE)
    n = 1 + (int((t + 200) * RATE / 1000) - window) // shift
    pdfs = aligner.to_pdfs(aligner.align("u", segs, n, RATE))
    loglikes = -8.0 + np.random.default_rng(0).normal(0, 1.0, (n, aligner.num_pdfs))
    loglikes[np.arange(n), pdfs] = 0.0
    return Decoder(make_word_loop_graph(lang), lang, DecodeOptions()).decode_mapped("u", loglikes.astype(np.float32))[0]


def test_homophones_decode_to_one_of_their_spellings(tmp_path):
    lang = prepare_lang(str(write_dict(tmp_path / "dict")), str(tmp_path / "lang"))
    hyp = decode_path(lang, ["reed", "two", "an", "a", "red", "at"])
    assert len(hyp) == 6 and hyp[0] == "reed" and hyp[2] == "an" and hyp[5] == "at"
    assert hyp[1] in ("two", "too", "to") and hyp[3] == "a" and hyp[4] in ("red", "read")


def test_position_dependent_phones(tmp_path):
    write_dict(tmp_path / "dict", questions="r t\n")
    run_cmd(["prepare-lang", str(tmp_path / "dict"), str(tmp_path / "lang")])      # Kaldi's default
    lang = load_lang(str(tmp_path / "lang"))
    phones = list(lang.phones)
    assert phones[:12] == ["<eps>", "sil", "sil_B", "sil_E", "sil_I", "sil_S", "nsn", "nsn_B", "nsn_E", "nsn_I",
                           "nsn_S", "r_B"]
    assert lang.lexicon["red"] == [["r_B", "eh_I", "d_E"]] and lang.lexicon["a"] == [["ah_S"]]
    assert lang.lexicon["<noise>"] == [["nsn_S"]]
    bounds = dict(line.split() for line in (tmp_path / "lang/phones/word_boundary.txt").read_text().splitlines())
    assert bounds["sil"] == "nonword" and bounds["r_B"] == "begin" and bounds["ah_S"] == "singleton" \
        and bounds["eh_I"] == "internal" and bounds["d_E"] == "end"
    assert "sil_S" in lang.silence_phones and lang.optional_silence == "sil"
    assert lang.transition_model.num_pdfs == 10 * 5 + 8 * 4 * 3
    hyp = decode_path(lang, ["reed", "an", "at"])
    assert hyp == ["reed", "an", "at"]
    # sets and roots gather a phone's variants; questions ask about positions as prepare_lang.sh does
    assert lang.sets[0] == ["sil", "sil_B", "sil_E", "sil_I", "sil_S"]
    assert lang.sets[3] == ["eh_B", "eh_E", "eh_I", "eh_S", "d_B", "d_E", "d_I", "d_S"]
    assert lang.extra_questions[0] == ["r_B", "r_E", "r_I", "r_S", "t_B", "t_E", "t_I", "t_S"]
    assert lang.extra_questions[1] == [p + "_B" for p in ("r", "eh", "d", "iy", "t", "uw", "ah", "n")]
    assert lang.extra_questions[5] == ["sil", "nsn"] and lang.extra_questions[6] == ["sil_B", "nsn_B"]
    with pytest.raises(NnetavgError, match="--oov 'zz': the word is not in the lexicon"):
        prepare_lang(str(tmp_path / "dict"), str(tmp_path / "lang2"), oov="zz")


def test_optional_silence_probability_in_l(tmp_path):
    """L.fst: from the start and after every word, silence with sil_prob and none with 1 - sil_prob."""
    lang = prepare_lang(str(write_dict(tmp_path / "dict")), str(tmp_path / "lang"), sil_prob=0.2,
                        position_dependent_phones=False)
    text = lang.lexicon_fst_text()
    arcs = [line.split() for line in text.splitlines() if len(line.split()) == 5]
    sil_id = str(lang.phones["sil"])
    assert ["0", "1", "0", "0", f"{-np.log(0.8):.6f}"] in arcs and ["0", "2", "0", "0", f"{-np.log(0.2):.6f}"] in arcs
    assert ["2", "1", sil_id, "0", "0.000000"] in arcs
    # every word's last phone leaves to the loop state (no silence) and to the silence state
    last = [a for a in arcs if a[2] == str(lang.phones["uw"])]
    assert sorted((a[1], a[4]) for a in last) == sorted([("1", f"{-np.log(0.8):.6f}"), ("2", f"{-np.log(0.2):.6f}")] * 3)


@pytest.mark.parametrize("change, message", [
    (dict(lexicon="red r eh d\nblue b l uw\n"), "word 'blue': phone 'b' is in neither"),
    (dict(optional="nsn\nsil\n"), "optional_silence.txt: must hold one phone"),
    (dict(optional="uw\n"), "optional_silence.txt: must hold one phone"),
    (dict(nonsilence="r\neh d\niy\nt\nuw\nah\nn\nsil\n"), "in both silence_phones.txt and nonsilence_phones.txt"),
    (dict(nonsilence="r\neh d\niy\nt\nuw\nah\nn\nr\n"), "phone 'r' listed twice"),
    (dict(nonsilence="r\neh d\niy\nt\nuw_B\nah\nn\n"), "position suffix"),
    (dict(questions="sil zz\n"), "extra_questions.txt: unknown phones"),
    (dict(lexicon="red 1.0 r eh d\n"), "phone '1.0' is in neither"),
])
def test_bad_dict_dirs_name_the_file_and_the_problem(tmp_path, change, message):
    write_dict(tmp_path / "dict", **change)
    p = run_cmd(["prepare-lang", str(tmp_path / "dict"), str(tmp_path / "lang")], check=False)
    assert p.returncode == 1 and message in p.stderr and "Traceback" not in p.stderr, p.stderr
    assert not (tmp_path / "lang" / "L.fst").exists()


def test_lexiconp_probabilities_become_costs(tmp_path):
    d = write_dict(tmp_path / "dict")
    (d / "lexicon.txt").unlink()
    (d / "lexiconp.txt").write_text("red 1.0 r eh d\nread 0.5 r eh d\nreed 1 r iy d\n")
    lang = prepare_lang(str(d), str(tmp_path / "lang"), sil_prob=0.0, position_dependent_phones=False)
    arcs = [line.split() for line in lang.lexicon_fst_text().splitlines() if len(line.split()) == 5]
    first = {a[3]: float(a[4]) for a in arcs if a[2] == str(lang.phones["r"])}
    assert first[str(lang.words["read"])] == pytest.approx(np.log(2), abs=1e-6)
    assert first[str(lang.words["red"])] == 0.0
    (d / "lexiconp.txt").write_text("red 1.5 r eh d\n")
    with pytest.raises(NnetavgError, match=r"lexiconp.txt:1: word 'red': probability"):
        prepare_lang(str(d), str(tmp_path / "lang2"))
