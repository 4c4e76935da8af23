"""Every nnet1 file the toolkit writes parses under a strict reader of Kaldi's grammar written here
(independently of nnetavg.io.nnet1, from reference section 4), text and binary give the same model,
and a Kaldi-written model (tokens in any case, optional markers left out, training coefficients)
is read and training continues from it."""

import re
import struct

import numpy as np
import pytest

from tests.conftest import make_labelled_data, run_cmd

# --------------------------------------------------------------------------- a strict parser

NO_DATA = {"<Sigmoid>", "<Tanh>", "<Softmax>"}


class Strict:
    """Kaldi's Nnet::Write grammar, strictly: <Nnet>, every component closed by <!EndOfComponent>,
    </Nnet> at the end, exact token spacing, consistent dimensions."""

    def __init__(self, data: bytes):
        self.binary = data[:2] == b"\0B"
        self.d = data[2:] if self.binary else data
        self.i = 0

    def token(self):
        if not self.binary:
            while self.d[self.i:self.i + 1] in (b" ", b"\n"):
                self.i += 1
        j = self.d.index(b" ", self.i)
        tok = self.d[self.i:j].decode()
        assert tok and not re.search(r"\s", tok), f"bad token at {self.i}"
        self.i = j + 1
        return tok

    def _scalar(self, fmt, parse):
        if self.binary:
            assert self.d[self.i] == 4, "int32 and float scalars have size byte 4"
            v = struct.unpack(fmt, self.d[self.i + 1:self.i + 5])[0]
            self.i += 5
            return v
        return parse(self.token())

    def int32(self):
        return self._scalar("<i", int)

    def float32(self):
        return self._scalar("<f", float)

    def _text_bracket(self):
        m = re.compile(rb"\s*\[(.*?)\]\n", re.S).match(self.d, self.i)
        assert m, f"expected [ ... ] at byte {self.i}: {self.d[self.i:self.i + 30]!r}"
        self.i = m.end()
        return m.group(1).decode()

    def matrix(self):
        if self.binary:
            assert self.token() == "FM"
            rows, cols = self.int32(), self.int32()
            m = np.frombuffer(self.d, "<f4", rows * cols, self.i).reshape(rows, cols)
            self.i += 4 * rows * cols
            return m
        body = self._text_bracket()
        rows = [r.split() for r in body.split("\n") if r.strip()]
        assert all(len(r) == len(rows[0]) for r in rows), "ragged text matrix"
        for r in rows:
            for x in r:
                assert re.match(r"^(-?\d|nan|inf|-inf)", x, re.I), f"number {x!r} must start with a digit or -"
        return np.array(rows, dtype=np.float32)

    def vector(self):
        if self.binary:
            assert self.token() == "FV"
            n = self.int32()
            v = np.frombuffer(self.d, "<f4", n, self.i)
            self.i += 4 * n
            return v
        return np.array(self._text_bracket().split(), dtype=np.float32)

    def int_vector(self):
        if self.binary:
            assert self.d[self.i] == 4, "int vector element size byte must be 4"
            n = struct.unpack("<i", self.d[self.i + 1:self.i + 5])[0]
            out = np.frombuffer(self.d, "<i4", n, self.i + 5)  # raw elements, no size bytes
            self.i += 5 + 4 * n
            return out
        if self.d[self.i:self.i + 1] == b"\n":  # the newline after the component's dims
            self.i += 1
        assert self.d[self.i:self.i + 2] == b"[ ", "text int vector starts with '[ '"
        return np.array(self._text_bracket().split(), dtype=int)

    def expect(self, tok):
        got = self.token()
        assert got == tok, f"expected {tok}, got {got}"

    def nnet(self):
        self.expect("<Nnet>")
        comps, prev_out = [], None
        while True:
            tok = self.token()
            if tok == "</Nnet>":
                break
            out_dim, in_dim = self.int32(), self.int32()
            assert prev_out is None or prev_out == in_dim, f"{tok}: input dim {in_dim} != previous output {prev_out}"
            data = {}
            if tok == "<AffineTransform>":
                for t in ("<LearnRateCoef>", "<BiasLearnRateCoef>", "<MaxNorm>"):
                    self.expect(t)
                    data[t] = self.float32()
                data["W"], data["b"] = self.matrix(), self.vector()
                assert data["W"].shape == (out_dim, in_dim) and data["b"].shape == (out_dim,)
            elif tok in ("<AddShift>", "<Rescale>"):
                self.expect("<LearnRateCoef>")
                data["coef"], data["v"] = self.float32(), self.vector()
                assert out_dim == in_dim == len(data["v"])
            elif tok == "<Splice>":
                data["offsets"] = self.int_vector()
                assert out_dim == in_dim * len(data["offsets"])
            elif tok == "<ParametricRelu>":
                self.expect("<AlphaLearnRateCoef>")
                data["ac"] = self.float32()
                self.expect("<BetaLearnRateCoef>")
                data["bc"], data["alpha"], data["beta"] = self.float32(), self.vector(), self.vector()
            elif tok == "<Rbm>":
                data["vis"], data["hid"] = self.token(), self.token()
                assert data["vis"] in ("bern", "gauss") and data["hid"] in ("bern", "gauss")
                data["W"], data["vb"], data["hb"] = self.matrix(), self.vector(), self.vector()
                assert data["W"].shape == (out_dim, in_dim)
            else:
                assert tok in NO_DATA, f"unknown component {tok}"
                assert out_dim == in_dim
            self.expect("<!EndOfComponent>")
            comps.append((tok, out_dim, in_dim, data))
            prev_out = out_dim
        rest = self.d[self.i:]
        assert rest in (b"", b"\n"), f"bytes after </Nnet>: {rest[:20]!r}"
        return comps


def same_model(a, b):
    assert [c[:3] for c in a] == [c[:3] for c in b]
    for (_, _, _, da), (_, _, _, db) in zip(a, b):
        assert da.keys() == db.keys()
        for k in da:
            if isinstance(da[k], str):
                assert da[k] == db[k]
            else:
                np.testing.assert_allclose(np.asarray(da[k], np.float64), np.asarray(db[k], np.float64), rtol=2e-6, atol=1e-7)


# --------------------------------------------------------------------------- the files we write

@pytest.fixture(scope="module")
def written_models(tmp_path_factory):
    """Model files made by the toolkit's own commands."""
    d = tmp_path_factory.mktemp("models")
    feats, ali = make_labelled_data(d, num_utts=12, feat_dim=5, num_pdfs=4)
    out = []
    for nl in ("sigmoid", "tanh", "relu"):
        run_cmd(["nnet-init", "--input-dim", "15", "--output-dim", "4", "--hidden-layers", "2", "--hidden-dim", "8",
                 "--nonlinearity", nl, f"{d}/{nl}.nnet"])
        out.append(f"{d}/{nl}.nnet")
    run_cmd(["make-feature-transform", "--splice", "1", f"scp:{feats}", f"{d}/ft.nnet"])
    out.append(f"{d}/ft.nnet")
    run_cmd(["nnet-train-ngsgd", "--feature-transform", f"{d}/ft.nnet", f"{d}/sigmoid.nnet", f"scp:{feats}", f"ark:{ali}",
             f"{d}/trained.nnet"])
    out.append(f"{d}/trained.nnet")
    run_cmd(["nnet-init-rbm", "--visible-type", "gauss", "15", "6", f"{d}/rbm.nnet"])
    out.append(f"{d}/rbm.nnet")
    run_cmd(["nnet-concat", f"{d}/ft.nnet", f"{d}/trained.nnet", f"{d}/concat.nnet"])
    out.append(f"{d}/concat.nnet")
    return d, out


def test_every_written_model_parses_strictly_and_text_equals_binary(written_models):
    d, paths = written_models
    for path in paths:
        with open(path, "rb") as f:
            data = f.read()
        parsed = Strict(data).nnet()
        is_binary = data[:2] == b"\0B"
        other = path + ".other"  # the other form: binary <-> text
        run_cmd(["nnet-copy", "--binary=" + ("false" if is_binary else "true"), path, other])
        with open(other, "rb") as f:
            converted = Strict(f.read())
        assert converted.binary != is_binary
        same_model(parsed, converted.nnet())  # text has 7 significant digits, as Kaldi writes it


# A model as Kaldi's nnet-initialize + nnet-train-frmshuff leave it, written the way a user might
# have edited it: lower-case markers, no <Nnet>/<!EndOfComponent>, coefficients in another order.
KALDI_STYLE = """<affinetransform> 4 3 <MaxNorm> 0 <LearnRateCoef> 1 <BiasLearnRateCoef> 0.5
 [
  0.1 -0.2 0.3
  0.4 0.5 -0.6
  0.7 0.8 0.9
  -1 0 1 ]
 [ 0 0.1 -0.1 0.2 ]
<Sigmoid> 4 4
<AffineTransform> 2 4
<LearnRateCoef> 1 <BiasLearnRateCoef> 1 <MaxNorm> 0
 [
  1 0 -1 0
  0 1 0 -1 ]
 [ 0 0 ]
<softmax> 2 2
"""


def test_kaldi_style_model_is_read_and_training_continues(tmp_path):
    from nnetavg.io.nnet1 import read_nnet

    path = tmp_path / "kaldi.nnet"
    path.write_text(KALDI_STYLE)
    net = read_nnet(str(path))
    x = np.array([[1.0, -1.0, 0.5]], np.float32)
    w1 = np.array([[0.1, -0.2, 0.3], [0.4, 0.5, -0.6], [0.7, 0.8, 0.9], [-1, 0, 1]], np.float32)
    h = 1 / (1 + np.exp(-(x @ w1.T + np.array([0, 0.1, -0.1, 0.2]))))
    z = h @ np.array([[1, 0, -1, 0], [0, 1, 0, -1]], np.float32).T
    np.testing.assert_allclose(net.forward(x), np.exp(z) / np.exp(z).sum(1, keepdims=True), rtol=1e-5)
    assert net.components[0].bias_lr_coef == 0.5
    # Training continues from it, and the result parses strictly.
    feats, ali = make_labelled_data(tmp_path, num_utts=10, feat_dim=3, num_pdfs=2)
    run_cmd(["nnet-train-simple", "--learn-rate", "0.01", str(path), f"scp:{feats}", f"ark:{ali}", f"{tmp_path}/out.nnet"])
    with open(tmp_path / "out.nnet", "rb") as f:
        comps = Strict(f.read()).nnet()
    assert [c[0] for c in comps] == ["<AffineTransform>", "<Sigmoid>", "<AffineTransform>", "<Softmax>"]
    assert not np.allclose(comps[0][3]["W"], w1), "training did not change the weights"


@pytest.mark.parametrize("marker", ["<LstmProjected>", "<LengthNormComponent>", "<KlHmm>", "<ConvolutionalComponent>"])
def test_unrunnable_kaldi_component_is_named(tmp_path, marker):
    path = tmp_path / "m.nnet"
    path.write_text(f"<Nnet>\n{marker} 4 4\n<!EndOfComponent>\n</Nnet>\n")
    proc = run_cmd(["nnet-info", str(path)], check=False)
    assert proc.returncode == 1
    assert marker in proc.stderr and "cannot run" in proc.stderr and "Traceback" not in proc.stderr
