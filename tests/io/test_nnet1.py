"""nnet1 model files: round trips of every component, hand-written Kaldi files, exact binary
bytes, and clear errors for truncated, corrupt or unsupported models."""

import struct

import numpy as np
import pytest

from nnetavg.errors import FormatError
from nnetavg.io.nnet1 import read_nnet, write_nnet
from nnetavg.nnet.components import (AddShift, AffineTransform, ParametricRelu, Rescale, Sigmoid, Softmax, Splice,
                                     Tanh)
from nnetavg.nnet.network import Network

# Written by hand from the Kaldi grammar (reference section 4), as `nnet-copy --binary=false` prints.
HAND_WRITTEN = """<Nnet> 
<AffineTransform> 3 4 
<LearnRateCoef> 1 <BiasLearnRateCoef> 0.1 <MaxNorm> 0 
 [
  0.1 0.2 0.3 0.4 
  0.5 0.6 0.7 0.8 
  -0.1 -0.2 -0.3 -0.4 ]
 [ 0 0.1 -0.1 ]
<!EndOfComponent> 
<Sigmoid> 3 3 
<!EndOfComponent> 
<Softmax> 3 3 
<!EndOfComponent> 
</Nnet> 
"""


def every_component_network():
    rng = np.random.default_rng(0)
    a = AffineTransform(6, 4, learn_rate_coef=0.5, bias_learn_rate_coef=0.1, max_norm=2.0)
    a.init = {"linearity": rng.standard_normal((4, 6)).astype(np.float32), "bias": rng.standard_normal(4).astype(np.float32)}
    sh, sc = AddShift(2, 2), Rescale(2, 2)
    sh.init = {"shift": np.array([0.5, -1.5], np.float32)}
    sc.init = {"scale": np.array([2.0, 0.25], np.float32)}
    pr = ParametricRelu(4, 4, alpha_learn_rate_coef=0.3, beta_learn_rate_coef=0.2)
    pr.init = {"alpha": np.array([1, 2, 3, 4], np.float32), "beta": np.array([0.1, 0, 0, -0.1], np.float32)}
    a2 = AffineTransform(4, 4)
    a2.init = {"linearity": np.eye(4, dtype=np.float32), "bias": np.zeros(4, np.float32)}
    return (Network([Splice(2, 6, [-1, 0, 1]), a, Sigmoid(4, 4), a2, Tanh(4, 4), pr, Softmax(4, 4)]),
            Network([sh, sc]))


@pytest.mark.parametrize("binary", [True, False])
def test_round_trip_every_component(tmp_path, binary):
    for i, net in enumerate(every_component_network()):
        path = str(tmp_path / f"m{i}")
        write_nnet(net, path, binary=binary)
        back = read_nnet(path)
        assert back.topology() == net.topology()
        np.testing.assert_allclose(back.params, net.params, rtol=1e-6)
        for c1, c2 in zip(net.components, back.components):
            assert vars(c1).keys() == vars(c2).keys()
            for k in ("lr_coef", "bias_lr_coef", "max_norm", "alpha_lr_coef", "beta_lr_coef"):
                if hasattr(c1, k):
                    assert getattr(c1, k) == pytest.approx(getattr(c2, k))
        # text and binary files describe the same network
        write_nnet(back, path + ".other", binary=not binary)
        np.testing.assert_allclose(read_nnet(path + ".other").params, net.params, rtol=1e-6)


def test_reads_hand_written_kaldi_text(tmp_path):
    (tmp_path / "m.txt").write_text(HAND_WRITTEN)
    net = read_nnet(str(tmp_path / "m.txt"))
    aff = net.components[0]
    assert (aff.input_dim, aff.output_dim) == (4, 3)
    np.testing.assert_allclose(aff.params["linearity"][2], [-0.1, -0.2, -0.3, -0.4], rtol=1e-6)
    np.testing.assert_allclose(aff.params["bias"], [0, 0.1, -0.1], rtol=1e-6)
    assert aff.bias_lr_coef == pytest.approx(0.1)
    assert [type(c).__name__ for c in net.components] == ["AffineTransform", "Sigmoid", "Softmax"]
    # and writes it back byte for byte
    write_nnet(net, str(tmp_path / "again.txt"), binary=False)
    assert (tmp_path / "again.txt").read_text() == HAND_WRITTEN


def test_reader_leniency_matches_kaldi(tmp_path):
    # No <Nnet>, no <!EndOfComponent>, lower-case markers, coefficient tokens missing or reordered.
    text = ("<affinetransform> 2 2\n<MaxNorm> 1 <LearnRateCoef> 0.5\n [\n 1 0\n 0 1 ]\n [ 0 0 ]\n"
            "<SIGMOID> 2 2\n<Splice> 4 2\n[ -1 1 ]\n")
    (tmp_path / "m").write_text(text)
    net = read_nnet(str(tmp_path / "m"))
    assert [c.marker for c in net.components] == ["<AffineTransform>", "<Sigmoid>", "<Splice>"]
    assert net.components[0].max_norm == 1 and net.components[0].lr_coef == 0.5
    assert net.components[0].bias_lr_coef == 1.0


def test_binary_bytes_exact(tmp_path):
    a = AffineTransform(2, 1)
    a.init = {"linearity": np.array([[1.0, 2.0]], np.float32), "bias": np.array([0.5], np.float32)}
    write_nnet(Network([a, Sigmoid(1, 1)]), str(tmp_path / "m"))
    i4 = lambda v: b"\x04" + struct.pack("<i", v)  # noqa: E731
    f4 = lambda v: b"\x04" + struct.pack("<f", v)  # noqa: E731
    expected = (b"\0B<Nnet> <AffineTransform> " + i4(1) + i4(2)
                + b"<LearnRateCoef> " + f4(1) + b"<BiasLearnRateCoef> " + f4(1) + b"<MaxNorm> " + f4(0)
                + b"FM " + i4(1) + i4(2) + np.array([1, 2], np.float32).tobytes()
                + b"FV " + i4(1) + np.array([0.5], np.float32).tobytes()
                + b"<!EndOfComponent> <Sigmoid> " + i4(1) + i4(1) + b"<!EndOfComponent> </Nnet> ")
    assert (tmp_path / "m").read_bytes() == expected


def test_errors(tmp_path):
    net, _ = every_component_network()
    write_nnet(net, str(tmp_path / "m"))
    data = (tmp_path / "m").read_bytes()
    for cut in (len(data) // 2, len(data) - 30, 10):
        (tmp_path / "t").write_bytes(data[:cut])
        with pytest.raises(FormatError, match=r"t: .*(truncated|component)"):
            read_nnet(str(tmp_path / "t"))
    (tmp_path / "u").write_text("<Nnet>\n<LstmProjected> 4 4\n</Nnet>\n")
    with pytest.raises(FormatError, match="component 1: <LstmProjected> is an nnet1 component nnetavg cannot run"):
        read_nnet(str(tmp_path / "u"))
    (tmp_path / "g").write_bytes(b"\x89PNG garbage")
    with pytest.raises(FormatError, match="g: "):
        read_nnet(str(tmp_path / "g"))
    (tmp_path / "d").write_text("<Nnet>\n<Sigmoid> 3 3\n<Softmax> 4 4\n</Nnet>\n")
    with pytest.raises(FormatError, match="outputs dim 3"):
        read_nnet(str(tmp_path / "d"))
    (tmp_path / "e").write_text("")
    with pytest.raises(FormatError, match="empty"):
        read_nnet(str(tmp_path / "e"))


def test_nan_model_is_never_written(tmp_path):
    net, _ = every_component_network()
    net.params[3] = np.nan
    with pytest.raises(Exception, match="NaN"):
        write_nnet(net, str(tmp_path / "nan.nnet"))
    assert list(tmp_path.iterdir()) == []
