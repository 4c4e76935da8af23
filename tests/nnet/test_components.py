"""Finite-difference checks of every component's input derivative and parameter gradients, and
of softmax + cross-entropy, in float64 on numpy (and CuPy when a GPU is usable)."""

import numpy as np
import pytest

from nnetavg.backend import to_numpy
from nnetavg.nnet.components import (AddShift, AffineTransform, ParametricRelu, Rescale, Sigmoid, Softmax, Splice,
                                     Tanh)
from nnetavg.nnet.network import Network
from nnetavg.train.trainer import xent_and_derivative


def make(kind, rng):
    if kind == "affine":
        c = AffineTransform(5, 4)
        c.init = {"linearity": rng.standard_normal((4, 5)), "bias": rng.standard_normal(4)}
    elif kind == "sigmoid":
        c = Sigmoid(5, 5)
    elif kind == "tanh":
        c = Tanh(5, 5)
    elif kind == "prelu":
        c = ParametricRelu(5, 5, 1.0, 1.0)
        c.init = {"alpha": rng.uniform(0.5, 2, 5), "beta": rng.uniform(-0.5, 0.5, 5)}
    elif kind == "splice":
        c = Splice(5, 15, [-2, 0, 3])
    elif kind == "addshift":
        c = AddShift(5, 5, 1.0)
        c.init = {"shift": rng.standard_normal(5)}
    elif kind == "rescale":
        c = Rescale(5, 5, 1.0)
        c.init = {"scale": rng.standard_normal(5)}
    return c


KINDS = ["affine", "sigmoid", "tanh", "prelu", "splice", "addshift", "rescale"]


@pytest.mark.parametrize("kind", KINDS)
def test_gradients_match_finite_differences(xp, kind):
    rng = np.random.default_rng(0)
    comp = make(kind, rng)
    net = Network([comp], xp=xp, dtype=np.float64)
    x = xp.asarray(rng.standard_normal((7, comp.input_dim)))
    if kind == "prelu":  # keep finite differences away from the kink at 0
        x = x + xp.sign(x) * 0.2
    w = xp.asarray(rng.standard_normal((7, comp.output_dim)))  # objective: sum(w * y)

    def objective():
        return float((comp.forward(x) * w).sum())

    y = comp.forward(x)
    dx = comp.backward(x, y, w)
    eps = 1e-6
    num = np.zeros(x.shape)
    xh = to_numpy(x)
    for idx in np.ndindex(*x.shape):
        for sgn in (1, -1):
            xx = xh.copy()
            xx[idx] += sgn * eps
            num[idx] += sgn * float((comp.forward(xp.asarray(xx)) * w).sum()) / (2 * eps)
    np.testing.assert_allclose(to_numpy(dx), num, rtol=1e-5, atol=1e-7)
    grads = comp.param_gradients(x, y, w)
    assert set(grads) == {n for n, _ in comp.param_specs()}
    for name, g in grads.items():
        p = comp.params[name]
        ph = to_numpy(p).copy()
        numg = np.zeros(ph.shape)
        for idx in np.ndindex(*ph.shape):
            for sgn in (1, -1):
                q = ph.copy()
                q[idx] += sgn * eps
                p[...] = xp.asarray(q)
                numg[idx] += sgn * objective() / (2 * eps)
        p[...] = xp.asarray(ph)
        np.testing.assert_allclose(to_numpy(g), numg, rtol=1e-5, atol=1e-7, err_msg=name)
    assert net.num_params == sum(int(np.prod(s)) for _, s in comp.param_specs())


def test_softmax_cross_entropy_derivative(xp):
    rng = np.random.default_rng(1)
    z = rng.standard_normal((6, 4)) * 3
    t = rng.integers(0, 4, 6)
    sm = Softmax(4, 4)

    def loss(zz):
        y = sm.forward(xp.asarray(zz))
        return xent_and_derivative(y, xp.asarray(t), compute_derivative=False)[0]

    y = sm.forward(xp.asarray(z))
    l0, correct = xent_and_derivative(y, xp.asarray(t))
    d = to_numpy(sm.backward(None, None, y))  # y now holds y - onehot
    eps = 1e-6
    num = np.zeros_like(z)
    for idx in np.ndindex(*z.shape):
        zp, zm = z.copy(), z.copy()
        zp[idx] += eps
        zm[idx] -= eps
        num[idx] = (loss(zp) - loss(zm)) / (2 * eps)
    np.testing.assert_allclose(d, num, rtol=1e-5, atol=1e-7)
    p = np.exp(z - z.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    assert l0 == pytest.approx(-np.log(p[np.arange(6), t] + 1e-20).sum())
    assert correct == int((p.argmax(1) == t).sum())


def test_sigmoid_and_softmax_are_stable(xp):
    x = xp.asarray(np.array([[-1000.0, 0.0, 1000.0]], np.float32))
    np.testing.assert_allclose(to_numpy(Sigmoid(3, 3).forward(x)), [[0, 0.5, 1]], atol=1e-7)
    y = to_numpy(Softmax(3, 3).forward(x))
    assert np.all(np.isfinite(y)) and y[0, 2] == pytest.approx(1.0)


def test_splice_layout_and_edges():
    x = np.arange(4, dtype=np.float32)[:, None] * np.array([[1, 10]], np.float32)  # T=4, F=2
    y = Splice(2, 6, [-1, 0, 1]).forward(x)
    np.testing.assert_array_equal(y[0], [0, 0, 0, 0, 1, 10])   # frame -1 clamped to frame 0
    np.testing.assert_array_equal(y[3], [2, 20, 3, 30, 3, 30])  # frame 4 clamped to frame 3


def test_network_views_share_the_flat_buffer():
    rng = np.random.default_rng(2)
    a, b = make("affine", rng), make("addshift", rng)
    b = AddShift(4, 4, 1.0)
    net = Network([a, Sigmoid(4, 4), b])
    net.params[:] = 0
    assert float(np.abs(a.params["linearity"]).sum()) == 0
    a.params["bias"][1] = 7
    assert 7 in net.params
    flat = np.arange(net.num_params, dtype=np.float32)
    v = net.views(flat)
    assert v[0]["linearity"].shape == (4, 5) and v[2]["shift"][0] == 24
