"""Tables: every specifier form, matrices and int vectors, checked against kaldiio and
kaldi-native-io, and errors that name the table and the key."""

import subprocess

import kaldi_native_io as kni
import kaldiio
import numpy as np
import pytest

from nnetavg.errors import NnetavgError
from nnetavg.io.tables import (INT_VECTOR, MATRIX, VECTOR, RandomAccessReader, SequentialReader, TableWriter,
                               parse_rspecifier, parse_wspecifier, read_single, write_single)


@pytest.fixture
def mats():
    rng = np.random.default_rng(0)
    return {f"u{i}": rng.standard_normal((int(rng.integers(1, 9)), 4)).astype(np.float32) for i in range(5)} | \
        {"empty": np.zeros((0, 4), np.float32)}


@pytest.fixture
def ints():
    return {"a": np.array([0, 0, 5, 5, 7], np.int32), "b": np.array([], np.int32), "c": np.array([2**31 - 1, -3], np.int32)}


def test_specifier_parsing():
    assert parse_rspecifier("ark,s,cs:foo.ark").kind == "ark"
    assert parse_rspecifier("scp,p:foo.scp").permissive
    assert parse_rspecifier("ark:gunzip -c a.gz |").filename == "gunzip -c a.gz |"
    w = parse_wspecifier("ark,scp:a.ark,a.scp")
    assert (w.ark, w.scp, w.binary) == ("a.ark", "a.scp", True)
    assert not parse_wspecifier("ark,t:-").binary
    for bad in ("foo.ark", "ark,scp:a.ark", "ark,zz:a", "scp:a.scp"):
        with pytest.raises(NnetavgError):
            parse_wspecifier(bad)
    for bad in ("foo.ark", "ark,scp:a,b", "zz:a", "ark:a.ark "):
        with pytest.raises(NnetavgError):
            parse_rspecifier(bad)
    with pytest.raises(NnetavgError, match="ark before scp"):
        parse_wspecifier("scp,ark:a.scp,a.ark")


@pytest.mark.parametrize("text", [False, True])
def test_matrix_ark_scp_round_trip_and_kaldiio(tmp_path, mats, text):
    spec = f"ark,scp{',t' if text else ''}:{tmp_path}/f.ark,{tmp_path}/f.scp"
    with TableWriter(spec, MATRIX) as w:
        for k, m in mats.items():
            w.write(k, m)
    for rspec in (f"ark:{tmp_path}/f.ark", f"scp:{tmp_path}/f.scp"):
        got = dict(SequentialReader(rspec, MATRIX))
        assert list(got) == list(mats)
        for k in mats:
            np.testing.assert_allclose(got[k].reshape(mats[k].shape), mats[k], rtol=1e-6)
    ra = RandomAccessReader(f"scp:{tmp_path}/f.scp")
    np.testing.assert_allclose(ra["u3"], mats["u3"], rtol=1e-6)
    assert ra.get("nope") is None and "u1" in ra
    if not text:
        ref = dict(kaldiio.load_scp(f"{tmp_path}/f.scp"))
        for k in mats:
            np.testing.assert_array_equal(ref[k].reshape(mats[k].shape), mats[k])


def test_matrices_against_kaldi_native_io_both_ways(tmp_path, mats):
    with TableWriter(f"ark,scp:{tmp_path}/ours.ark,{tmp_path}/ours.scp", MATRIX) as w:
        for k, m in mats.items():
            if m.size:
                w.write(k, m)
    got = {k: np.array(v) for k, v in kni.SequentialFloatMatrixReader(f"scp:{tmp_path}/ours.scp")}
    for k, m in mats.items():
        if m.size:
            np.testing.assert_array_equal(got[k], m)
    kw = kni.FloatMatrixWriter(f"ark:{tmp_path}/theirs.ark")
    for k, m in mats.items():
        if m.size:
            kw.write(k, m)
    kw.close()
    for k, m in SequentialReader(f"ark:{tmp_path}/theirs.ark"):
        np.testing.assert_array_equal(m, mats[k])


@pytest.mark.parametrize("text", [False, True])
def test_int_vectors_against_kaldi_native_io(tmp_path, ints, text):
    t = ",t" if text else ""
    with TableWriter(f"ark{t}:{tmp_path}/ours.ark", INT_VECTOR) as w:
        for k, v in ints.items():
            w.write(k, v)
    got = {k: list(v) for k, v in kni.SequentialInt32VectorReader(f"ark:{tmp_path}/ours.ark")}
    assert got == {k: v.tolist() for k, v in ints.items()}
    kw = kni.Int32VectorWriter(f"ark{t}:{tmp_path}/theirs.ark")
    for k, v in ints.items():
        kw.write(k, v.tolist())
    kw.close()
    mine = {k: v.tolist() for k, v in SequentialReader(f"ark:{tmp_path}/theirs.ark", INT_VECTOR)}
    assert mine == {k: v.tolist() for k, v in ints.items()}


def test_int_vector_scp_random_access(tmp_path, ints):
    with TableWriter(f"ark,scp:{tmp_path}/a.ark,{tmp_path}/a.scp", INT_VECTOR) as w:
        for k, v in ints.items():
            w.write(k, v)
    ra = RandomAccessReader(f"scp:{tmp_path}/a.scp", INT_VECTOR)
    np.testing.assert_array_equal(ra["c"], ints["c"])
    ra2 = RandomAccessReader(f"ark:{tmp_path}/a.ark", INT_VECTOR)
    assert sorted(ra2.keys()) == sorted(ints)


def test_pipes_and_stdin_stdout(tmp_path, mats):
    with TableWriter(f"ark:| gzip -c > {tmp_path}/f.ark.gz", MATRIX) as w:
        for k, m in mats.items():
            w.write(k, m)
    got = dict(SequentialReader(f"ark:gunzip -c {tmp_path}/f.ark.gz |"))
    assert list(got) == list(mats)
    # ark:- through a real process: copy-feats reads stdin and writes text to stdout.
    raw = subprocess.run(["gunzip", "-c", f"{tmp_path}/f.ark.gz"], capture_output=True, check=True).stdout
    out = subprocess.run(["copy-feats", "ark:-", "ark,t:-"], input=raw, capture_output=True, check=True).stdout
    assert out.startswith(b"u0  [")
    (tmp_path / "t.ark").write_bytes(out)
    for k, m in SequentialReader(f"ark:{tmp_path}/t.ark"):
        np.testing.assert_allclose(m.reshape(mats[k].shape), mats[k], rtol=1e-6)


def test_compressed_features_are_read(tmp_path):
    m = np.random.default_rng(2).standard_normal((20, 13)).astype(np.float32)
    kaldiio.save_ark(f"{tmp_path}/c.ark", {"x": m}, scp=f"{tmp_path}/c.scp", compression_method=2)
    got = RandomAccessReader(f"scp:{tmp_path}/c.scp")["x"]
    np.testing.assert_allclose(got, m, atol=0.05)


def test_errors_name_table_and_key(tmp_path, mats):
    with TableWriter(f"ark,scp:{tmp_path}/f.ark,{tmp_path}/f.scp") as w:
        for k, m in mats.items():
            w.write(k, m)
    (tmp_path / "bad.scp").write_text(f"u1 {tmp_path}/f.ark:7\nu2 {tmp_path}/missing.ark:10\n")
    with pytest.raises(NnetavgError, match=r"bad\.scp.*'u1'"):
        list(SequentialReader(f"scp:{tmp_path}/bad.scp"))
    with pytest.raises(NnetavgError, match=r"'u2'.*missing\.ark"):
        RandomAccessReader(f"scp:{tmp_path}/bad.scp")["u2"]
    data = (tmp_path / "f.ark").read_bytes()
    (tmp_path / "trunc.ark").write_bytes(data[:len(data) // 2])
    with pytest.raises(NnetavgError, match="trunc.ark"):
        list(SequentialReader(f"ark:{tmp_path}/trunc.ark"))
    assert len(list(SequentialReader(f"ark,p:{tmp_path}/trunc.ark"))) >= 1
    with pytest.raises(NnetavgError, match="cannot open"):
        list(SequentialReader(f"ark:{tmp_path}/none.ark"))
    with pytest.raises(NnetavgError, match="exit status"):
        list(SequentialReader("ark:exit 3 |"))
    with pytest.raises(NnetavgError, match="invalid key"):
        TableWriter(f"ark:{tmp_path}/x.ark").write("a b", mats["u1"])


def test_single_objects(tmp_path):
    v = np.array([1.5, 2.5, 3.5])
    write_single(f"{tmp_path}/v", v, VECTOR, binary=False)
    assert (tmp_path / "v").read_text() == " [ 1.5 2.5 3.5 ]\n"
    np.testing.assert_array_equal(read_single(f"{tmp_path}/v", VECTOR), v)
    s = np.arange(6.0).reshape(2, 3)
    write_single(f"{tmp_path}/s", s, MATRIX, binary=True)
    np.testing.assert_array_equal(kaldiio.load_mat(f"{tmp_path}/s"), s)
    np.testing.assert_array_equal(np.array(kni.DoubleMatrix.read(f"{tmp_path}/s")), s)


def test_count_rows_from_headers(tmp_path):
    """Frames of an scp's matrices from their headers only: float, double, compressed; None where
    the headers cannot tell (an archive)."""
    import kaldiio

    from nnetavg.io.tables import count_rows

    rng = np.random.default_rng(0)
    mats = {f"u{i}": rng.standard_normal((5 + 3 * i, 7)).astype(np.float32) for i in range(5)}
    kaldiio.save_ark(str(tmp_path / "f.ark"), mats, scp=str(tmp_path / "f.scp"))
    kaldiio.save_ark(str(tmp_path / "d.ark"), {k: v.astype(np.float64) for k, v in mats.items()}, scp=str(tmp_path / "d.scp"))
    for cm in (1, 2, 3):
        kaldiio.save_ark(str(tmp_path / f"c{cm}.ark"), mats, scp=str(tmp_path / f"c{cm}.scp"), compression_method=cm)
    for name in ("f", "d", "c1", "c2", "c3"):
        assert count_rows(f"scp:{tmp_path}/{name}.scp") == 55, name
    assert count_rows(f"ark:{tmp_path}/f.ark") is None
