"""<NnetProto> parsing and initialisation statistics, and the make_nnet_proto equivalent."""

import numpy as np
import pytest

from nnetavg.errors import FormatError
from nnetavg.nnet.network import Network
from nnetavg.nnet.proto import init_from_proto, make_proto, parse_build_vector

PROTO = """<NnetProto>
<AffineTransform> <InputDim> 400 <OutputDim> 300 <BiasMean> -2.0 <BiasRange> 4.0 <ParamStddev> 0.05 <MaxNorm> 3.0
<Sigmoid> <InputDim> 300 <OutputDim> 300
<AffineTransform> <InputDim> 300 <OutputDim> 10 <BiasMean> 0.0 <BiasRange> 0.0 <ParamStddev> 0.1 <LearnRateCoef> 1.0 <BiasLearnRateCoef> 0.1
<Softmax> <InputDim> 10 <OutputDim> 10
</NnetProto>
"""


def test_init_statistics_follow_the_proto():
    net = Network(init_from_proto(PROTO, seed=3))
    a, b = net.components[0], net.components[2]
    W, bias = a.params["linearity"], a.params["bias"]
    assert W.std() == pytest.approx(0.05, rel=0.02)
    assert abs(W.mean()) < 0.002
    assert bias.min() >= -4.0 and bias.max() <= 0.0 and bias.mean() == pytest.approx(-2.0, abs=0.2)
    assert a.max_norm == 3.0 and b.bias_lr_coef == pytest.approx(0.1)
    assert np.all(b.params["bias"] == 0)


def test_seed_reproducible_and_different():
    p1 = Network(init_from_proto(PROTO, seed=1)).params
    assert np.array_equal(p1, Network(init_from_proto(PROTO, seed=1)).params)
    assert not np.array_equal(p1, Network(init_from_proto(PROTO, seed=2)).params)


def test_splice_and_other_components():
    net = Network(init_from_proto("<Splice> <InputDim> 3 <OutputDim> 15 <BuildVector> -2:2 </BuildVector>\n"
                                  "<AddShift> <InputDim> 15 <OutputDim> 15 <InitParam> 0.5\n"
                                  "<Rescale> <InputDim> 15 <OutputDim> 15\n"
                                  "<ParametricRelu> <InputDim> 15 <OutputDim> 15\n"))
    assert net.components[0].offsets.tolist() == [-2, -1, 0, 1, 2]
    assert np.all(net.components[1].params["shift"] == 0.5) and np.all(net.components[2].params["scale"] == 1)
    x = np.array([[-1.0] * 15, [2.0] * 15], np.float32)
    np.testing.assert_array_equal(net.components[3].forward(x), [[0] * 15, [2] * 15])  # ReLU


def test_build_vector():
    assert parse_build_vector("-5:5") == list(range(-5, 6))
    assert parse_build_vector("1:2:7, 10") == [1, 3, 5, 7, 10]
    with pytest.raises(FormatError):
        parse_build_vector("1:x")


def test_proto_errors_name_the_line():
    with pytest.raises(FormatError, match="p:2: .*<InputDim>"):
        init_from_proto("<Sigmoid> <InputDim> 3 <OutputDim> 3\n<Sigmoid> <OutputDim> 3\n", name="p")
    with pytest.raises(FormatError, match="unknown option"):
        init_from_proto("<Sigmoid> <InputDim> 3 <OutputDim> 3 <Bogus> 1\n")
    with pytest.raises(FormatError, match="<Lstm> is not an nnet1 component"):
        init_from_proto("<Lstm> <InputDim> 3 <OutputDim> 3\n")


@pytest.mark.parametrize("nonlin,marker", [("sigmoid", "<Sigmoid>"), ("tanh", "<Tanh>"), ("relu", "<ParametricRelu>")])
def test_make_proto(nonlin, marker):
    net = Network(init_from_proto(make_proto(440, 48, 2, 64, nonlin)))
    assert [c.marker for c in net.components] == ["<AffineTransform>", marker] * 2 + ["<AffineTransform>", "<Softmax>"]
    assert (net.input_dim, net.output_dim) == (440, 48)
    # first layer's weights are smaller by sqrt(1/12) (nnet1's --smaller-input-weights)
    expect = 0.1 * 35 * np.sqrt(2 / (440 + 64)) * np.sqrt(1 / 12)
    assert net.components[0].params["linearity"].std() == pytest.approx(expect, rel=0.05)
    linear = Network(init_from_proto(make_proto(440, 48, 0, 64)))
    assert [c.marker for c in linear.components] == ["<AffineTransform>", "<Softmax>"]
