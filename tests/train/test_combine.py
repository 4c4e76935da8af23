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


def test_average_of_scattered_models_beats_the_last_on_unseen_frames(tmp_path):
    net, x, t, rng = models_and_data(tmp_path)
    good = trained(net, x[:200], t[:200])
    models = []
    for _ in range(5):                       # SGD's late iterates: scattered around a good point
        m = good.copy()
        m.params[...] += rng.normal(0, 0.4, m.params.shape)
        models.append(m)
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
    models = []
    for _ in range(4):
        m = net.copy()
        m.params[...] += rng.normal(0, 0.5, m.params.shape)
        models.append(m)
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
