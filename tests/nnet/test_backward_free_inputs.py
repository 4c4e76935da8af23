"""Network.backward with free_inputs: an update waits for the parameter-free component below it
and may then overwrite its input; the same training step either way."""

import numpy as np
import pytest

from nnetavg.nnet.components import Component
from nnetavg.nnet.network import Network
from nnetavg.nnet.proto import init_from_proto, make_proto
from nnetavg.train.optim import NGSGD, SGD
from nnetavg.train.trainer import Trainer, TrainOptions


def _net(hidden=2):
    return Network(init_from_proto(make_proto(5, 3, hidden, 7), seed=4), dtype=np.float64)


def _record(net, free_inputs, need_input_derivative=False):
    """The order of backward and update calls, with each update's x_free."""
    events = []
    for i, comp in enumerate(net.components):
        real = comp.backward
        comp.backward = lambda x, y, dy, _i=i, _r=real: events.append(("backward", _i)) or _r(x, y, dy)
    acts = net.forward_train(np.random.default_rng(0).standard_normal((4, 5)))
    net.backward(acts, acts[-1].copy(), lambda i, c, x, y, dy, *free: events.append(("update", i) + tuple(free)),
                 need_input_derivative=need_input_derivative, free_inputs=free_inputs)
    return events


def test_updates_wait_for_the_component_below_and_are_told_x_is_free():
    # affine 0, sigmoid 1, affine 2, sigmoid 3, affine 4, softmax 5
    assert _record(_net(), True) == [
        ("backward", 5), ("backward", 4), ("backward", 3), ("update", 4, True),
        ("backward", 2), ("backward", 1), ("update", 2, True), ("update", 0, False)]   # the input is never free
    assert _record(_net(), True, need_input_derivative=True)[-2:] == [("backward", 0), ("update", 0, False)]
    # without free_inputs: nnet1's order and the five-argument callback
    assert _record(_net(), False) == [
        ("backward", 5), ("backward", 4), ("update", 4), ("backward", 3), ("backward", 2), ("update", 2),
        ("backward", 1), ("update", 0)]


class _Identity(Component):
    """Returns its input itself (a view): what it hands on is not free."""
    marker = "<Identity>"

    def __init__(self, dim):
        super().__init__(dim, dim)

    def forward(self, x):
        return x

    def backward(self, x, y, dy):
        return dy


def test_not_free_below_a_component_with_parameters_or_one_returning_a_view():
    net = _net(1)                       # affine 0, sigmoid 1, affine 2, softmax 3
    comps = net.components
    view = Network([comps[0], _Identity(7), comps[2], comps[3]], dtype=np.float64)
    assert ("update", 2, False) in _record(view, True)
    prelu = Network(init_from_proto(make_proto(5, 3, 1, 7, nonlinearity="relu"), seed=4), dtype=np.float64)
    kinds = [type(c).__name__ for c in prelu.components]
    events = _record(prelu, True)
    for i, kind in enumerate(kinds):
        if kind == "AffineTransform" and i > 0:
            below_has_params = prelu.components[i - 1].updatable
            assert (("update", i, False) in events) == below_has_params
            assert (("update", i, True) in events) == (not below_has_params)


@pytest.mark.parametrize("opt", [SGD, NGSGD])
def test_training_step_the_same_with_inputs_overwritten_or_copied(opt, monkeypatch):
    """NG-SGD preconditions a free input in place; the parameters after a few steps equal those
    of a run where every input is copied first (x_free forced off)."""
    rng = np.random.default_rng(5)
    x, t = rng.standard_normal((32, 5)), rng.integers(0, 3, 32)
    nets = [_net(), _net()]
    trainers = [Trainer(n, opt(n), TrainOptions(learn_rate=0.05, minibatch_size=32)) for n in nets]
    real = trainers[1].optimizer.update
    seen = []
    trainers[1].optimizer.update = lambda *a, x_free=False: seen.append(x_free) or real(*a, x_free=False)
    for _ in range(12):
        for tr in trainers:
            tr.step(x.copy(), t)
    assert any(seen)   # the trainer gave inputs up; this run copied them all the same
    np.testing.assert_allclose(nets[0].params, nets[1].params, rtol=1e-12, atol=1e-14)
    assert not np.array_equal(nets[0].params, _net().params)


def test_ngsgd_copies_only_inputs_it_may_not_overwrite():
    """Through the trainer only the network's input is copied (the other layers' inputs are
    preconditioned in place); a direct update call (no x_free) leaves its input as it was."""
    rng = np.random.default_rng(6)
    x, t = rng.standard_normal((16, 5)), rng.integers(0, 3, 16)
    net = _net()
    opt = NGSGD(net)
    Trainer(net, opt, TrainOptions(learn_rate=0.05, minibatch_size=16)).step(x, t)
    assert sorted(opt._xe) == [(0, 16)]
    acts = net.forward_train(x)
    x2 = acts[2].copy()
    opt.update(2, net.components[2], acts[2], acts[3], acts[3] - 0.5, 0.05)
    np.testing.assert_array_equal(acts[2], x2)
    assert sorted(opt._xe) == [(0, 16), (2, 16)]
