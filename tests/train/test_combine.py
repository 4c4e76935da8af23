"""Combination of the last models (nnet-combine): the held-out gradient against finite
differences, positive weights summing to one, never worse than the average or the best model,
and the command and train_parallel.sh's --final-model."""

import numpy as np
import pytest

from nnetavg.io.nnet1 import read_nnet
from nnetavg.train.combine import _HeldOut, combine
from tests.conftest import make_labelled_data, run_cmd


def models_and_data(tmp_path, dtype=np.float64):
    run_cmd(["nnet-init", "--input-dim=6", "--output-dim=5", "--hidden-layers=1", "--hidden-dim=8", f"{tmp_path}/0.nnet"])
    net = read_nnet(f"{tmp_path}/0.nnet", dtype=dtype)
    rng = np.random.default_rng(0)
    centers = rng.standard_normal((5, 6)) * 2
    t = rng.integers(0, 5, 400)
    x = centers[t] + rng.standard_normal((400, 6))
    return net, x, t, rng


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
    assert r.objective <= r.average_objective and r.objective <= min(r.single_objectives)
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
    p = run_cmd(["nnet-combine", "--num-frames=300", f"{tmp_path}/1.nnet", f"{tmp_path}/2.nnet", feats, ali,
                 f"{tmp_path}/c.nnet"])
    assert "models=2 frames=300 chosen=" in p.stderr and "weights (per component): model 1:" in p.stderr
    read_nnet(f"{tmp_path}/c.nnet")
    p = run_cmd(["nnet-combine", f"{tmp_path}/1.nnet", feats, ali], check=False)
    assert p.returncode == 1 and "need MODEL1" in p.stderr
