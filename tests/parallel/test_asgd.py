"""Asynchronous SGD with a parameter server under a real mpiexec: every gradient applied once,
staleness recorded, clean shutdown, a failing worker ends the job."""

import os
import re
import subprocess

import numpy as np
import pytest

from tests.conftest import BIN_DIR, descendant_pids, make_labelled_data, run_cmd

MPIEXEC = os.path.join(BIN_DIR, "mpiexec")
pytestmark = pytest.mark.skipif(not os.path.exists(MPIEXEC), reason="no mpiexec beside the interpreter")


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("asgd")
    for j in (1, 2, 3):
        make_labelled_data(tmp, num_utts=25, seed=j, name=f"a{j}")
    make_labelled_data(tmp, num_utts=12, seed=99, name="cv")
    run_cmd(["nnet-init", "--input-dim=6", "--output-dim=5", "--hidden-layers=1", "--hidden-dim=24", f"{tmp}/0.nnet"])
    return tmp


def asgd(n, tmp, out, *extra, timeout=120):
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1")
    args = [MPIEXEC, "-n", str(n), "nnet-train-asgd", "--minibatch-size=32", "--randomizer-size=256",
            "--learn-rate=0.01", *extra, f"{tmp}/0.nnet", f"scp:{tmp}/aJOB/feats.scp", f"ark:{tmp}/aJOB/ali.ark",
            str(out)]
    return subprocess.run(args, capture_output=True, text=True, env=env, timeout=timeout)


@pytest.mark.parametrize("ranks", [3, 4])
def test_every_gradient_applied_once(data, ranks):
    p = asgd(ranks, data, data / f"m{ranks}", f"--cv-feats=scp:{data}/cv/feats.scp", f"--cv-ali=ark:{data}/cv/ali.ark",
             "--cv-check-every=20")
    assert p.returncode == 0, p.stderr
    sent = sum(int(n) for n in re.findall(r"worker \d+ sent (\d+) gradients", p.stderr))
    m = re.search(r"server gradients-applied=(\d+) gradients-sent=(\d+) .*frame-accuracy=([0-9.]+).*"
                  r"staleness-histogram=(\S+)", p.stderr)
    assert m and int(m.group(1)) == int(m.group(2)) == sent > 0
    hist = dict(kv.split(":") for kv in m.group(4).split(","))
    assert sum(int(v) for v in hist.values()) == sent
    assert len(re.findall(r"worker \d+ sent", p.stderr)) == ranks - 1
    assert float(m.group(3)) > 0.5
    assert (data / f"m{ranks}").exists() and "writing the" in p.stderr


def test_needs_workers_and_failing_worker_ends_the_job(data):
    p = asgd(1, data, data / "none")
    assert p.returncode != 0 and "at least one worker" in p.stderr
    # worker 2 has no archive; the server and worker 1 are busy: the whole job must end quickly
    (data / "f").mkdir(exist_ok=True)
    if not (data / "f" / "1.scp").exists():
        os.symlink(data / "a1" / "feats.scp", data / "f" / "1.scp")
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1")
    p = subprocess.run([MPIEXEC, "-n", "3", "nnet-train-asgd", "--minibatch-size=32", f"{data}/0.nnet",
                        f"scp:{data}/f/JOB.scp", f"ark:{data}/aJOB/ali.ark", str(data / "bad")],
                       capture_output=True, text=True, env=env, timeout=120)   # a hang fails here
    # ended by the failure, not after serving every gradient (no server report)
    assert p.returncode != 0 and "server gradients-applied=" not in p.stderr, p.stderr
    assert re.search(r"ERROR \(nnet-train-asgd rank 2/3 .*rank 2 failed: .*f/2.scp", p.stderr), p.stderr
    assert not (data / "bad").exists()


def test_adagrad_step_closed_form():
    import numpy as np
    from nnetavg.parallel.server import adagrad_step
    g = np.array([0.0, 1.0, -3.0, 1e-4], np.float64)
    np.testing.assert_allclose(adagrad_step(g.copy()), g / np.sqrt(1 + g * g), rtol=1e-12)


@pytest.mark.parametrize("adagrad", [False, True])
def test_server_update_applies_adagrad_to_each_gradient(adagrad):
    """The server's update of one gradient at rate lr: p -= lr * g, with --lr-schedule=adagrad
    p -= lr * g / sqrt(1 + g^2) (ASGD-adapt), exactly."""
    from nnetavg.nnet.network import Network
    from nnetavg.nnet.proto import init_from_proto, make_proto
    from nnetavg.parallel.server import ServerUpdate
    from nnetavg.train.optim import SGDOptions
    net = Network(init_from_proto(make_proto(4, 3, 1, 5), seed=2), dtype=np.float64)
    p0 = net.params.copy()
    g = np.random.default_rng(1).standard_normal(p0.shape) * 3
    ServerUpdate(net, SGDOptions(), adagrad=adagrad)(g.copy(), 0.1, 32)
    np.testing.assert_allclose(net.params, p0 - 0.1 * (g / np.sqrt(1 + g * g) if adagrad else g), rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("schedule", ["search", "adagrad"])
def test_server_schedules(data, schedule):
    extra = [f"--lr-schedule={schedule}"]
    if schedule == "search":
        extra += ["--chunk-size=600", f"--search-feats=scp:{data}/a1/feats.scp", f"--search-ali=ark:{data}/a1/ali.ark",
                  "--search-fraction=0.5", "--learn-rate=50"]
    p = asgd(3, data, data / f"s_{schedule}", *extra)
    assert p.returncode == 0, p.stderr
    m = re.search(r"server gradients-applied=(\d+) gradients-sent=(\d+) .*frame-accuracy=([0-9.]+)", p.stderr)
    assert m and m.group(1) == m.group(2) and float(m.group(3)) > 0.5
    if schedule == "search":
        chunks = re.findall(r"chunk (\d+): learn-rate=(\S+) \(baseline (\S+), after (\S+),", p.stderr)
        # most chunks find a rate that lowers the held-out loss; one that does not (late in
        # training a tiny sample may not improve, or only below the 4 printed digits) says so
        improved = [float(a) < float(b) for _, _, b, a in chunks]
        assert len(chunks) >= 3 and sum(improved) >= len(chunks) - 1, chunks
        if not all(improved):
            assert "learning-rate search: no rate down to" in p.stderr or any(
                float(a) == float(b) for _, _, b, a in chunks), p.stderr
        assert float(chunks[0][1]) < 50  # the far too large initial rate was shrunk


def rank_pid(root, marker, rank):
    """The pid of MPI rank ``rank`` of the run this test started (``root``: its mpiexec) whose command
    line contains ``marker`` (MPICH puts PMI_RANK in each rank's environment)."""
    pids = descendant_pids(root, marker)
    for pid in pids:
        try:
            env = open(f"/proc/{pid}/environ", "rb").read().split(b"\0")
        except OSError:
            continue
        if f"PMI_RANK={rank}".encode() in env:
            return int(pid)
    raise AssertionError(f"no rank {rank} among {pids}")


def test_preempted_server_resumes_every_minibatch_applied_once(tmp_path):
    """SIGUSR1 to the server: it saves its state, stops the workers (dropping gradients in
    flight), all ranks exit 75; the rerun resumes, and across both runs each worker's minibatches
    are applied exactly once. Then a kill -9 of a worker: the rerun resumes from the last periodic
    checkpoint, with the same accounting."""
    import signal

    for j in (1, 2):
        make_labelled_data(tmp_path, num_utts=200, seed=j, name=f"a{j}")
    run_cmd(["nnet-init", "--input-dim=6", "--output-dim=5", "--hidden-layers=2", "--hidden-dim=64", f"{tmp_path}/0.nnet"])
    ref = asgd(3, tmp_path, tmp_path / "ref.nnet")
    assert ref.returncode == 0, ref.stderr
    total = int(re.search(r"server gradients-applied=(\d+)", ref.stderr).group(1))

    def interrupted(sig, who, ckpt_every):
        ck = tmp_path / f"ck.{who}.npz"
        args = [MPIEXEC, "-n", "3", "nnet-train-asgd", "--minibatch-size=32", "--randomizer-size=256",
                "--learn-rate=0.01", f"--checkpoint={ck}", f"--checkpoint-every={ckpt_every}", "--report-period=320",
                f"{tmp_path}/0.nnet", f"scp:{tmp_path}/aJOB/feats.scp", f"ark:{tmp_path}/aJOB/ali.ark",
                str(tmp_path / f"{who}.nnet")]
        env = dict(os.environ, OPENBLAS_NUM_THREADS="1")
        proc = subprocess.Popen(args, stderr=subprocess.PIPE, text=True, env=env)
        lines = []
        for line in proc.stderr:
            lines.append(line)
            if "rank 2/3" in line and "progress" in line:
                os.kill(rank_pid(proc.pid, f"{who}.nnet", 0 if who == "signal" else 2), sig)  # the server / a worker
                break
        lines += proc.stderr.readlines()
        return proc.wait(timeout=120), "".join(lines), args, env

    rc, text, args, env = interrupted(signal.SIGUSR1, "signal", 0)
    assert rc == 75, text
    assert "preempted: server state in" in text and (tmp_path / "ck.signal.npz").exists()
    again = subprocess.run(args, capture_output=True, text=True, env=env, timeout=120)
    assert again.returncode == 0, again.stderr
    m = re.search(r"resuming from \S+: (\d+) gradients applied", again.stderr)
    assert m and 0 < int(m.group(1)) < total
    applied = int(re.search(r"server gradients-applied=(\d+)", again.stderr).group(1))
    assert applied == total, "every minibatch of every worker applied exactly once across the two runs"
    assert not (tmp_path / "ck.signal.npz").exists()

    rc, text, args, env = interrupted(signal.SIGKILL, "kill", 5)
    assert rc != 0 and rc != 75, text
    again = subprocess.run(args, capture_output=True, text=True, env=env, timeout=120)
    assert again.returncode == 0, again.stderr
    assert "resuming from" in again.stderr
    assert int(re.search(r"server gradients-applied=(\d+)", again.stderr).group(1)) == total


@pytest.mark.parametrize("extra", [[], ["--momentum=0.7"], ["--l2-penalty=0.002"], ["--momentum=0.5", "--l2-penalty=0.001"]])
def test_one_worker_equals_nnet_train_simple_with_momentum_and_l2(data, extra):
    """With one worker the asynchronous run is synchronous SGD: the server applies the worker's
    gradients in order with nnet1's momentum and L2, so its last iterate equals nnet-train-simple's
    model for the same options and data order. Momentum and L2 must change the model."""
    import numpy as np
    from nnetavg.io.nnet1 import read_nnet
    name = "_".join(a.split("=")[0].strip("-") + a.split("=")[1] for a in extra) or "plain"
    common = ["--minibatch-size=32", "--randomizer-size=256", "--learn-rate=0.01", *extra]
    p = asgd(2, data, data / f"one_{name}", "--averaged-sgd=false", "--lr-schedule=constant", *extra)
    assert p.returncode == 0, p.stderr
    run_cmd(["nnet-train-simple", *common, f"{data}/0.nnet", f"scp:{data}/a1/feats.scp", f"ark:{data}/a1/ali.ark",
             str(data / f"simple_{name}")])
    a, b = read_nnet(str(data / f"one_{name}")).params, read_nnet(str(data / f"simple_{name}")).params
    np.testing.assert_allclose(a, b, rtol=2e-4, atol=2e-6)
    if extra:
        plain = read_nnet(str(data / "simple_plain")).params if (data / "simple_plain").exists() else None
        if plain is not None:
            assert np.abs(a - plain).max() > 1e-3  # the options really acted


def test_chunk_search_starts_from_the_previous_rate_over_0618(monkeypatch):
    """CNTK's first candidate for a new chunk is the previous rate / 0.618 (not / 0.618^2): with a
    search that accepts its first candidate the rate grows at most 1.618x per chunk."""
    import numpy as np
    from nnetavg.parallel import asgd_training
    from nnetavg.train.lr_search import SearchResult
    from nnetavg.train.schedules import ConstantRate

    tried = []

    def accept_first(net, x, t, start_lr, minibatch, seed=0, max_lr=float("inf")):
        tried.append(start_lr)
        return SearchResult(min(start_lr, max_lr), 1.0, 0.9, 1)

    monkeypatch.setattr(asgd_training, "search_learning_rate", accept_first)
    search = asgd_training.ChunkRateSearch.__new__(asgd_training.ChunkRateSearch)
    search.x, search.t = np.zeros((100, 2), np.float32), np.zeros(100, np.int32)
    search.n, search.minibatch, search.max_lr = 20, 4, 100.0
    search.schedule = ConstantRate(0.01)
    for i in range(4):
        search(i, None)
    np.testing.assert_allclose(tried, [0.01, 0.01 / 0.618, 0.01 / 0.618 ** 2, 0.01 / 0.618 ** 3], rtol=1e-12)
    assert all(b / a < 1.62 for a, b in zip(tried, tried[1:]))


def test_asgd_default_cv_check_reaches_the_polyak_phase(tmp_path):
    """The command's default --cv-check-every compares average and current model during the pass
    (every 200 updates), so a run with CV data switches to the Polyak average once the average wins
    (with the old default, 0, it never could)."""
    for j in (1, 2):
        make_labelled_data(tmp_path, num_utts=200, seed=j, name=f"a{j}")
    make_labelled_data(tmp_path, num_utts=12, seed=99, name="cv")
    run_cmd(["nnet-init", "--input-dim=6", "--output-dim=5", "--hidden-layers=1", "--hidden-dim=24", f"{tmp_path}/0.nnet"])
    p = asgd(3, tmp_path, tmp_path / "polyak", f"--cv-feats=scp:{tmp_path}/cv/feats.scp",
             f"--cv-ali=ark:{tmp_path}/cv/ali.ark", "--asgd-eta=0.2", "--learn-rate=0.05")
    assert p.returncode == 0, p.stderr
    # the checks happen every 200 updates until the average wins (which model wins when depends on
    # the order the workers' gradients arrive in: not asserted)
    checks = [int(v) for v in re.findall(r"CV check after (\d+) updates: current model \S+, average \S+", p.stderr)]
    applied = int(re.search(r"server gradients-applied=(\d+)", p.stderr).group(1))
    m = re.search(r"the average .* beats the current model .* after (\d+) minibatches; plain Polyak", p.stderr)
    assert checks == list(range(200, 200 * len(checks) + 1, 200)) and checks, p.stderr
    if m:
        assert int(m.group(1)) == checks[-1]           # switched at the last check, none after
    else:
        assert checks[-1] > applied - 200              # no switch: checked to the end


@pytest.mark.parametrize("device", ["cupy"])
def test_asgd_use_gpu_reaches_the_device_path(data, device):
    """--use-gpu yes: every rank's model is a CuPy array (the server's update and the workers'
    steps run on the GPU, messages staged through the host). Skipped without a usable GPU."""
    from tests.conftest import _cupy_or_reason
    cupy, reason = _cupy_or_reason()
    if cupy is None:
        pytest.skip(reason)
    p = asgd(3, data, data / "gpu", "--use-gpu=yes", "--verbose=1")
    assert p.returncode == 0, p.stderr
    assert "server gradients-applied=" in p.stderr and (data / "gpu").exists()


def test_cv_check_on_a_sample_in_memory(tmp_path):
    """The server's periodic CV check (--cv-check-frames): the cross-entropy per frame on the first
    N CV frames, equal to the full evaluation when N covers the set, and to the same figure computed
    directly on the first N frames otherwise."""
    import numpy as np
    from nnetavg.data.utterances import DataStats, labelled_utterances
    from nnetavg.io.nnet1 import read_nnet
    from nnetavg.parallel.asgd_training import _cv_check
    from nnetavg.train.lr_search import mean_cross_entropy
    from nnetavg.train.trainer import evaluate
    make_labelled_data(tmp_path, num_utts=12, seed=99, name="cv")
    run_cmd(["nnet-init", "--input-dim=6", "--output-dim=5", "--hidden-layers=1", "--hidden-dim=24", f"{tmp_path}/0.nnet"])
    net = read_nnet(str(tmp_path / "0.nnet"))
    feats, ali = f"scp:{tmp_path}/cv/feats.scp", f"ark:{tmp_path}/cv/ali.ark"
    full = evaluate(net, feats, ali, None)
    assert _cv_check(net, feats, ali, None, 10 ** 9)(net) == pytest.approx(full.cross_entropy, rel=1e-5)
    assert _cv_check(net, feats, ali, None, 0)(net) == pytest.approx(full.cross_entropy, rel=1e-6)
    xs, ts = zip(*[(x, t) for _, x, t in labelled_utterances(feats, ali, 5, 6, None, DataStats())])
    x, t = np.concatenate(xs)[:37], np.concatenate(ts)[:37]
    assert _cv_check(net, feats, ali, None, 37)(net) == pytest.approx(mean_cross_entropy(net, x, t), rel=1e-6)
    assert abs(mean_cross_entropy(net, x, t) - full.cross_entropy) > 1e-6  # a real subset


def test_server_update_momentum_l2_and_limits_against_nnet1_formulas():
    """Two gradients through ServerUpdate with momentum, L2 (affine weights only, x lr x N) and a
    max-param-change, against the formulas written out here; and the collector's gradient is what
    SGD would step along, learning-rate coefficients included."""
    from nnetavg.nnet.components import AffineTransform
    from nnetavg.nnet.network import Network
    from nnetavg.nnet.proto import init_from_proto, make_proto
    from nnetavg.parallel.server import GradientCollector, ServerUpdate
    from nnetavg.train.optim import SGD, SGDOptions
    from nnetavg.train.trainer import TrainOptions

    net = Network(init_from_proto(make_proto(4, 3, 1, 5), seed=2), dtype=np.float64)
    is_w = np.zeros_like(net.params)
    for comp, views in zip(net.components, net.views(is_w)):
        if isinstance(comp, AffineTransform):
            views["linearity"][...] = 1
    assert 0 < is_w.sum() < len(is_w)          # biases are not decayed
    rng = np.random.default_rng(3)
    g1, g2 = rng.standard_normal((2, len(net.params)))
    p = net.params.copy()
    up = ServerUpdate(net, SGDOptions(momentum=0.5, l2_penalty=1e-3))
    up(g1.copy(), 0.1, 32)
    up(g2.copy(), 0.05, 16)
    p = p - 0.1 * 1e-3 * 32 * is_w * p
    v = g1
    p = p - 0.1 * v
    p = p - 0.05 * 1e-3 * 16 * is_w * p
    v = 0.5 * v + g2
    p = p - 0.05 * v
    np.testing.assert_allclose(net.params, p, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(up.state()["velocity"], v, rtol=1e-12)
    # a model-wide limit: the change of one update is scaled to exactly max-param-change
    before = net.params.copy()
    lim = ServerUpdate(net, SGDOptions(), limits=TrainOptions(max_param_change=1e-3))
    lim(g1.copy(), 1.0, 32)
    assert np.linalg.norm(net.params - before) == pytest.approx(1e-3, rel=1e-9)
    np.testing.assert_allclose((before - net.params) / np.linalg.norm(before - net.params),
                               g1 / np.linalg.norm(g1), rtol=1e-9)
    assert lim.limiter.model_limited == 1 and lim.updates == 1
    # the collector's gradient, applied at rate lr, is SGD's step (coefficients included)
    net.components[0].lr_coef, net.components[0].bias_lr_coef = 0.5, 2.0
    x, t = rng.standard_normal((8, 4)), rng.integers(0, 3, 8)
    col = GradientCollector(net)
    acts = net.forward_train(x)
    dy = acts[-1].copy()
    dy[np.arange(8), t] -= 1
    net.backward(acts, dy, lambda i, c, xx, yy, d: col.update(i, c, xx, yy, d, 0.0))
    ref = net.copy()
    sgd = SGD(ref)
    acts = ref.forward_train(x)
    ref.backward(acts, dy.copy(), lambda i, c, xx, yy, d: sgd.update(i, c, xx, yy, d, 0.01))
    np.testing.assert_allclose(net.params - 0.01 * col.flat, ref.params, rtol=1e-12, atol=1e-15)
    col.reset()
    assert not col.flat.any()


def test_server_update_state_counters_component_limits_and_vector_gradients(caplog):
    import logging

    from nnetavg.nnet.components import AddShift, AffineTransform, Softmax
    from nnetavg.nnet.network import Network
    from nnetavg.parallel.server import GradientCollector, ServerUpdate
    from nnetavg.train.optim import SGDOptions
    from nnetavg.train.trainer import TrainOptions

    rng = np.random.default_rng(4)
    shift = AddShift(3, 3, learn_rate_coef=0.5)
    aff = AffineTransform(3, 2)
    aff.init = {"linearity": rng.standard_normal((2, 3)), "bias": rng.standard_normal(2)}
    net = Network([shift, aff, Softmax(2, 2)], dtype=np.float64)
    # the collector: <AddShift>'s gradient times its coefficient
    col = GradientCollector(net)
    x, dy = rng.standard_normal((5, 3)), rng.standard_normal((5, 3))
    col.update(0, shift, x, x + shift.params["shift"], dy, 0.0)
    np.testing.assert_allclose(col.views[0]["shift"], 0.5 * dy.sum(axis=0), rtol=1e-14)
    # no momentum: no state; with momentum: the velocity round-trips
    assert ServerUpdate(net, SGDOptions()).state() == {}
    up = ServerUpdate(net, SGDOptions(momentum=0.5))
    g = rng.standard_normal(len(net.params))
    up(g.copy(), 0.01, 5)
    twin = ServerUpdate(net.copy(), SGDOptions(momentum=0.5))
    twin.load_state(up.state())
    np.testing.assert_array_equal(twin.velocity, up.velocity)
    ServerUpdate(net, SGDOptions()).load_state(up.state())      # a velocity for an update without: ignored
    # a per-component limit, and the limiter told the update's number
    lim = ServerUpdate(net, SGDOptions(), limits=TrainOptions(max_change=1e-3))
    with caplog.at_level(logging.INFO, logger="nnetavg.train.trainer"):
        for _ in range(2):
            before = net.params.copy()
            lim(g.copy(), 1.0, 5)
    assert lim.updates == 2
    for i, a, b in net.param_ranges():
        limit = 1e-3 * (2 if i == net.param_ranges()[-1][0] else 1)
        assert np.linalg.norm(net.params[a:b] - before[a:b]) == pytest.approx(limit, rel=1e-9)
    assert [r.getMessage().split(":")[1] for r in caplog.records] == [" minibatch 1", " minibatch 2"]
