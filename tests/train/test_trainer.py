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


# ---------------------------------------------------------------------------- max-change
def _component_norms(net, before):
    d = to_numpy(net.params) - before
    return [float(np.linalg.norm(d[a:b])) for _, a, b in net.param_ranges()]


@pytest.mark.parametrize("opt", ["sgd", "momentum", "ngsgd"])
def test_max_change_scales_each_component_change_to_its_limit(xp, opt):
    """Per minibatch, every component's change is the unlimited change scaled by
    min(1, limit / norm) (the output layer's limit is twice the others'), whatever the optimizer."""
    from nnetavg.train.optim import NGSGD
    rng = np.random.default_rng(3)
    x = rng.standard_normal((16, 3)) * 3
    t = rng.integers(0, 2, 16).astype(np.int32)

    def make(limit):
        net = tiny_net(xp, np.random.default_rng(1))
        sgd = SGDOptions(momentum=0.5 if opt == "momentum" else 0.0)
        o = NGSGD(net, sgd) if opt == "ngsgd" else SGD(net, sgd)
        return net, Trainer(net, o, TrainOptions(learn_rate=0.5, max_change=limit))

    free, tf = make(0.0)
    lim, tl = make(0.05)
    for step in range(3):
        b_free, b_lim = to_numpy(free.params).copy(), to_numpy(lim.params).copy()
        np.testing.assert_allclose(b_free, b_lim, rtol=0, atol=0) if step == 0 else None
        tf.step(x, t)
        tl.step(x, t)
        n_free, n_lim = _component_norms(free, b_free), _component_norms(lim, b_lim)
        limits = [0.05, 0.1]  # hidden affine, output affine (2x)
        assert all(n <= L * (1 + 1e-9) for n, L in zip(n_lim, limits)), (n_lim, limits)
        if step == 0:   # same start: the limited change is the free change, scaled per component
            d_free, d_lim = to_numpy(free.params) - b_free, to_numpy(lim.params) - b_lim
            for (_, a, b), nf, L in zip(free.param_ranges(), n_free, limits):
                np.testing.assert_allclose(d_lim[a:b], d_free[a:b] * min(1.0, L / nf), rtol=1e-9, atol=1e-12)
            assert max(nf / L for nf, L in zip(n_free, limits)) > 1  # the limit really acted
        lim.params[...] = xp.asarray(to_numpy(free.params))  # continue from the same point


def test_max_param_change_limits_the_whole_model_and_large_limits_change_nothing(xp):
    rng = np.random.default_rng(4)
    x = rng.standard_normal((16, 3)) * 3
    t = rng.integers(0, 2, 16).astype(np.int32)
    nets = {}
    for name, mc, mpc in (("free", 0.0, 0.0), ("huge", 1e9, 1e9), ("model", 0.0, 0.02)):
        net = tiny_net(xp, np.random.default_rng(1))
        tr = Trainer(net, SGD(net), TrainOptions(learn_rate=0.5, max_change=mc, max_param_change=mpc))
        before = to_numpy(net.params).copy()
        tr.step(x, t)
        nets[name] = (to_numpy(net.params) - before)
    np.testing.assert_array_equal(nets["huge"], nets["free"])
    full = np.linalg.norm(nets["free"])
    assert full > 0.02
    assert np.isclose(np.linalg.norm(nets["model"]), 0.02, rtol=1e-9)
    np.testing.assert_allclose(nets["model"], nets["free"] * (0.02 / full), rtol=1e-9)


def test_max_change_keeps_a_diverging_rate_training(tmp_path):
    """Plain SGD at a rate far too high diverges (NaN objective, or worse than chance); with
    max-change the same run trains."""
    feats, ali = make_labelled_data(tmp_path, num_utts=40, feat_dim=6, num_pdfs=5, seed=2)
    results = {}
    for limit in (0.0, 0.5):
        net = Network(init_from_proto(make_proto(6, 5, 2, 32), seed=5))
        tr = Trainer(net, SGD(net), TrainOptions(learn_rate=2.0, minibatch_size=32, randomizer_size=512,
                                                 max_change=limit))
        try:
            results[limit] = tr.train_pass(f"scp:{feats}", f"ark:{ali}", None).cross_entropy
        except ObjectiveError:
            results[limit] = float("inf")
    assert not results[0.0] < np.log(5)      # diverged or no better than chance
    assert results[0.5] < 0.5 * np.log(5)    # trains
    with pytest.raises(Exception, match="max-change"):
        net = tiny_net(np, np.random.default_rng(0))
        Trainer(net, SGD(net), TrainOptions(max_change=-1))


@pytest.mark.parametrize("optimizer", ["sgd", "ngsgd"])
def test_non_finite_update_is_skipped_counted_and_logged(optimizer, caplog):
    """A minibatch whose derivatives turn NaN below the output layer (finite objective): the
    components from there down keep their parameters, the output layer is updated, the skip is
    counted and logged, and training goes on (as nnet3 skips a non-finite update)."""
    from nnetavg.train.optim import NGSGD
    net = Network(init_from_proto(make_proto(6, 5, 2, 16), seed=3), dtype=np.float64)
    opt = SGD(net) if optimizer == "sgd" else NGSGD(net)
    tr = Trainer(net, opt, TrainOptions(learn_rate=0.01, minibatch_size=8))
    rng = np.random.default_rng(0)
    x, t = rng.standard_normal((8, 6)), rng.integers(0, 5, 8).astype(np.int32)
    tr.step(x, t)                                      # NG-SGD's estimates start on a clean minibatch
    sig = [c for c in net.components if isinstance(c, Sigmoid)][-1]
    top = [i for i, c in enumerate(net.components) if c.updatable][-1]
    below = [i for i, c in enumerate(net.components) if c.updatable and i < net.components.index(sig)]
    views_before = [{k: to_numpy(v).copy() for k, v in d.items()} for d in net.views(net.params)]
    orig = sig.backward
    sig.backward = lambda xx, yy, dy: orig(xx, yy, dy) * np.nan    # NaN derivatives below the top layer
    with caplog.at_level("WARNING"):
        loss, _ = tr.step(x, t)
    sig.backward = orig
    assert np.isfinite(loss) and tr.nonfinite_skipped == 1
    assert "update skipped for it and the components below (1 skipped so far)" in caplog.text
    assert np.all(np.isfinite(to_numpy(net.params)))
    after = [{k: to_numpy(v) for k, v in d.items()} for d in net.views(net.params)]
    for i in below:
        assert all(np.array_equal(after[i][k], views_before[i][k]) for k in after[i]), i    # not updated
    assert not all(np.array_equal(after[top][k], views_before[top][k]) for k in after[top])   # updated
    tr.step(x, t)                                      # training goes on
    assert tr.nonfinite_skipped == 1 and np.all(np.isfinite(to_numpy(net.params)))


def test_change_limiter_on_known_changes(caplog):
    """ChangeLimiter alone, on changes set by hand: per-component limits (twice for the last),
    then the model-wide limit on the scaled changes; counters, summary and log lines; a NaN
    change is left to the objective check."""
    import logging

    from nnetavg.train.trainer import ChangeLimiter

    net = Network(init_from_proto(make_proto(3, 2, 2, 4), seed=1), dtype=np.float64)
    ranges = net.param_ranges()
    assert len(ranges) == 3
    lim = ChangeLimiter(net, max_change=1.0, max_param_change=2.5)
    norms = [0.5, 3.0, 1.5]                          # the last component's limit is 2.0: not over
    rng = np.random.default_rng(0)
    deltas = np.zeros_like(net.params)
    for (_, a, b), nrm in zip(ranges, norms):
        d = rng.standard_normal(b - a)
        deltas[a:b] = d / np.linalg.norm(d) * nrm
    with caplog.at_level(logging.INFO, logger="nnetavg.train.trainer"):
        for m in range(1, 8):
            before = net.params.copy()
            lim.before()
            net.params += deltas
            lim.after(m)
            change = net.params - before
            got = [np.linalg.norm(change[a:b]) for _, a, b in ranges]
            # per component: 0.5, 1.0 (scaled from 3.0), 1.5; total sqrt(0.25 + 1 + 2.25) = 1.87 < 2.5
            np.testing.assert_allclose(got, [0.5, 1.0, 1.5], rtol=1e-12)
            np.testing.assert_allclose(change[ranges[1][1]:ranges[1][2]], deltas[ranges[1][1]:ranges[1][2]] / 3.0,
                                       rtol=1e-12)
    assert lim.limited == {ranges[0][0]: 0, ranges[1][0]: 7, ranges[2][0]: 0} and lim.model_limited == 0
    msgs = [r.getMessage() for r in caplog.records]
    assert msgs == [f"max-change: minibatch {m}: change norms 0.5 3 1.5 scaled by 1 0.333 1" for m in range(1, 6)]
    assert lim.summary(7) == (f"limited-fraction-model=0 component-{ranges[0][0] + 1}=0 "
                              f"component-{ranges[1][0] + 1}=1 component-{ranges[2][0] + 1}=0")
    assert f"component-{ranges[1][0] + 1}=0.5833 " in lim.summary(12)          # 7 / 12, four decimals
    # a change under every limit: nothing scaled, nothing counted, nothing logged
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="nnetavg.train.trainer"):
        lim.before()
        net.params += deltas * 0.1
        lim.after(8)
    assert not caplog.records and lim.limited[ranges[1][0]] == 7
    # the model-wide limit applies to the changes after the per-component scaling
    tight = ChangeLimiter(net, max_change=1.0, max_param_change=1.0)
    before = net.params.copy()
    tight.before()
    net.params += deltas
    tight.after(1)
    total = np.sqrt(0.25 + 1 + 2.25)
    got = [np.linalg.norm((net.params - before)[a:b]) for _, a, b in ranges]
    np.testing.assert_allclose(got, np.array([0.5, 1.0, 1.5]) / total, rtol=1e-12)
    assert tight.model_limited == 1 and all(v == 1 for v in tight.limited.values())
    tight.before()
    net.params += deltas
    tight.after(2)
    assert tight.model_limited == 2
    assert tight.summary(3).startswith("limited-fraction-model=0.6667 ")
    # NaN in the change: parameters left as they are (the next objective check stops the pass)
    nan = ChangeLimiter(net, max_change=1.0, max_param_change=0.0)
    nan.before()
    net.params[0] = np.nan
    snapshot = net.params.copy()
    nan.after(1)
    assert np.array_equal(net.params[1:], snapshot[1:]) and all(v == 0 for v in nan.limited.values())
