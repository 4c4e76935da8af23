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


def test_prototypes_of_make_nnet_proto_options(tmp_path):
    """What utils/nnet/make_nnet_proto.py writes for --bottleneck-dim, --block-softmax-dims and
    --with-dropout, and <Copy> / <ParallelComponent> prototypes, initialise as nnet1 does."""
    text = """<NnetProto>
<AffineTransform> <InputDim> 12 <OutputDim> 32 <BiasMean> -2.0 <BiasRange> 4.0 <ParamStddev> 0.2 <MaxNorm> 0.0
<Sigmoid> <InputDim> 32 <OutputDim> 32
<Dropout> <InputDim> 32 <OutputDim> 32 <DropoutRate> 0.2
<LinearTransform> <InputDim> 32 <OutputDim> 400 <ParamStddev> 0.5 <LearnRateCoef> 0.1
<AffineTransform> <InputDim> 400 <OutputDim> 16 <BiasMean> 0.0 <BiasRange> 0.0 <ParamStddev> 0.1
<BlockSoftmax> <InputDim> 16 <OutputDim> 16 <BlockDims> 10:6
</NnetProto>"""
    comps = init_from_proto(text, seed=3)
    assert comps[2].rate == pytest.approx(0.2)
    lin = comps[3]
    assert lin.lr_coef == pytest.approx(0.1) and abs(lin.init["linearity"].std() - 0.5) < 0.02
    assert list(comps[5].block_dims) == [10, 6]
    y = Network(comps).forward(np.random.default_rng(0).normal(size=(5, 12)).astype(np.float32))
    assert np.allclose(y[:, :10].sum(1), 1.0, atol=1e-5) and np.allclose(y[:, 10:].sum(1), 1.0, atol=1e-5)
    (tmp_path / "n.proto").write_text("<AffineTransform> <InputDim> 2 <OutputDim> 3 <ParamStddev> 0.1\n")
    par = init_from_proto(f"""<Copy> <InputDim> 5 <OutputDim> 4 <BuildVector> 1:2,5,5 </BuildVector>
<ParallelComponent> <InputDim> 4 <OutputDim> 6 <NestedNnetProto> {tmp_path}/n.proto {tmp_path}/n.proto </NestedNnetProto>
""")
    assert list(par[0].indices) == [0, 1, 4, 4]
    x = np.arange(10, dtype=np.float32).reshape(2, 5)
    out = Network(par).forward(x)
    a, b = par[1].nested
    assert np.allclose(out, np.concatenate([a.forward(x[:, [0, 1]]), b.forward(x[:, [4, 4]])], axis=1), atol=1e-6)
    for bad, msg in (("<BlockSoftmax> <InputDim> 16 <OutputDim> 16 <BlockDims> 10:5", "sum to 16"),
                     ("<Copy> <InputDim> 3 <OutputDim> 2 <BuildVector> 1,4 </BuildVector>", "columns in 1..3"),
                     ("<Dropout> <InputDim> 3 <OutputDim> 3 <DropoutRate> 1.5", r"must be in \[0, 1\)"),
                     ("<ParallelComponent> <InputDim> 3 <OutputDim> 3", "needs <NestedNnetFilename>")):
        with pytest.raises(FormatError, match=msg):
            init_from_proto(bad)


def test_nnet_copy_sets_dropout_and_drops_components(tmp_path):
    import subprocess

    from nnetavg.io.nnet1 import read_nnet, write_nnet
    from nnetavg.nnet.components import AffineTransform, Dropout

    proto = """<AffineTransform> <InputDim> 4 <OutputDim> 6 <ParamStddev> 0.1
<Sigmoid> <InputDim> 6 <OutputDim> 6
<Dropout> <InputDim> 6 <OutputDim> 6 <DropoutRate> 0.2
<AffineTransform> <InputDim> 6 <OutputDim> 3 <ParamStddev> 0.1
<Softmax> <InputDim> 3 <OutputDim> 3
"""
    write_nnet(Network(init_from_proto(proto)), str(tmp_path / "a.nnet"))

    def copy(*opts):
        subprocess.run(["nnet-copy", *opts, str(tmp_path / "a.nnet"), str(tmp_path / "b.nnet")], check=True,
                       capture_output=True)
        return read_nnet(str(tmp_path / "b.nnet"))

    b = copy("--dropout-rate=0.5")
    assert [c.rate for c in b.components if isinstance(c, Dropout)] == [0.5]
    b = copy("--remove-first-components=2", "--remove-last-components=1")
    assert [type(c) for c in b.components] == [Dropout, AffineTransform] and b.input_dim == 6
    bad = subprocess.run(["nnet-copy", "--dropout-rate=1.5", str(tmp_path / "a.nnet"), str(tmp_path / "c.nnet")],
                         capture_output=True, text=True)
    assert bad.returncode == 1 and "--dropout-rate=1.5" in bad.stderr
