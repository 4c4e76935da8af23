"""RBMs: CD-1 against the exact log-likelihood gradient, free energy, learning, file format,
conversion to network layers, pretraining on MPI ranks."""

import itertools
import os
import re
import subprocess

import numpy as np
import pytest

from nnetavg.io.nnet1 import read_nnet, write_nnet
from nnetavg.io.tables import MATRIX, SequentialReader, TableWriter

from nnetavg.nnet.network import Network
from nnetavg.rbm import RbmTrainer, RbmTrainOptions, free_energy, new_rbm, rbm_to_nnet
from tests.conftest import BIN_DIR, run_cmd


def states(n):
    return np.array(list(itertools.product([0.0, 1.0], repeat=n)))


def exact_gradient(W, bv, bh, data):
    """d/dW of the mean log-likelihood of ``data`` by enumerating every (v, h)."""
    V, H = states(W.shape[1]), states(W.shape[0])
    E = -(V @ bv)[:, None] - (H @ bh)[None, :] - V @ W.T @ H.T      # (v, h) energies
    P = np.exp(-E - np.logaddexp.reduce(-E, axis=None))
    model = H.T @ P.T @ V                                            # E_model[h v^T]
    ph = 1 / (1 + np.exp(-(data @ W.T + bh)))
    return ph.T @ data / len(data) - model


def cd1_expected_update(W, bv, bh, data):
    """The expectation of the CD-1 direction h0^T v0 - h1^T v1 over the hidden sample (exact)."""
    H = states(W.shape[0])
    out = np.zeros_like(W)
    for v0 in data:
        h0 = 1 / (1 + np.exp(-(W @ v0 + bh)))
        for h in H:
            p = np.prod(np.where(h == 1, h0, 1 - h0))
            v1 = 1 / (1 + np.exp(-(h @ W + bv)))     # nnet1: probabilities, no visible sampling
            h1 = 1 / (1 + np.exp(-(W @ v1 + bh)))
            out += p * (np.outer(h0, v0) - np.outer(h1, v1))
    return out / len(data)


def test_cd1_points_along_the_likelihood_gradient():
    rng = np.random.default_rng(0)
    W = rng.standard_normal((3, 5)) * 0.3
    bv, bh = rng.standard_normal(5) * 0.2, rng.standard_normal(3) * 0.2
    data = (rng.random((40, 5)) < np.array([0.9, 0.8, 0.2, 0.1, 0.5])).astype(float)
    g, c = exact_gradient(W, bv, bh, data), cd1_expected_update(W, bv, bh, data)
    cos = (g * c).sum() / np.linalg.norm(g) / np.linalg.norm(c)
    assert cos > 0.9, cos


@pytest.mark.parametrize("vis", ["bern", "gauss"])
def test_free_energy_against_enumeration(vis):
    rng = np.random.default_rng(1)
    net = new_rbm(4, 3, vis, "bern", param_stddev=0.5, seed=2, visible_bias=rng.standard_normal(4))
    r = net.components[0]
    r.params["hidden_bias"][:] = rng.standard_normal(3)
    v = rng.random((6, 4)) if vis == "gauss" else (rng.random((6, 4)) < 0.5).astype(np.float32)
    W, bv, bh = (np.asarray(r.params[k], np.float64) for k in ("weight", "visible_bias", "hidden_bias"))
    H = states(3)
    for row, f in zip(v, free_energy(r, v.astype(np.float32))):
        vis_term = 0.5 * ((row - bv) ** 2).sum() if vis == "gauss" else -(row @ bv)
        energies = vis_term - H @ bh - H @ (W @ row)
        assert f == pytest.approx(-np.logaddexp.reduce(-energies), rel=1e-5, abs=1e-5)


def _table(tmp_path, name, mats):
    with TableWriter(f"ark,scp:{tmp_path}/{name}.ark,{tmp_path}/{name}.scp", MATRIX) as w:
        for i, m in enumerate(mats):
            w.write(f"u{i:03d}", m.astype(np.float32))
    return f"scp:{tmp_path}/{name}.scp"


def test_reconstruction_error_falls(tmp_path):
    rng = np.random.default_rng(3)
    protos = (rng.random((4, 20)) < 0.5).astype(float)
    data = [np.abs(protos[rng.integers(0, 4, 50)] - (rng.random((50, 20)) < 0.05)) for _ in range(40)]
    feats = _table(tmp_path, "bin", data)
    net = new_rbm(20, 16, "bern", "bern", seed=1)
    tr = RbmTrainer(net, RbmTrainOptions(learn_rate=0.4, minibatch_size=20, randomizer_size=500))
    errs = [tr.train_pass(feats, None)[1] for _ in range(4)]
    assert errs[-1] < 0.7 * errs[0] and all(b < a for a, b in zip(errs, errs[1:])), errs
    assert tr.mom == 0.9 and tr.lr == pytest.approx(0.4 * 0.5)  # with_bug: momentum at max; lr = lr (1 - m_0)


def test_gaussian_rbm_learns_mean_and_variance(tmp_path):
    rng = np.random.default_rng(4)
    mu = np.array([2.0, -1.0, 0.5, 0.0])
    std = np.array([1.0, 1.0, 2.0, 2.0])
    feats = _table(tmp_path, "g", [mu + std * rng.standard_normal((100, 4)) for _ in range(60)])
    net = new_rbm(4, 8, "gauss", "bern", seed=2)
    tr = RbmTrainer(net, RbmTrainOptions(learn_rate=0.01, minibatch_size=50, randomizer_size=1000))
    for _ in range(6):
        tr.train_pass(feats, None)
    r = net.components[0]
    W, bv, bh = (np.asarray(r.params[k], np.float64) for k in ("weight", "visible_bias", "hidden_bias"))
    v = np.zeros((4000, 4))
    for _ in range(200):  # Gibbs sampling from the model: v | h ~ N(h W + b_v, I)
        ph = 1 / (1 + np.exp(-(v @ W.T + bh)))
        h = (rng.random(ph.shape) < ph).astype(float)
        v = h @ W + bv + rng.standard_normal(v.shape)
    np.testing.assert_allclose(v.mean(axis=0), mu, atol=0.2)
    var = v.var(axis=0)
    # Unit conditional variance is the floor; the hidden units add what the data has beyond it.
    # nnet1's mean-field reconstruction (no noise on v1) makes CD-1 overshoot a little.
    assert np.all(var > 0.9) and np.all(var[:2] < 2.2) and np.all(var[2:] > 3.0) and np.all(var[2:] < 6.5), var


@pytest.mark.parametrize("binary", [True, False])
def test_rbm_file_round_trip_and_conversion(tmp_path, binary):
    net = new_rbm(5, 3, "gauss", "bern", seed=5, visible_bias=np.arange(5.0))
    write_nnet(net, str(tmp_path / "r"), binary=binary)
    back = read_nnet(str(tmp_path / "r"))
    assert back.topology() == (("<Rbm>", 5, 3, "gauss", "bern"),)
    np.testing.assert_allclose(back.params, net.params, rtol=1e-6)
    if not binary:
        assert (tmp_path / "r").read_text().startswith("<Nnet> \n<Rbm> 3 5 \ngauss bern  [\n")
    x = np.random.default_rng(0).standard_normal((7, 5)).astype(np.float32)
    layers = Network(rbm_to_nnet(back.components[0]))
    assert [c.marker for c in layers.components] == ["<AffineTransform>", "<Sigmoid>"]
    np.testing.assert_allclose(layers.forward(x), back.forward(x), rtol=1e-6)
    run_cmd(["rbm-convert-to-nnet", str(tmp_path / "r"), str(tmp_path / "n")])
    np.testing.assert_allclose(read_nnet(str(tmp_path / "n")).forward(x), back.forward(x), rtol=1e-6)


@pytest.mark.slow
def test_rbm_training_on_two_mpi_ranks(tmp_path):
    rng = np.random.default_rng(6)
    for j in (1, 2):
        _table(tmp_path, f"a{j}", [rng.standard_normal((60, 6)) + j for _ in range(20)])
    run_cmd(["nnet-init-rbm", "--visible-type=gauss", "6", "5", str(tmp_path / "r0")])
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1")
    p = subprocess.run([os.path.join(BIN_DIR, "mpiexec"), "-n", "2", "rbm-train-cd1", "--mpi=true", "--learn-rate=0.01",
                        "--num-iters=2", "--average-every=3", "--minibatch-size=30", str(tmp_path / "r0"),
                        f"scp:{tmp_path}/aJOB.scp", str(tmp_path / "r1")], capture_output=True, text=True, env=env,
                       timeout=120)
    assert p.returncode == 0, p.stderr
    for rank in (0, 1):
        assert re.search(rf"rbm-train-cd1 rank {rank}/2 .*iteration 2/2 reconstruction-mse=", p.stderr)
    mses = re.findall(r"iteration 2/2 reconstruction-mse=(\S+)", p.stderr)
    assert len(set(mses)) == 1  # both ranks report the all-reduced figure
    assert read_nnet(str(tmp_path / "r1")).components[0].visible_type == "gauss"


def _exploding_gauss_rbm():
    """A Gaussian-Bernoulli RBM with huge weights: its reconstructions are far wider than the data."""
    net = new_rbm(6, 8, "gauss", "bern", param_stddev=3.0, seed=2)
    return net


def test_explosion_guard_rate_cut_lasts_until_the_next_schedule_step():
    """nnet1 cuts the rate by 0.9 on an explosion, in the RBM's own copy of the options, and the
    next momentum-schedule step sets lr = learn_rate (1 - m) afresh: the cuts do not compound
    across schedule steps. Every minibatch, skipped or not, reaches the after-minibatch hook (so
    MPI ranks mix in step) and counts its frames."""
    calls = []
    net = _exploding_gauss_rbm()
    opts = RbmTrainOptions(learn_rate=0.01, momentum=0.5, momentum_max=0.9, momentum_steps=4,
                           momentum_step_period=100, minibatch_size=50, with_bug=False)
    tr = RbmTrainer(net, opts, after_minibatch=lambda m, n: calls.append(m))
    x = np.random.default_rng(0).standard_normal((50, 6)).astype(np.float32) * 0.1
    tr.step(x)  # schedule step n=0: lr = 0.01 (1 - 0.5); then an explosion: x 0.9
    assert tr.explosions == 1 and tr.lr == pytest.approx(0.01 * 0.5 * 0.9)
    tr.step(x)  # same schedule step (50 frames < 100): the cut stays, maybe cut again
    assert tr.lr == pytest.approx(0.01 * 0.5 * 0.9 ** tr.explosions)
    before = tr.explosions
    tr.step(x)  # 100 frames seen: schedule step n=1 sets lr = 0.01 (1 - 0.6), then any new cut
    assert tr.lr == pytest.approx(0.01 * (1 - 0.6) * 0.9 ** (tr.explosions - before))
    assert calls == [1, 2, 3] and tr.frames_seen == 150 and tr.minibatch == 3


def test_reconstruction_error_is_half_the_squared_error():
    """nnet1's MseProgress reports 0.5 |v0 - v1|^2 (per frame in the logs): one step's error,
    recomputed from the same hidden draw, is half the squared error of the reconstruction."""
    rng = np.random.default_rng(5)
    x = (rng.random((40, 10)) < 0.3).astype(np.float32)
    net = new_rbm(10, 5, "bern", "bern", seed=3)
    r = net.components[0]
    W, bv, bh = (np.array(r.param(k), np.float64) for k in ("weight", "visible_bias", "hidden_bias"))
    opts = RbmTrainOptions(minibatch_size=40)
    e = RbmTrainer(net, opts).step(x)
    u = np.random.default_rng(opts.randomizer_seed + 1).random((40, 5), dtype=np.float32)
    hs = ((1 / (1 + np.exp(-(x.astype(np.float64) @ W.T + bh)))) > u).astype(np.float64)
    v1 = 1 / (1 + np.exp(-(hs @ W + bv)))
    assert e == pytest.approx(0.5 * ((x - v1) ** 2).sum(), rel=1e-4)


@pytest.mark.parametrize("vis,hid", [("bern", "bern"), ("gauss", "bern"), ("bern", "gauss")])
def test_cd1_steps_against_the_update_equations(vis, hid):
    """Three CD-1 steps (momentum schedule without nnet1's bug, L2, a schedule step after the
    second minibatch) recomputed here from the same random draws with equations (5)-(9)."""
    rng = np.random.default_rng(11)
    net = new_rbm(8, 5, vis, hid, seed=4)
    r = net.components[0]
    W, bv, bh = (np.array(r.param(k), np.float64) for k in ("weight", "visible_bias", "hidden_bias"))
    opts = RbmTrainOptions(learn_rate=0.05, momentum=0.5, momentum_max=0.9, momentum_steps=2,
                           momentum_step_period=60, l2_penalty=0.01, minibatch_size=30, with_bug=False)
    tr = RbmTrainer(net, opts)
    draws = np.random.default_rng(opts.randomizer_seed + 1)
    sig = lambda a: 1 / (1 + np.exp(-a))  # noqa: E731
    dW, dbv, dbh = np.zeros_like(W), np.zeros_like(bv), np.zeros_like(bh)
    frames = 0
    for step in range(3):
        v0 = (rng.random((30, 8)) < 0.4).astype(np.float32) if vis == "bern" else \
            (rng.standard_normal((30, 8)) * 0.5).astype(np.float32)
        err = tr.step(v0)
        m = min(0.9, 0.5 + (frames // 60) * (0.9 - 0.5) / 2)   # 0.5, 0.5, 0.7: the schedule
        lr = 0.05 * (1 - m)
        v = v0.astype(np.float64)
        h0 = v @ W.T + bh
        if hid == "bern":
            h0 = sig(h0)
            hs = (h0 > draws.random(h0.shape, dtype=np.float32)).astype(np.float64)
        else:
            hs = h0 + draws.standard_normal(h0.shape, dtype=np.float32)
        v1 = hs @ W + bv
        if vis == "bern":
            v1 = sig(v1)
        h1 = v1 @ W.T + bh
        if hid == "bern":
            h1 = sig(h1)
        assert err == pytest.approx(0.5 * ((v - v1) ** 2).sum(), rel=1e-4)
        dW = m * dW + lr / 30 * (h0.T @ v - h1.T @ v1) - lr * 0.01 * W
        dbv = m * dbv + lr / 30 * (v - v1).sum(axis=0)
        dbh = m * dbh + lr / 30 * (h0 - h1).sum(axis=0)
        W, bv, bh = W + dW, bv + dbv, bh + dbh
        frames += 30
        assert tr.lr == pytest.approx(lr, rel=1e-12) and tr.mom == pytest.approx(m, rel=1e-12)
        for k, ref in (("weight", W), ("visible_bias", bv), ("hidden_bias", bh)):
            np.testing.assert_allclose(np.asarray(r.param(k), np.float64), ref, rtol=2e-4, atol=2e-6, err_msg=f"{k} {step}")
    assert tr.explosions == 0 and tr.frames_seen == 90 and tr.minibatch == 3


def test_train_pass_in_process_counts_errors_and_logs(tmp_path, caplog, monkeypatch):
    """One pass in this process: every frame but the last partial minibatch trained once, the
    mean error per frame is the steps' errors over the frames, progress lines every report
    period with the window's error, the pass line; --drop-data keeps about 1 - p of the frames
    (whole utterances are never needed); refusals."""
    import logging

    from nnetavg.errors import NnetavgError
    from nnetavg.nnet.components import Sigmoid
    from tests.conftest import make_labelled_data

    feats, _ = make_labelled_data(tmp_path, num_utts=30, feat_dim=6, seed=3)
    total = sum(m.shape[0] for _, m in SequentialReader(f"scp:{feats}", MATRIX))
    net = new_rbm(6, 4, "gauss", "bern", seed=2)
    opts = RbmTrainOptions(learn_rate=0.001, minibatch_size=50, randomizer_size=200, report_period=100)
    tr = RbmTrainer(net, opts)
    seen = []
    real_step = tr.step
    monkeypatch.setattr(tr, "step", lambda v: seen.append((v.shape[0], real_step(v))) or seen[-1][1])
    with caplog.at_level(logging.INFO, logger="nnetavg.rbm"):
        frames, mse = tr.train_pass(f"scp:{feats}", None)
    assert frames == sum(n for n, _ in seen) == (total // 50) * 50 and all(n == 50 for n, _ in seen)
    assert mse == pytest.approx(sum(e for _, e in seen) / frames, rel=1e-12)
    lines = [r.getMessage() for r in caplog.records]
    progress = [ln for ln in lines if ln.startswith("progress ")]
    assert len(progress) == frames // 100
    first = dict(kv.split("=") for kv in progress[0].split()[1:])
    assert int(first["frames-done"]) == 100 and float(first["reconstruction-mse"]) == pytest.approx(
        (seen[0][1] + seen[1][1]) / 100, rel=1e-5)
    assert float(first["learn-rate"]) == pytest.approx(tr.lr) and float(first["momentum"]) == pytest.approx(tr.mom)
    last = dict(kv.split("=") for kv in lines[-1].split()[1:])
    assert lines[-1].startswith("pass ") and int(last["frames"]) == frames
    assert float(last["reconstruction-mse"]) == pytest.approx(mse, rel=1e-5) and float(last["seconds"]) >= 0
    # drop-data: about half the frames at 0.5, reproducibly
    half = RbmTrainer(new_rbm(6, 4, "gauss", "bern", seed=2), RbmTrainOptions(learn_rate=0.001, minibatch_size=10,
                                                                             drop_data=0.5))
    f_half, _ = half.train_pass(f"scp:{feats}", None)
    assert 0.4 * total <= f_half <= 0.6 * total
    again = RbmTrainer(new_rbm(6, 4, "gauss", "bern", seed=2), RbmTrainOptions(learn_rate=0.001, minibatch_size=10,
                                                                              drop_data=0.5))
    assert again.train_pass(f"scp:{feats}", None)[0] == f_half
    for bad in (1.0, -0.1):
        with pytest.raises(NnetavgError, match=rf"^--drop-data={bad}: must be in \[0, 1\)$"):
            RbmTrainer(new_rbm(6, 4), RbmTrainOptions(drop_data=bad)).train_pass(f"scp:{feats}", None)
    with pytest.raises(NnetavgError, match=r"^CD-1 training needs a model that is one <Rbm> component$"):
        RbmTrainer(Network([Sigmoid(4, 4)]), RbmTrainOptions())
    # a diverging RBM stops with the frames seen
    boom = RbmTrainer(new_rbm(6, 4, "gauss", "bern", seed=2), RbmTrainOptions(minibatch_size=50))
    monkeypatch.setattr(boom, "step", lambda v: float("nan"))
    with pytest.raises(NnetavgError, match=r"^the RBM reconstruction error became nan after 0 frames; lower "
                                           r"--learn-rate$"):
        boom.train_pass(f"scp:{feats}", None)


def test_explosion_guard_scales_the_parameters_by_the_std_ratio_and_skips_the_update(caplog):
    import logging

    net = _exploding_gauss_rbm()
    r = net.components[0]
    W, bv, bh = (np.array(r.param(k), np.float64) for k in ("weight", "visible_bias", "hidden_bias"))
    opts = RbmTrainOptions(learn_rate=0.01, minibatch_size=50, with_bug=False)
    tr = RbmTrainer(net, opts)
    tr._delta_flat[...] = 0.5                         # a momentum buffer that must be cleared
    x = np.random.default_rng(0).standard_normal((50, 6)).astype(np.float32) * 0.1
    draws = np.random.default_rng(opts.randomizer_seed + 1)
    h0 = 1 / (1 + np.exp(-(x.astype(np.float64) @ W.T + bh)))
    hs = (h0 > draws.random(h0.shape, dtype=np.float32)).astype(np.float64)
    v1 = hs @ W + bv
    s0, s1 = float(x.std()), float(v1.std())
    assert s1 > 2 * s0
    with caplog.at_level(logging.WARNING, logger="nnetavg.rbm"):
        tr.step(x)
    k = s0 / s1
    for name, ref in (("weight", W), ("visible_bias", bv), ("hidden_bias", bh)):
        np.testing.assert_allclose(np.asarray(r.param(name), np.float64), ref * k, rtol=2e-4)
    assert not tr._delta_flat.any() and tr.explosions == 1 and tr.lr == pytest.approx(0.01 * 0.5 * 0.9)
    assert caplog.records[0].getMessage() == (
        f"RBM: danger of weight explosion (std of reconstruction {s1:.3g} > 2 x std of data {s0:.3g}); shrinking the "
        f"parameters by {k:.3g} and the learning rate to {tr.lr:.3g} until the next schedule step")


def test_momentum_schedule_with_one_step_and_nnet1s_bug():
    net = new_rbm(4, 3, seed=1)
    x = (np.random.default_rng(0).random((10, 4)) < 0.5).astype(np.float32)
    tr = RbmTrainer(net, RbmTrainOptions(momentum=0.5, momentum_max=0.9, momentum_steps=1, momentum_step_period=10,
                                         minibatch_size=10, with_bug=False))
    tr.step(x)
    assert tr.mom == 0.5
    tr.step(x)                       # one schedule step of one: straight to the maximum
    assert tr.mom == 0.9 and tr.lr == pytest.approx(0.4 * (1 - 0.9))
    bug = RbmTrainer(new_rbm(4, 3, seed=1), RbmTrainOptions(momentum=0.5, momentum_max=0.9))   # nnet1's default
    bug.step(x)
    assert bug.mom == 0.9 and bug.lr == pytest.approx(0.4 * (1 - 0.5))
