"""Posterior tables: Kaldi's byte layout, text form, round trips, and telling them from alignments."""

import struct

import numpy as np
import pytest

from nnetavg.errors import FormatError
from nnetavg.io.posterior import Posterior
from nnetavg.io.tables import FLOAT, INT32, INT_VECTOR, POSTERIOR, TARGETS, SequentialReader, TableWriter


def kaldi_bytes(frames):
    """A Posterior as Kaldi's PosteriorHolder writes it in binary, built by hand."""
    out = b"\0B\x04" + struct.pack("<i", len(frames))
    for pairs in frames:
        out += b"\x04" + struct.pack("<i", len(pairs))
        for i, w in pairs:
            out += b"\x04" + struct.pack("<i", i) + b"\x04" + struct.pack("<f", w)
    return out


def test_binary_layout_is_kaldis(tmp_path):
    one = [[(5, 1.0)], [(5, 1.0)], [(7, 1.0)]]
    soft = [[(1, 0.25), (2, 0.75)], [], [(4, 1.0)]]
    for frames in (one, soft):
        with TableWriter(f"ark:{tmp_path}/p.ark", POSTERIOR) as w:
            w.write("u1", Posterior.from_pairs(frames))
        assert (tmp_path / "p.ark").read_bytes() == b"u1 " + kaldi_bytes(frames)
        (tmp_path / "k.ark").write_bytes(b"u1 " + kaldi_bytes(frames) + b"u2 " + kaldi_bytes(one))
        got = dict(SequentialReader(f"ark:{tmp_path}/k.ark", POSTERIOR))
        assert got["u1"].pairs() == [[(i, pytest.approx(w)) for i, w in f] for f in frames]
        assert got["u2"].as_alignment().tolist() == [5, 5, 7]


def test_text_form_and_round_trip(tmp_path):
    post = Posterior.from_pairs([[(3, 1.0)], [(0, 0.5), (9, 0.5)]])
    with TableWriter(f"ark,t:{tmp_path}/p.txt", POSTERIOR) as w:
        w.write("a", post)
    assert (tmp_path / "p.txt").read_text() == "a [ 3 1 ] [ 0 0.5 9 0.5 ] \n"
    (back,) = [v for _, v in SequentialReader(f"ark:{tmp_path}/p.txt", TARGETS)]
    assert back.pairs() == post.pairs()


def test_targets_holder_tells_alignments_from_posteriors(tmp_path):
    ali = np.array([0, 0, 3, 3, 4], np.int32)
    with TableWriter(f"ark:{tmp_path}/a.ark", INT_VECTOR) as w:
        w.write("u", ali)
    with TableWriter(f"ark,scp:{tmp_path}/p.ark,{tmp_path}/p.scp", POSTERIOR) as w:
        w.write("u", Posterior.from_alignment(ali))
    (a,) = [v for _, v in SequentialReader(f"ark:{tmp_path}/a.ark", TARGETS)]
    (p,) = [v for _, v in SequentialReader(f"scp:{tmp_path}/p.scp", TARGETS)]
    assert isinstance(a, np.ndarray) and a.tolist() == ali.tolist()
    assert isinstance(p, Posterior) and p.as_alignment().tolist() == ali.tolist()


def test_truncated_posterior_is_a_format_error(tmp_path):
    (tmp_path / "t.ark").write_bytes(b"u1 " + kaldi_bytes([[(1, 0.5), (2, 0.5)], [(3, 1.0)]])[:-6])
    with pytest.raises(FormatError, match="truncated"):
        list(SequentialReader(f"ark:{tmp_path}/t.ark", POSTERIOR))


def test_float_and_int32_tables(tmp_path):
    with TableWriter(f"ark:{tmp_path}/f.ark", FLOAT) as w:
        w.write("a", 0.5)
    with TableWriter(f"ark,t:{tmp_path}/i.txt", INT32) as w:
        w.write("a", 42)
    assert (tmp_path / "f.ark").read_bytes() == b"a \0B\x04" + struct.pack("<f", 0.5)
    assert (tmp_path / "i.txt").read_text() == "a 42\n"
    assert [float(v[0]) for _, v in SequentialReader(f"ark:{tmp_path}/f.ark", FLOAT)] == [0.5]
    assert [int(v[0]) for _, v in SequentialReader(f"ark:{tmp_path}/i.txt", INT32)] == [42]
