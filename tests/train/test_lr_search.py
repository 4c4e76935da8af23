"""The per-chunk learning-rate search: it shrinks a rate that is too large until training on the
sample beats the baseline, and keeps a good one."""

import numpy as np

from nnetavg.nnet.network import Network
from nnetavg.nnet.proto import init_from_proto, make_proto
from nnetavg.train.lr_search import SHRINK, search_learning_rate


def sample(seed=0, n=2048):
    rng = np.random.default_rng(seed)
    centers = rng.standard_normal((4, 6)) * 2
    t = rng.integers(0, 4, n).astype(np.int32)
    return (centers[t] + rng.standard_normal((n, 6))).astype(np.float32), t


def test_too_large_a_rate_is_shrunk_until_it_helps():
    x, t = sample()
    net = Network(init_from_proto(make_proto(6, 4, 1, 16), seed=1))
    before = net.params.copy()
    r = search_learning_rate(net, x, t, start_lr=50.0, minibatch=64)
    assert r.tries > 1 and r.criterion < r.baseline
    assert np.isclose(r.learn_rate, 50.0 * SHRINK ** (r.tries - 1))
    assert np.array_equal(net.params, before)  # the search trains copies only
    good = search_learning_rate(net, x, t, start_lr=0.01, minibatch=64)
    assert good.tries == 1 and good.learn_rate == 0.01 and good.criterion < good.baseline
