"""Kaldi lattices and the scoring tools of steps/score_kaldi.sh: the text form round-trips, the tools
pick the path the LM weight and the word insertion penalty make cheapest (hand-computed), compute-wer's
modes and rspecifiers, and the ConstFst graph reader against kaldifst's own writer."""

import io
import subprocess

import pytest

from nnetavg.asr.lattice import Arc, CompactLattice, read_lattice, write_lattice
from nnetavg.io.tables import LATTICE, SequentialReader, TableWriter
from tests.conftest import run_cmd


def two_paths() -> CompactLattice:
    """Path A: words 1 2, graph 1.0, acoustic 10.0. Path B: word 3, graph 5.0, acoustic 2.0."""
    lat = CompactLattice()
    for _ in range(5):
        lat.add_state()
    lat.arcs[0] = [Arc(1, 1, 0.5, 4.0, (3, 3)), Arc(3, 3, 5.0, 1.0, (7,))]
    lat.arcs[1] = [Arc(2, 0, 0.0, 2.0, (4,))]
    lat.arcs[2] = [Arc(4, 2, 0.5, 4.0, (5, 6))]
    lat.arcs[3] = [Arc(4, 0, 0.0, 1.0, (8, 8))]
    lat.finals[4] = (0.0, 0.0, (9,))
    return lat


def test_text_form_round_trips_and_reads_kaldi_lattices(tmp_path):
    lat = two_paths()
    with TableWriter(f"ark:{tmp_path}/lat.ark", LATTICE) as w:
        w.write("u1", lat)
        w.write("u2", lat)
    text = (tmp_path / "lat.ark").read_text()
    assert text.startswith("u1 \n0\t1\t1\t0.5,4,3_3\n0\t3\t3\t5,1,7\n") and "\n4\t0,0,9\n\nu2 \n" in text
    got = list(SequentialReader(f"ark:{tmp_path}/lat.ark", LATTICE))
    assert [k for k, _ in got] == ["u1", "u2"] and got[0][1] == lat
    # Kaldi's Lattice form (transducer: tid word graph,acoustic) where a CompactLattice is read,
    # a start state that is not 0, a final state without weight, a compact arc without weight
    kaldi = read_lattice(io.BytesIO(b"\n5 6 11 4 1.5,2.5\n6 7 12 0 0,3\n7\n\n"))
    assert kaldi.best_path() == ([4], [11, 12], 1.5, 5.5)
    compact = read_lattice(io.BytesIO(b"\n2 0 9\n0 1.0,2.0,\n\n"))
    assert compact.best_path() == ([9], [], 1.0, 2.0)
    with pytest.raises(Exception, match="bad lattice"):
        read_lattice(io.BytesIO(b"\n0 1 2 x,y,z\n\n"))


def test_best_path_follows_lm_weight_and_penalty():
    # costs at inverse acoustic scale L: A = 1 + 10/L, B = 5 + 2/L; penalty p adds 2p to A, p to B
    for inv_scale, penalty, words in ((1, 0, [3]), (10, 0, [1, 2]), (10, 4, [3])):
        lat = two_paths()
        lat.scale(1.0, 1.0 / inv_scale)
        lat.add_word_insertion_penalty(penalty)
        w, tids, g, a = lat.best_path()
        assert w == words
        assert tids == ([3, 3, 4, 5, 6, 9] if words == [1, 2] else [7, 8, 8, 9])
        assert g == pytest.approx(1.0 + 2 * penalty if words == [1, 2] else 5.0 + penalty)


def test_score_kaldi_pipeline_with_our_tools(tmp_path):
    """lattice-scale | lattice-add-penalty | lattice-best-path | int2sym, then compute-wer on the
    hypotheses, as score_kaldi.sh runs them."""
    with TableWriter(f"ark:| gzip -c > {tmp_path}/lat.1.gz", LATTICE) as w:
        w.write("utt1", two_paths())
    (tmp_path / "words.txt").write_text("<eps> 0\nno 1\nyes 2\nmaybe 3\n")
    (tmp_path / "ref.txt").write_text("utt1 no yes\nutt2 maybe\n")

    def best(inv_scale, penalty):
        p = subprocess.run(["bash", "-c", f"set -o pipefail; lattice-scale --inv-acoustic-scale={inv_scale} "
                            f"'ark:gunzip -c {tmp_path}/lat.*.gz|' ark:- | lattice-add-penalty --word-ins-penalty={penalty} "
                            f"ark:- ark:- | lattice-best-path --word-symbol-table={tmp_path}/words.txt ark:- ark,t:-"],
                           capture_output=True, text=True)
        assert p.returncode == 0, p.stderr
        return p.stdout

    assert best(10, 0.0) == "utt1 1 2\n"
    assert best(1, 0.0) == "utt1 3\n"
    assert best(10, 4.0) == "utt1 3\n"
    out = run_cmd(["compute-wer", "--text", "--mode=present", f"ark:{tmp_path}/ref.txt", "ark,p:-"],
                  input="utt1 no yes\n").stdout
    assert out.startswith("%WER 0.00 [ 0 / 2, 0 ins, 0 del, 0 sub ]\n") and "Scored 1 sentences, 1 not present in hyp." in out
    out = run_cmd(["compute-wer", "--mode=all", "--replications=0", f"{tmp_path}/ref.txt", "-"], input="utt1 no\n").stdout
    assert out.startswith("%WER 66.67 [ 2 / 3, 0 ins, 2 del, 0 sub ]\n")
    p = run_cmd(["compute-wer", "--mode=strict", f"{tmp_path}/ref.txt", "-"], input="utt1 no\n", check=False)
    assert p.returncode != 0 and "utt2" in p.stderr and "Traceback" not in p.stderr
    (tmp_path / "hyp.txt").write_text("utt1 no maybe yes\nutt2 \n")
    out = run_cmd(["align-text", "--special-symbol='***'", f"ark:{tmp_path}/ref.txt", f"ark:{tmp_path}/hyp.txt",
                   "ark,t:-"]).stdout
    assert out == "utt1 no no ; *** maybe ; yes yes\nutt2 maybe ***\n"
    out = run_cmd(["compute-wer-bootci", "--mode=present", f"ark:{tmp_path}/ref.txt", f"ark:{tmp_path}/hyp.txt"]).stdout
    assert "Set1: %WER 66.67 95% Conf Interval [" in out


def test_const_fst_reads_as_the_vector_fst_it_was_made_from(tmp_path):
    kaldifst = pytest.importorskip("kaldifst")
    pytest.importorskip("kaldi_hmm_gmm")
    from nnetavg.asr.graph import read_fst

    # start state 2 (not 0), an epsilon arc, two final states with weights
    fst = kaldifst.compile("2 0 3 5 0.25\n2 1 0 0 1.5\n0 1 4 6 0.125\n1 3 7 0\n1 2.5\n3 0.75\n", keep_state_numbering=True)
    fst.write(str(tmp_path / "vector.fst"))
    kaldifst.StdConstFst(fst).write(str(tmp_path / "const.fst"))
    assert (tmp_path / "const.fst").read_bytes()[8:13] == b"const"
    v, c = read_fst(str(tmp_path / "vector.fst")), read_fst(str(tmp_path / "const.fst"))
    assert c.start == fst.start == 2 and c.num_states == 4
    assert c.to_str() == v.to_str() == fst.to_str()
    (tmp_path / "bad.fst").write_bytes(b"not an fst at all")
    with pytest.raises(Exception, match="not an OpenFst binary FST"):
        read_fst(str(tmp_path / "bad.fst"))


def test_write_lattice_is_the_start_state_first():
    f = io.BytesIO()
    write_lattice(f, CompactLattice.linear([5, 6], [0, 9], [0.5, 0.25], [3.0, 2.0], final_graph=1.0))
    assert f.getvalue() == b"\n0\t1\t0\t0.5,3,5\n1\t2\t9\t0.25,2,6\n2\t1,0,\n\n"
