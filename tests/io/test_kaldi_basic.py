"""Kaldi basic objects: our writer/reader against each other, against kaldiio and against
kaldi-native-io (an independent C++ implementation), and the exact bytes of the grammar."""

import io
import struct

import kaldi_native_io as kni
import kaldiio
import numpy as np
import pytest

from nnetavg.errors import FormatError
from nnetavg.io.kaldi_basic import KaldiReader, KaldiWriter


def write(binary, fn):
    buf = io.BytesIO()
    w = KaldiWriter(buf, binary)
    w.write_header()
    fn(w)
    return buf.getvalue()


@pytest.mark.parametrize("binary", [True, False])
@pytest.mark.parametrize("shape", [(3, 4), (1, 1), (0, 0), (7, 1)])
def test_matrix_round_trip(binary, shape):
    m = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
    data = write(binary, lambda w: w.write_matrix(m))
    got = KaldiReader(data).read_matrix()
    if binary:
        np.testing.assert_array_equal(got.reshape(shape), m)
    else:
        np.testing.assert_allclose(got.reshape(shape), m, rtol=1e-6)


@pytest.mark.parametrize("binary", [True, False])
def test_vector_int_vector_scalars_tokens(binary):
    v = np.array([1.5, -2.25, 1e-8, 3e7], np.float32)
    iv = np.array([-5, 0, 5, 123456], np.int32)

    def body(w):
        w.write_token("<Tok>")
        w.write_int(-42)
        w.write_float(0.1)
        w.write_vector(v)
        w.write_int_vector(iv)
    r = KaldiReader(write(binary, body))
    assert r.binary is binary
    assert r.read_token() == "<Tok>"
    assert r.read_int() == -42
    assert r.read_float() == pytest.approx(0.1, rel=1e-6)
    np.testing.assert_allclose(r.read_vector(), v, rtol=1e-6)
    np.testing.assert_array_equal(r.read_int_vector(), iv)
    assert r.at_end()


def test_binary_bytes_follow_the_grammar():
    m = np.array([[1, 2], [3, 4]], np.float32)
    data = write(True, lambda w: (w.write_token("<A>"), w.write_int(7), w.write_matrix(m)))
    expected = (b"\0B" + b"<A> " + b"\x04" + struct.pack("<i", 7) + b"FM " + b"\x04" + struct.pack("<i", 2)
                + b"\x04" + struct.pack("<i", 2) + m.tobytes())
    assert data == expected


def test_text_matrix_layout_is_kaldis():
    data = write(False, lambda w: w.write_matrix(np.array([[0.1, -0.2, 0.3], [1, 2, 3]], np.float32)))
    assert data == b" [\n  0.1 -0.2 0.3 \n  1 2 3 ]\n"
    assert write(False, lambda w: w.write_vector(np.array([1, 2, 3], np.float32))) == b" [ 1 2 3 ]\n"
    assert write(False, lambda w: w.write_int_vector([-1, 0, 1])) == b"[ -1 0 1 ]\n"


@pytest.mark.parametrize("binary", [True, False])
def test_matrix_file_readable_by_kaldiio_and_kaldi_native_io(tmp_path, binary):
    m = np.random.default_rng(1).standard_normal((5, 3)).astype(np.float32)
    path = tmp_path / "m.mat"
    path.write_bytes(write(binary, lambda w: w.write_matrix(m)))
    np.testing.assert_allclose(kaldiio.load_mat(str(path)), m, rtol=1e-6)
    np.testing.assert_allclose(np.array(kni.FloatMatrix.read(str(path))), m, rtol=1e-6)


def test_reads_what_kaldi_native_io_writes(tmp_path):
    m = np.arange(12, dtype=np.float32).reshape(3, 4) / 7
    w = kni.FloatMatrixWriter(f"ark:{tmp_path}/a.ark")
    w.write("k", m)
    w.close()
    data = (tmp_path / "a.ark").read_bytes()
    r = KaldiReader(data[2:], binary=None)  # skip "k " (key + space)
    np.testing.assert_array_equal(r.read_matrix(), m)


def test_double_matrices_are_read():
    buf = io.BytesIO(b"\0BDM \x04" + struct.pack("<i", 1) + b"\x04" + struct.pack("<i", 2)
                     + np.array([1.5, 2.5]).tobytes())
    np.testing.assert_array_equal(KaldiReader(buf.getvalue()).read_matrix(), [[1.5, 2.5]])


@pytest.mark.parametrize("binary", [True, False])
def test_truncation_is_a_format_error_naming_the_file(binary):
    data = write(binary, lambda w: w.write_matrix(np.ones((4, 4), np.float32)))
    with pytest.raises(FormatError, match="model.nnet"):
        KaldiReader(data[:-9], name="model.nnet").read_matrix()


def test_text_errors():
    with pytest.raises(FormatError, match="unequal"):
        KaldiReader(b" [\n 1 2 \n 3 ]\n").read_matrix()
    with pytest.raises(FormatError, match="not a number"):
        KaldiReader(b" [ 1 x 3 ]\n").read_vector()
    with pytest.raises(FormatError, match="expected a matrix"):
        KaldiReader(b"\0BFV \x04\x01\x00\x00\x00\x00\x00\x80\x3f").read_matrix()
