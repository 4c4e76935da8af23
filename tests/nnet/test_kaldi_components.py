"""<LinearTransform>, <Copy>, <Dropout>, <BlockSoftmax>, <ParallelComponent>: Kaldi's file data
(text and binary round trips), their maths against hand computation and finite differences."""

import numpy as np
import pytest

from nnetavg.errors import FormatError
from nnetavg.io.nnet1 import read_nnet, write_nnet
from nnetavg.nnet.components import Dropout

MODEL = """<Nnet>
<LinearTransform> 3 4
<LearnRateCoef> 0
 [
  1 0 0 0
  0 1 0 0
  0 0 1 1 ]
<!EndOfComponent>
<Copy> 4 3
[ 3 2 1 1 ]
<!EndOfComponent>
<Dropout> 4 4
<DropoutRate> 0.2
<!EndOfComponent>
<ParallelComponent> 5 4
<NestedNnetCount> 2
<NestedNnet> 1
<Nnet>
<AffineTransform> 2 2
<LearnRateCoef> 1 <BiasLearnRateCoef> 1 <MaxNorm> 0
 [
  1 2
  3 4 ]
 [ 0 1 ]
<!EndOfComponent>
</Nnet>
<NestedNnet> 2
<Nnet>
<Copy> 3 2
[ 1 2 2 ]
<!EndOfComponent>
</Nnet>
</ParallelComponent>
<!EndOfComponent>
<BlockSoftmax> 5 5
[ 2 3 ]
<!EndOfComponent>
</Nnet>
"""


def softmax(z):
    e = np.exp(z - z.max())
    return e / e.sum()


@pytest.fixture()
def model(tmp_path):
    (tmp_path / "m.nnet").write_text(MODEL)
    return read_nnet(str(tmp_path / "m.nnet"))


def test_forward_matches_hand_computation(model):
    x = np.array([[0, 1, 2, 3], [1, -1, 0.5, 2]], np.float32)
    for row, y in zip(x, model.forward(x)):
        lin = np.array([row[0], row[1], row[2] + row[3]])            # <LinearTransform>
        cp = lin[[2, 1, 0, 0]]                                        # <Copy> 1-based [3 2 1 1]
        nested1 = np.array([[1, 2], [3, 4]]) @ cp[:2] + [0, 1]        # first nested <AffineTransform>
        nested2 = cp[2:][[0, 1, 1]]                                   # second nested <Copy> [1 2 2]
        z = np.concatenate([nested1, nested2])
        np.testing.assert_allclose(y, np.concatenate([softmax(z[:2]), softmax(z[2:])]), rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("binary", [True, False])
def test_round_trip(model, tmp_path, binary):
    x = np.random.default_rng(0).standard_normal((5, 4)).astype(np.float32)
    write_nnet(model, str(tmp_path / "b.nnet"), binary=binary)
    again = read_nnet(str(tmp_path / "b.nnet"))
    assert [c.topology() for c in again.components] == [c.topology() for c in model.components]
    np.testing.assert_array_equal(again.forward(x), model.forward(x))
    assert again.components[2].rate == pytest.approx(0.2)


def test_backward_is_the_gradient(model):
    """Input derivative through LinearTransform, Copy and ParallelComponent (Dropout at rate 0)
    against finite differences of a linear function of the pre-softmax output."""
    model.components[2].rate = 0.0
    body = model.components[:4]
    x = np.random.default_rng(1).standard_normal((3, 4)).astype(np.float64)
    c = np.random.default_rng(2).standard_normal((3, 5))

    def f(v):
        for comp in body:
            v = comp.forward(v)
        return float((c * v).sum())

    acts = [x]
    for comp in body:
        acts.append(comp.forward_train(acts[-1]))
    d = c
    for i in range(len(body) - 1, -1, -1):
        d = body[i].backward(acts[i], acts[i + 1], d)
    num = np.zeros_like(x)
    for i in range(3):
        for j in range(4):
            e = np.zeros_like(x)
            e[i, j] = 1e-6
            num[i, j] = (f(x + e) - f(x - e)) / 2e-6
    np.testing.assert_allclose(d, num, rtol=1e-5, atol=1e-6)


def test_dropout_keeps_the_expectation_and_masks_the_gradient():
    drop = Dropout(1000, 1000, rate=0.3)
    x = np.ones((200, 1000), np.float32)
    assert drop.forward(x) is x                          # forwarding (nnet-forward, CV): the identity
    y = drop.forward_train(x)
    assert abs(float((y == 0).mean()) - 0.3) < 0.01 and np.isclose(float(y.mean()), 1.0, atol=0.01)
    np.testing.assert_array_equal(drop.backward(x, y, np.ones_like(x)), y)


def test_bad_component_data_is_a_format_error(tmp_path):
    bad = {"copy": "<Nnet>\n<Copy> 2 3\n[ 1 4 ]\n<!EndOfComponent>\n</Nnet>\n",
           "blocks": "<Nnet>\n<BlockSoftmax> 5 5\n[ 2 2 ]\n<!EndOfComponent>\n</Nnet>\n",
           "parallel": "<Nnet>\n<ParallelComponent> 3 4\n<NestedNnetCount> 1\n<NestedNnet> 1\n<Nnet>\n<Copy> 3 2\n"
                       "[ 1 2 2 ]\n<!EndOfComponent>\n</Nnet>\n</ParallelComponent>\n<!EndOfComponent>\n</Nnet>\n",
           "dropout": "<Nnet>\n<Dropout> 2 2\n<DropoutRate> 1.5\n<!EndOfComponent>\n</Nnet>\n"}
    for name, text in bad.items():
        (tmp_path / name).write_text(text)
        with pytest.raises(FormatError):
            read_nnet(str(tmp_path / name))
