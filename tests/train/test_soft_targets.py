"""Kaldi's Xent on soft and weighted targets: the numbers against a direct computation, the
derivative against finite differences, and the weighted data path against the plain one."""

import numpy as np

from nnetavg.data.targets import SoftTargets, soft_xent_and_derivative
from nnetavg.io.posterior import Posterior
from nnetavg.train.trainer import xent_and_derivative


def softmax(z):
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def example(seed=0):
    rng = np.random.default_rng(seed)
    z = rng.standard_normal((6, 5))
    post = Posterior.from_pairs([[(0, 0.5), (3, 0.5)], [(1, 1.0)], [(2, 0.2), (4, 0.7), (2, 0.1)],
                                 [(4, 1.0)], [(0, 0.9), (1, 0.1)], [(3, 1.0)]])
    fw = np.array([1.0, 2.0, 0.5, 1.0, 0.0, 3.0], np.float32)
    return z, post, fw


def dense(post, c):
    P = np.zeros((len(post), c))
    for t, pairs in enumerate(post.pairs()):
        for i, w in pairs:
            P[t, i] += w
    return P


def test_loss_entropy_accuracy_match_a_direct_computation():
    z, post, fw = example()
    y = softmax(z)
    P = dense(post, 5)
    loss, correct, weight, entropy = soft_xent_and_derivative(y.copy(), SoftTargets.build(post, fw), False)
    assert np.isclose(loss, -(fw[:, None] * P * np.log(y + 1e-20)).sum(), rtol=1e-6)
    assert np.isclose(entropy, -(fw[:, None] * P * np.log(P + 1e-20)).sum(), rtol=1e-5)
    assert weight == fw.sum()
    assert np.isclose(correct, (fw * (y.argmax(1) == P.argmax(1))).sum())
    # AvgLoss is 0 when the model outputs exactly the targets
    P_rows = P / P.sum(1, keepdims=True)
    l2, _, w2, e2 = soft_xent_and_derivative(P_rows.copy(), SoftTargets.build(post), False)
    assert abs(l2 - e2) < 1e-5 * w2


def test_derivative_is_the_gradient_of_the_loss_wrt_the_softmax_input():
    z, post, fw = example(1)
    t = SoftTargets.build(post, fw)
    d = softmax(z)
    soft_xent_and_derivative(d, t, True)
    num = np.zeros_like(z)
    h = 1e-6
    for i in range(z.shape[0]):
        for j in range(z.shape[1]):
            zp, zm = z.copy(), z.copy()
            zp[i, j] += h
            zm[i, j] -= h
            num[i, j] = (soft_xent_and_derivative(softmax(zp), t, False)[0]
                         - soft_xent_and_derivative(softmax(zm), t, False)[0]) / (2 * h)
    np.testing.assert_allclose(d, num, atol=1e-5)   # targets summing to 1: w (y - P) is the exact gradient


def test_one_hot_soft_targets_equal_the_alignment_path():
    z, _, _ = example(2)
    ali = np.array([0, 1, 2, 3, 4, 0], np.int32)
    y1, y2 = softmax(z), softmax(z)
    loss1, correct1 = xent_and_derivative(y1, ali)
    loss2, correct2, weight, entropy = soft_xent_and_derivative(y2, SoftTargets.build(ali))
    assert np.isclose(loss1, loss2) and correct1 == correct2 and weight == 6 and entropy == 0
    np.testing.assert_allclose(y1, y2, atol=1e-7)


def test_soft_targets_concatenate_and_index_like_arrays():
    _, post, fw = example()
    a = SoftTargets.build(post, fw)
    b = SoftTargets.concat([a, np.array([2, 2], np.int32)])
    assert len(b) == 8 and b.ids.shape[1] == a.ids.shape[1]
    assert b.best[-2:].tolist() == [2, 2] and b.frame_weight[-2:].tolist() == [1.0, 1.0]
    perm = np.array([7, 0, 3])
    assert b[perm].best.tolist() == [2, a.best[0], a.best[3]]
