"""The training loop: nnet1's update equations on one minibatch, lower CV loss after training,
reproducibility from seeds, and no model after a NaN objective."""

import numpy as np
import pytest

from nnetavg.backend import to_numpy
from nnetavg.errors import ObjectiveError
from nnetavg.nnet.components import AffineTransform, Sigmoid, Softmax
from nnetavg.nnet.network import Network
from nnetavg.nnet.proto import init_from_proto, make_proto
from nnetavg.train.optim import SGD, SGDOptions
from nnetavg.train.schedules import effective_to_job_rate, exponential_rate
from nnetavg.train.trainer import Trainer, TrainOptions, evaluate
from tests.conftest import make_labelled_data


def tiny_net(xp, rng, max_norm=0.0):
    a1 = AffineTransform(3, 4, max_norm=max_norm)
    a1.init = {"linearity": rng.standard_normal((4, 3)), "bias": rng.standard_normal(4)}
    a2 = AffineTransform(4, 2, bias_learn_rate_coef=0.1)
    a2.init = {"linearity": rng.standard_normal((2, 4)), "bias": rng.standard_normal(2)}
    return Network([a1, Sigmoid(4, 4), a2, Softmax(2, 2)], xp=xp, dtype=np.float64)


def reference_step(params, x, t, lr, mom, l2, corr, max_norm):
    """nnet1's AffineTransform::Update written out with plain numpy, for two layers."""
    W1, b1, W2, b2 = [p.copy() for p in params]
    h = 1 / (1 + np.exp(-(x @ W1.T + b1)))
    z = h @ W2.T + b2
    y = np.exp(z - z.max(1, keepdims=True))
    y /= y.sum(1, keepdims=True)
    d2 = y.copy()
    d2[np.arange(len(t)), t] -= 1
    d1 = (d2 @ W2) * h * (1 - h)
    n = len(t)
    out = []
    for W, b, d, inp, blr in ((W2, b2, d2, h, 0.1), (W1, b1, d1, x, 1.0)):
        key = len(out)
        corr[key][0] = mom * corr[key][0] + d.T @ inp
        corr[key][1] = mom * corr[key][1] + d.sum(0)
        W = W - lr * l2 * n * W
        W = W - lr * corr[key][0]
        b = b - lr * blr * corr[key][1]
        if key == 1 and max_norm:
            norms = np.linalg.norm(W, axis=1)
            W = W * np.minimum(1, max_norm / norms)[:, None]
        out.append((W, b))
    (W2n, b2n), (W1n, b1n) = out
    return [W1n, b1n, W2n, b2n]


@pytest.mark.parametrize("mom,l2,max_norm", [(0.0, 0.0, 0.0), (0.5, 0.01, 0.0), (0.9, 0.0, 1.2)])
def test_update_equations_match_nnet1(xp, mom, l2, max_norm):
    rng = np.random.default_rng(0)
    net = tiny_net(xp, rng, max_norm)
    x = rng.standard_normal((6, 3))
    t = rng.integers(0, 2, 6).astype(np.int32)
    tr = Trainer(net, SGD(net, SGDOptions(momentum=mom, l2_penalty=l2)), TrainOptions(learn_rate=0.1))
    params = [to_numpy(net.components[i].params[k]).copy() for i, k in ((0, "linearity"), (0, "bias"),
                                                                        (2, "linearity"), (2, "bias"))]
    corr = [[0, 0], [0, 0]]
    for _ in range(3):  # several steps, so momentum matters
        tr.step(x, t)
        params = reference_step(params, x, t, 0.1, mom, l2, corr, max_norm)
    got = [to_numpy(net.components[i].params[k]) for i, k in ((0, "linearity"), (0, "bias"), (2, "linearity"), (2, "bias"))]
    for g, e in zip(got, params):
        np.testing.assert_allclose(g, e, rtol=1e-10, atol=1e-12)


def test_training_lowers_cv_loss_and_is_reproducible(tmp_path):
    tr_feats, tr_ali = make_labelled_data(tmp_path, num_utts=60, seed=1, name="tr")
    cv_feats, cv_ali = make_labelled_data(tmp_path, num_utts=15, seed=2, name="cv")

    def train(seed):
        net = Network(init_from_proto(make_proto(6, 5, 1, 32), seed=3))
        before = evaluate(net, f"scp:{cv_feats}", f"ark:{cv_ali}", None)
        trainer = Trainer(net, SGD(net), TrainOptions(learn_rate=0.02, minibatch_size=32, randomizer_size=500,
                                                      randomizer_seed=seed))
        for _ in range(3):
            stats = trainer.train_pass(f"scp:{tr_feats}", f"ark:{tr_ali}", None)
        return net, before, stats, evaluate(net, f"scp:{cv_feats}", f"ark:{cv_ali}", None)

    net, before, stats, after = train(7)
    assert stats.frames > 3000 and stats.minibatches > 0
    assert after.cross_entropy < 0.5 * before.cross_entropy
    assert after.frame_accuracy > 0.8 > before.frame_accuracy
    net2, *_ = train(7)
    assert np.array_equal(net.params, net2.params)
    net3, *_ = train(8)
    assert not np.array_equal(net.params, net3.params)


def test_nan_objective_stops_training(tmp_path):
    feats, ali = make_labelled_data(tmp_path, num_utts=20)
    net = Network(init_from_proto(make_proto(6, 5, 1, 16)))
    net.params[5] = np.nan  # what a diverged update leaves behind
    with pytest.raises(ObjectiveError, match="minibatch 0.*lower --learn-rate"):
        Trainer(net, SGD(net), TrainOptions(minibatch_size=16)).train_pass(f"scp:{feats}", f"ark:{ali}", None)


def test_schedules():
    assert exponential_rate(0.01, 0.001, 0, 10) == 0.01
    assert exponential_rate(0.01, 0.001, 9, 10) == 0.001
    assert exponential_rate(0.01, 0.001, 5, 10) == pytest.approx(0.01 * 0.1 ** 0.5)
    assert exponential_rate(0.01, 0.001, 0, 1) == 0.001
    assert effective_to_job_rate(0.002, 4) == 0.008 and effective_to_job_rate(0.002, 4, False) == 0.002
    with pytest.raises(ValueError):
        exponential_rate(0.01, 0.001, 10, 10)
