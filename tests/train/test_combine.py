"""Combination of the last models (nnet-combine): nnet3's best average of the last n models must
beat the last model on unseen frames when the models scatter around a good one, and must keep the
last model (bitwise) when the models approach it; nnet2's BFGS weights: the held-out gradient
against finite differences, positive weights summing to one, the combination chosen and better
than the average; the command splits the table into frames to choose on and unseen frames."""

import re

import numpy as np
import pytest

from nnetavg.io.nnet1 import read_nnet
from nnetavg.train.combine import _HeldOut, average_last, combine
from nnetavg.train.trainer import held_out_scores
from nnetavg.io.tables import INT_VECTOR, SequentialReader
from tests.conftest import make_labelled_data, run_cmd


def models_and_data(tmp_path, dtype=np.float64):
    run_cmd(["nnet-init", "--input-dim=6", "--output-dim=5", "--hidden-layers=1", "--hidden-dim=8", f"{tmp_path}/0.nnet"])
    net = read_nnet(f"{tmp_path}/0.nnet", dtype=dtype)
    rng = np.random.default_rng(0)
    centers = rng.standard_normal((5, 6)) * 2
    t = rng.integers(0, 5, 400)
    x = centers[t] + rng.standard_normal((400, 6))
    return net, x, t, rng


def trained(net, x, t, epochs=20):
    from nnetavg.train.optim import SGD
    from nnetavg.train.trainer import TrainOptions, Trainer
    good = net.copy()
    tr = Trainer(good, SGD(good), TrainOptions(learn_rate=0.01, minibatch_size=50))
    for _ in range(epochs):
        for i in range(0, len(t), 50):
            tr.step(x[i:i + 50], t[i:i + 50])
    return good


def scattered(center, rng, count, sd):
    """``count`` copies of ``center`` with Gaussian noise of deviation ``sd`` (drawn in turn)."""
    models = []
    for _ in range(count):
        m = center.copy()
        m.params[...] += rng.normal(0, sd, m.params.shape)
        models.append(m)
    return models


def test_average_of_scattered_models_beats_the_last_on_unseen_frames(tmp_path):
    net, x, t, rng = models_and_data(tmp_path)
    good = trained(net, x[:200], t[:200])
    models = scattered(good, rng, 5, 0.4)    # SGD's late iterates: scattered around a good point
    r = average_last(models, x[:200], t[:200])            # chosen on the first half
    n = int(r.chosen.split("-")[1])
    assert n >= 3, r.chosen
    np.testing.assert_allclose(r.network.params, sum(m.params for m in models[-n:]) / n, rtol=1e-12)
    unseen_last, unseen_final = held_out_scores(models[-1], x[200:], t[200:]), held_out_scores(r.network, x[200:], t[200:])
    assert unseen_final[0] < unseen_last[0] - 0.05, (unseen_last, unseen_final)
    assert r.evaluations == 5 and r.objective == pytest.approx(held_out_scores(r.network, x[:200], t[:200])[0])


def test_average_keeps_the_last_model_when_the_models_approach_it(tmp_path):
    net, x, t, rng = models_and_data(tmp_path)
    good = trained(net, x, t)
    away = rng.normal(0, 0.3, good.params.shape)
    models = []
    for k in range(4, -1, -1):               # each iterate closer to the good point, the last on it
        m = good.copy()
        m.params[...] += k * away
        models.append(m)
    r = average_last(models, x, t)
    assert r.chosen == "last-1" and r.objective < r.average_objective
    assert np.array_equal(r.network.params, models[-1].params)


def test_held_out_gradient_matches_finite_differences(tmp_path):
    net, x, t, rng = models_and_data(tmp_path)
    held = _HeldOut(net.copy(), x, t)
    p0 = net.params.copy()
    _, g = held.loss_and_grad(p0)
    for i in rng.choice(len(p0), 8, replace=False):
        e = np.zeros_like(p0)
        e[i] = 1e-6
        assert g[i] == pytest.approx((held.loss(p0 + e) - held.loss(p0 - e)) / 2e-6, rel=1e-4, abs=1e-8)


def test_combination_beats_average_and_models_with_convex_weights(tmp_path):
    net, x, t, rng = models_and_data(tmp_path)
    models = scattered(net, rng, 4, 0.5)
    r = combine(models, x, t)
    assert r.chosen == "combination" and r.objective < r.average_objective - 1e-3, (r.chosen, r.objective, r.average_objective)
    assert r.objective <= min(r.single_objectives) and r.evaluations > 3
    assert r.weights.shape == (4, 2) and (r.weights >= 0).all()
    np.testing.assert_allclose(r.weights.sum(axis=0), 1.0, rtol=1e-9)
    assert _HeldOut(r.network, x, t).loss(r.network.params) == pytest.approx(r.objective, rel=1e-9)
    # per-model weights: one column
    r1 = combine(models, x, t, per_component=False)
    assert r1.weights.shape == (4, 1) and r1.objective >= r.objective - 1e-9
    # a model far better than the rest is not spoiled by them
    good = net.copy()
    from nnetavg.train.optim import SGD
    from nnetavg.train.trainer import TrainOptions, Trainer
    tr = Trainer(good, SGD(good), TrainOptions(learn_rate=0.01, minibatch_size=50))
    for _ in range(20):
        for i in range(0, 400, 50):
            tr.step(x[i:i + 50], t[i:i + 50])
    r2 = combine([models[0], models[1], good], x, t)
    assert r2.objective <= r2.single_objectives[2] < min(r2.single_objectives[:2])


def test_combine_command(tmp_path):
    make_labelled_data(tmp_path, num_utts=20, seed=1, name="tr")
    run_cmd(["nnet-init", "--input-dim=6", "--output-dim=5", "--hidden-layers=1", "--hidden-dim=16", f"{tmp_path}/0.nnet"])
    feats, ali = f"scp:{tmp_path}/tr/feats.scp", f"ark:{tmp_path}/tr/ali.ark"
    run_cmd(["nnet-train-simple", "--learn-rate=0.01", f"{tmp_path}/0.nnet", feats, ali, f"{tmp_path}/1.nnet"])
    run_cmd(["nnet-train-simple", "--learn-rate=0.005", f"{tmp_path}/1.nnet", feats, ali, f"{tmp_path}/2.nnet"])
    p = run_cmd(["nnet-combine", "--num-frames=300", f"--fit-utts-out={tmp_path}/fit", f"{tmp_path}/1.nnet",
                 f"{tmp_path}/2.nnet", feats, ali, f"{tmp_path}/c.nnet"])
    fit = (tmp_path / "fit").read_text().split()
    frames = {k: len(v) for k, v in SequentialReader(ali, INT_VECTOR)}
    chosen_frames = sum(frames[k] for k in fit)
    assert 300 <= chosen_frames < 300 + max(frames.values()) and len(set(fit)) == len(fit)
    m = re.search(r"models=2 method=average frames=(\d+) utterances=(\d+) chosen=last-[12] ", p.stderr)
    assert m and int(m.group(1)) == chosen_frames and int(m.group(2)) == len(fit), p.stderr
    m = re.search(r"unseen frames=(\d+) utterances=(\d+) last-cross-entropy=(\S+) ", p.stderr)
    assert m and int(m.group(1)) == sum(frames.values()) - chosen_frames and int(m.group(2)) == 20 - len(fit)
    read_nnet(f"{tmp_path}/c.nnet")
    p = run_cmd(["nnet-combine", "--method=bfgs", "--num-frames=0", f"{tmp_path}/1.nnet", f"{tmp_path}/2.nnet", feats,
                 ali, f"{tmp_path}/b.nnet"])
    assert "method=bfgs" in p.stderr and "weights (per component): model 1:" in p.stderr
    p = run_cmd(["nnet-combine", f"{tmp_path}/1.nnet", feats, ali], check=False)
    assert p.returncode == 1 and "need MODEL1" in p.stderr


def _avg(models, n):
    return sum(m.params for m in models[-n:]) / n


def test_average_last_against_its_definition(tmp_path, caplog):
    import logging

    from nnetavg.train.trainer import mean_cross_entropy

    net, x, t, rng = models_and_data(tmp_path)
    good = trained(net, x, t, epochs=10)
    noise = rng.normal(0, 0.4, good.params.shape)
    models = [good.copy() for _ in range(3)]
    models[0].params[...] += 3 * rng.normal(0, 0.4, good.params.shape)   # far off: hurts any average holding it
    models[1].params[...] += noise
    models[2].params[...] -= noise                                      # the last two straddle the good point
    ref = []
    for n in (1, 2, 3):
        probe = good.copy()
        probe.params[...] = _avg(models, n)
        ref.append(mean_cross_entropy(probe, x, t))
    assert int(np.argmin(ref)) == 1          # the construction works: the last two are best
    with caplog.at_level(logging.INFO, logger="nnetavg.train.combine"):
        r = average_last(models, x, t)
    assert r.chosen == "last-2" and r.evaluations == 3
    assert (r.objective, r.average_objective, r.single_objectives) == (ref[1], ref[2], [ref[0]])
    np.testing.assert_array_equal(r.weights, [[0.0], [0.5], [0.5]])
    np.testing.assert_allclose(r.network.params, _avg(models, 2), rtol=1e-12)
    assert [rec.getMessage() for rec in caplog.records] == [
        f"held-out cross-entropy of the average of the last {n} model(s): {v:.6g}" for n, v in zip((1, 2, 3), ref)]
    # a model with NaN parameters makes every average holding it NaN: never chosen
    bad = models[0].copy()
    bad.params[0] = np.nan
    r = average_last([bad, models[1], models[2]], x, t)
    assert r.chosen == "last-2" and np.isnan(r.average_objective) and np.all(np.isfinite(r.network.params))
    # equal objectives: the smaller n (the last model itself, bitwise)
    far = good.copy()
    far.params[...] += 50 * noise
    r = average_last([far, models[2], models[2].copy()], x, t)
    assert r.chosen == "last-1" and np.array_equal(r.network.params, models[2].params)


def test_refusals_name_the_problem(tmp_path):
    from nnetavg.errors import NnetavgError, TopologyError

    net, x, t, _ = models_and_data(tmp_path)
    for fn in (average_last, combine):
        with pytest.raises(NnetavgError, match="^no models to combine$"):
            fn([], x, t)
    run_cmd(["nnet-init", "--input-dim=6", "--output-dim=5", "--hidden-layers=1", "--hidden-dim=9", f"{tmp_path}/9.nnet"])
    other = read_nnet(f"{tmp_path}/9.nnet", dtype=np.float64)
    for fn in (average_last, combine):
        with pytest.raises(TopologyError, match=r"^combine: component 1 is <AffineTransform> 6->9 in one network"):
            fn([net, other], x, t)


def _golden(f, lo, hi, tol=1e-7):
    """Minimum of a unimodal f on [lo, hi] by golden-section search (the reference optimiser)."""
    g = (5 ** 0.5 - 1) / 2
    a, b = lo, hi
    c, d = b - g * (b - a), a + g * (b - a)
    fc, fd = f(c), f(d)
    while b - a > tol:
        if fc < fd:
            b, d, fd = d, c, fc
            c = b - g * (b - a)
            fc = f(c)
        else:
            a, c, fc = c, d, fd
            d = a + g * (b - a)
            fd = f(d)
    return (a + b) / 2


def test_bfgs_reaches_the_optimum_of_a_reference_search(tmp_path):
    """Two models, one weight per model (w, 1 - w), then one weight per component: BFGS's held-out
    objective against golden-section (and coordinate-wise golden-section) searches of the same
    function; the weights it returns are those of its objective."""
    net, x, t, rng = models_and_data(tmp_path)
    good = trained(net, x, t, epochs=10)
    a, b = good.copy(), good.copy()
    a.params[...] += rng.normal(0, 0.5, a.params.shape)
    b.params[...] += rng.normal(0, 0.5, b.params.shape)
    held = _HeldOut(good.copy(), x, t)
    ranges = [(s, e) for _, s, e in good.param_ranges()]

    def loss(ws):   # one weight of model a per component (or one for all)
        p = b.params.copy()
        for (s, e), w in zip(ranges, ws if len(ws) > 1 else ws * len(ranges)):
            p[s:e] = w * a.params[s:e] + (1 - w) * b.params[s:e]
        return held.loss(p)

    w_ref = _golden(lambda w: loss([w]), 0.0, 1.0)
    r = combine([a, b], x, t, per_component=False)
    assert r.chosen == "combination"
    assert r.objective <= loss([w_ref]) + 1e-7 and abs(r.weights[0, 0] - w_ref) < 2e-3, (r.weights, w_ref)
    assert r.weights[0, 0] + r.weights[1, 0] == pytest.approx(1.0, abs=1e-12)
    assert held.loss(r.network.params) == pytest.approx(r.objective, rel=1e-12)
    ws = [0.5] * len(ranges)
    for _ in range(6):
        for c in range(len(ws)):
            ws[c] = _golden(lambda w: loss(ws[:c] + [w] + ws[c + 1:]), 0.0, 1.0)
    r = combine([a, b], x, t)
    assert r.objective <= loss(ws) + 1e-6, (r.objective, loss(ws))
    np.testing.assert_allclose(r.weights[0], ws, atol=5e-3)


def test_held_out_loss_and_gradient_do_not_depend_on_the_chunk(tmp_path):
    net, x, t, _ = models_and_data(tmp_path)
    whole, chunks = _HeldOut(net.copy(), x, t), _HeldOut(net.copy(), x, t, chunk=64)
    f1, g1 = whole.loss_and_grad(net.params)
    f2, g2 = chunks.loss_and_grad(net.params)
    assert f2 == pytest.approx(f1, rel=1e-12) and chunks.loss(net.params) == pytest.approx(f1, rel=1e-12)
    np.testing.assert_allclose(g2, g1, rtol=1e-10, atol=1e-14)


def test_weights_table_names_every_model_and_component():
    from nnetavg.train.combine import CombineResult, weights_table

    r = CombineResult(None, np.array([[0.25, 1.0], [0.75, 0.0]]), 0.0, 0.0, [], "combination", 1)
    assert weights_table(r) == "model 1: 0.250 1.000; model 2: 0.750 0.000"


def _reference_bfgs(f_and_grad, n, max_iters=30):
    """BFGS with Armijo backtracking as the combine docstring states it, written out again:
    returns the objective after every accepted iteration, the final u and the evaluations."""
    u = np.zeros(n)
    f, g = f_and_grad(u)
    evals, H, trace = 1, np.eye(n), []
    for _ in range(max_iters):
        if not np.isfinite(f) or np.linalg.norm(g) < 1e-7:
            break
        d = -H @ g
        if d @ g >= 0:
            H, d = np.eye(n), -g
        a = 1.0
        while True:
            u1 = u + a * d
            f1, g1 = f_and_grad(u1)
            evals += 1
            if np.isfinite(f1) and f1 <= f + 1e-4 * a * (d @ g):
                break
            a /= 2
            if a < 1e-6:
                break
        if a < 1e-6 or f - f1 < 1e-7 * max(1.0, abs(f)):
            if np.isfinite(f1) and f1 < f:
                u, f = u1, f1
                trace.append(f)
            break
        s, y = u1 - u, g1 - g
        if s @ y > 1e-12:
            r = 1 / (s @ y)
            I = np.eye(n)  # noqa: E741
            H = (I - r * np.outer(s, y)) @ H @ (I - r * np.outer(y, s)) + r * np.outer(s, s)
        u, f, g = u1, f1, g1
        trace.append(f)
    return trace, u, evals


def test_bfgs_follows_the_reference_trajectory(tmp_path, caplog):
    """The objective after every iteration (the debug lines), the weights and the number of
    evaluations equal those of the algorithm written out independently, on the same objective
    (softmax weights per component, the held-out loss and its chain-rule gradient)."""
    import logging

    net, x, t, rng = models_and_data(tmp_path)
    models = scattered(net, rng, 3, 0.5)
    ranges = [(s, e) for _, s, e in net.param_ranges()]
    K, C = 3, len(ranges)
    held = _HeldOut(net.copy(), x, t)

    def weights(u):
        u = u.reshape(K, C)
        e = np.exp(u - u.max(axis=0))
        return e / e.sum(axis=0)

    def f_and_grad(u):
        w = weights(u)
        p = np.zeros_like(net.params)
        for c, (s, e) in enumerate(ranges):
            for k in range(K):
                p[s:e] += w[k, c] * models[k].params[s:e]
        loss, g = held.loss_and_grad(p)
        dw = np.array([[g[s:e] @ models[k].params[s:e] for s, e in ranges] for k in range(K)])
        return loss, (w * (dw - (w * dw).sum(axis=0))).reshape(-1)

    trace, u, evals = _reference_bfgs(f_and_grad, K * C)
    assert len(trace) >= 3
    with caplog.at_level(logging.DEBUG, logger="nnetavg.train.combine"):
        r = combine(models, x, t)
    logged = [float(m.group(2)) for rec in caplog.records
              if (m := re.match(r"combine iteration (\d+): held-out cross-entropy (\S+)$", rec.getMessage()))]
    iters = [int(re.match(r"combine iteration (\d+)", rec.getMessage()).group(1)) for rec in caplog.records
             if rec.getMessage().startswith("combine iteration")]
    assert iters == list(range(1, len(iters) + 1))
    np.testing.assert_allclose(logged, trace[:len(logged)], rtol=1e-5)   # %.6g in the log
    assert len(logged) in (len(trace), len(trace) - 1)                   # the last, stopping step is not logged
    assert r.evaluations == evals and r.chosen == "combination"
    assert r.objective == pytest.approx(trace[-1], rel=1e-12)
    np.testing.assert_allclose(r.weights, weights(u), rtol=1e-9, atol=1e-12)


def test_the_average_or_a_single_model_when_they_are_better(tmp_path):
    """Without iterations the combination is the plain average (weights 1/K); when the best single
    model beats it, that model is returned (one-hot weights, named model-k) with its objective."""
    net, x, t, rng = models_and_data(tmp_path)
    best = trained(net, x, t, epochs=10)
    noise = rng.normal(0, 0.5, best.params.shape)
    models = [best.copy(), best.copy(), best.copy()]
    models[0].params[...] += noise
    models[1].params[...] -= noise
    models[2].params[...] += 0.1 * noise          # the average sits next to the trained model
    r = combine(models, x, t, max_iters=0)
    assert r.chosen == "combination" and r.objective == r.average_objective < min(r.single_objectives)
    assert r.evaluations == 1
    np.testing.assert_allclose(r.weights, np.full((3, 2), 1 / 3), rtol=1e-12)
    np.testing.assert_allclose(r.network.params, sum(m.params for m in models) / 3, rtol=1e-12)
    far = scattered(best, rng, 2, 3.0)
    r = combine([far[0], best, far[1]], x, t, max_iters=0)   # the trained model beats any average
    assert r.chosen == "model-2" and r.objective == r.single_objectives[1] < r.average_objective
    np.testing.assert_array_equal(r.weights, [[0, 0], [1, 1], [0, 0]])
    np.testing.assert_allclose(r.network.params, best.params, rtol=1e-12)
    r = combine([far[0], best, far[1]], x, t, max_iters=0, per_component=False)
    np.testing.assert_array_equal(r.weights, [[0], [1], [0]])
