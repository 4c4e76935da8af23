"""nnet-average semantics: identity on copies, the mean of two, weights, and refusals."""

import numpy as np
import pytest

from nnetavg.errors import NnetavgError, TopologyError
from nnetavg.io.nnet1 import write_nnet
from nnetavg.nnet.network import Network
from nnetavg.nnet.proto import init_from_proto, make_proto
from nnetavg.parallel.averaging import average_model_files


def model(tmp_path, name, seed, hidden=8):
    net = Network(init_from_proto(make_proto(5, 3, 1, hidden), seed=seed))
    path = str(tmp_path / name)
    write_nnet(net, path)
    return net, path


def test_average_of_copies_is_identity(tmp_path):
    net, p = model(tmp_path, "a", 1)
    avg = average_model_files([p] * 7)
    np.testing.assert_allclose(avg.params, net.params, rtol=1e-6, atol=1e-7)
    assert avg.topology() == net.topology()


def test_average_of_two_is_the_mean_and_weights_normalise(tmp_path):
    n1, p1 = model(tmp_path, "a", 1)
    n2, p2 = model(tmp_path, "b", 2)
    np.testing.assert_allclose(average_model_files([p1, p2]).params, (n1.params + n2.params) / 2, rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(average_model_files([p1, p2], [3, 1]).params, 0.75 * n1.params + 0.25 * n2.params,
                               rtol=1e-6, atol=1e-7)


def test_refuses_other_topologies_and_nan(tmp_path):
    _, p1 = model(tmp_path, "a", 1)
    _, p2 = model(tmp_path, "b", 2, hidden=9)
    with pytest.raises(TopologyError, match=r"b does not match .*a: component 1 is <AffineTransform> 5->8 .* 5->9"):
        average_model_files([p1, p2])
    bad, p3 = model(tmp_path, "c", 3)
    bad.params[0] = np.nan
    # bypass the writer's own refusal to simulate a corrupted job output
    from nnetavg.io.nnet1 import write_nnet_to
    with open(p3, "wb") as f:
        write_nnet_to(f, bad)
    with pytest.raises(NnetavgError, match="c: the model has NaN"):
        average_model_files([p1, p3])
    with pytest.raises(NnetavgError, match="2 weights for 3"):
        average_model_files([p1, p1, p1], [1, 2])


def test_successful_models_leaves_out_failed_nan_and_outliers(tmp_path, caplog):
    import logging

    from nnetavg.parallel.averaging import successful_models

    done = "LOG (nnet-train-simple rank 0/1 10:00:00) done minibatches=10 learn-rate=0.01 frames=2560 " \
           "cross-entropy={} frame-accuracy=0.5 frames-per-sec=1000\n"
    cases = {1: "1.20", 2: "1.35", 3: "nan", 4: "2.50", 5: "1.10", 6: None}  # 6: the job failed, no model
    logs, models = [], []
    for j, ce in cases.items():
        lg, m = tmp_path / f"train.{j}.log", tmp_path / f"{j}.nnet"
        lg.write_text("# header\n" + (done.format(ce) if ce else "ERROR something went wrong\n"))
        if ce:
            m.write_text("model")
        logs.append(str(lg))
        models.append(str(m))
    with caplog.at_level(logging.WARNING):
        keep = successful_models(logs, models, max_gap=1.0)
    assert keep == [0, 1, 4]  # jobs 1, 2, 5; 3 is NaN, 4 is 1.4 worse than the best, 6 failed
    text = caplog.text
    assert "job 3: no finite objective" in text and "job 4: cross-entropy 2.5000" in text and "job 6: no model" in text
    with pytest.raises(NnetavgError, match="no successful job"):
        successful_models(logs[2:3] + logs[5:], models[2:3] + models[5:])


def test_block_momentum_zero_means_zero_and_minus_one_the_default():
    """--block-momentum 0 is no block momentum (eta = 0), not the default; -1 asks for 1 - 1/ranks."""
    from nnetavg.parallel.comm import PeriodicMixer

    class FourRanks:
        size = 4

        def check_mixing(self, method):
            pass

    assert PeriodicMixer(FourRanks(), "bmuf", 2, block_momentum=0.0)._bmuf_args[0] == 0.0
    assert PeriodicMixer(FourRanks(), "bmuf", 2)._bmuf_args[0] == pytest.approx(0.75)
    assert PeriodicMixer(FourRanks(), "bmuf", 2, block_momentum=0.5)._bmuf_args[0] == 0.5


def test_weights_zero_allowed_negative_or_all_zero_refused_and_float32_kept(tmp_path):
    n1, p1 = model(tmp_path, "a", 1)
    n2, p2 = model(tmp_path, "b", 2)
    avg = average_model_files([p1, p2], [0.25, 0.5])   # sum 0.75: normalised to 1/3, 2/3
    assert avg.params.dtype == np.float32
    np.testing.assert_allclose(avg.params, (n1.params + 2 * n2.params) / 3, rtol=1e-6, atol=1e-7)
    ref = n1.params * np.float32(1 / 3)   # the same float32 arithmetic, bit for bit (no float64 detour)
    ref += np.float32(2 / 3) * n2.params
    np.testing.assert_array_equal(avg.params, ref)
    np.testing.assert_allclose(average_model_files([p1, p2], [0.0, 1.0]).params, n2.params, rtol=0, atol=0)
    for bad in ([-1.0, 2.0], [0.0, 0.0]):
        with pytest.raises(NnetavgError, match="^weights must be non-negative and not all zero$"):
            average_model_files([p1, p2], bad)
    with pytest.raises(NnetavgError, match="^no models to average$"):
        average_model_files([])
    first, p0 = model(tmp_path, "first", 3)
    first.params[1] = np.inf
    from nnetavg.io.nnet1 import write_nnet_to
    with open(p0, "wb") as f:
        write_nnet_to(f, first)
    with pytest.raises(NnetavgError, match=f"^{p0}: the model has NaN or infinite parameters"):
        average_model_files([p0, p1])


DONE = ("LOG (nnet-train-simple rank 0/1 10:00:00) done minibatches=10 learn-rate=0.01 frames=2560 "
        "cross-entropy={} frame-accuracy=0.5 frames-per-sec=1000\n")


def _job(tmp_path, j, body, model=True):
    """A job's log as the launcher writes it (header, progress lines, the done line, trailer)."""
    lg, m = tmp_path / f"train.{j}.log", tmp_path / f"{j}.nnet"
    if body is not None:
        lg.write_text("# nnet-train-simple ...\n# started-unix=1.0\n"
                      "LOG (nnet-train-simple rank 0/1 10:00:00) progress frames=256 cross-entropy=0.01\n"
                      + body + "# elapsed-seconds=1.5\n# Accounting: time=2 threads=1\n")
    if model:
        m.write_text("model")
    return str(lg), str(m)


def test_successful_models_every_reason_and_its_message(tmp_path, caplog):
    import logging

    from nnetavg.parallel.averaging import successful_models

    jobs = [_job(tmp_path, 1, None, model=False),             # failed: no model, no log
            _job(tmp_path, 2, DONE.format("1.0")),              # the best
            _job(tmp_path, 3, DONE.format("2.0")),              # exactly max_gap (1.0, the default) worse: kept
            _job(tmp_path, 4, "ERROR the job died\n"),           # a model but no done line
            _job(tmp_path, 5, DONE.replace("cross-entropy={} ", "")),  # a done line without the objective
            _job(tmp_path, 6, None),                             # a model but no log at all
            _job(tmp_path, 7, DONE.format("2.01")),             # more than max_gap worse
            _job(tmp_path, 8, DONE.format("1.9"))]
    logs, models = [j[0] for j in jobs], [j[1] for j in jobs]
    with caplog.at_level(logging.WARNING, logger="nnetavg.parallel.averaging"):
        assert successful_models(logs, models) == [1, 2, 7]
    msgs = [r.getMessage() for r in caplog.records]
    assert msgs == [
        f"job 1: no model {models[0]} (the job failed; see {logs[0]}): left out of the average",
        f"job 4: no finite objective in {logs[3]}: {models[3]} left out of the average",
        f"job 5: no finite objective in {logs[4]}: {models[4]} left out of the average",
        f"job 6: no finite objective in {logs[5]}: {models[5]} left out of the average",
        f"job 7: cross-entropy 2.0100 is worse than the best job's 1.0000 by more than 1: {models[6]} left out "
        f"of the average"]
    assert successful_models(logs, models, max_gap=2.0) == [1, 2, 6, 7]
    with pytest.raises(NnetavgError, match=rf"^no successful job among 2: nothing to average \(see {logs[0]} ...\)$"):
        successful_models(logs[:1] + logs[3:4], models[:1] + models[3:4])


def _bmuf_reference(w0, block_avgs, eta, zeta, nesterov):
    """Chen & Huo's filter in plain Python floats, one scalar parameter per entry: returns the model
    each block starts from and the global model after every block. ``block_avgs(w_start)`` is the
    averaged model after a block that started at ``w_start``."""
    wg, D, start = list(w0), [0.0] * len(w0), list(w0)
    starts, globals_ = [], []
    for avg_fn in block_avgs:
        avg = avg_fn(start)
        G = [a - s for a, s in zip(avg, start)]
        D = [eta * d + zeta * g for d, g in zip(D, G)]
        wg = [w + d for w, d in zip(wg, D)]
        start = [w + eta * d for w, d in zip(wg, D)] if nesterov else list(wg)
        starts.append(start)
        globals_.append(list(wg))
    return starts, globals_


@pytest.mark.parametrize("eta,zeta,nesterov", [(0.75, 1.0, True), (0.75, 1.0, False), (0.5, 0.6, True),
                                               (0.0, 1.0, True)])
def test_block_momentum_matches_the_filter_of_the_paper(eta, zeta, nesterov):
    from nnetavg.parallel.bmuf import BlockMomentum

    w0 = [0.5, -1.0, 2.0]
    # every block moves each parameter by a different, start-dependent amount (a gradient step on a quadratic)
    blocks = [lambda s, k=k: [x - 0.1 * (k + 1) * (x - t) for x, t in zip(s, (1.0, 0.0, -1.0))] for k in range(5)]
    starts, globals_ = _bmuf_reference(w0, blocks, eta, zeta, nesterov)
    params = np.array(w0)
    bm = BlockMomentum(params, eta, zeta, nesterov=nesterov)
    bm.start(params)
    for k, block in enumerate(blocks):
        buf = np.array(block(list(params)))
        bm(buf)
        np.testing.assert_allclose(buf, starts[k], rtol=1e-13, atol=1e-15)
        np.testing.assert_allclose(bm.global_, globals_[k], rtol=1e-13, atol=1e-15)
        params = buf
    out = np.zeros(3)
    bm.finish(out)
    np.testing.assert_allclose(out, globals_[-1], rtol=1e-13)
    # the state carries the filter exactly: a restored copy continues as the original does
    again = BlockMomentum(np.zeros(3), eta, zeta, nesterov=nesterov)
    again.load_state(bm.state())
    a, b = np.array([0.1, 0.2, 0.3]), np.array([0.1, 0.2, 0.3])
    bm(a)
    again(b)
    np.testing.assert_array_equal(a, b)
    if nesterov and eta:
        assert not np.allclose(starts[-1], globals_[-1])   # the look-ahead acted


def test_block_momentum_refusals_and_default():
    from nnetavg.parallel.bmuf import BlockMomentum, default_block_momentum

    assert default_block_momentum(1) == 0.0 and default_block_momentum(0) == 0.0
    assert default_block_momentum(8) == 0.875
    for eta in (-0.1, 1.0):
        with pytest.raises(NnetavgError, match=rf"^--block-momentum must be in \[0, 1\), not {eta}$"):
            BlockMomentum(np.zeros(2), eta)
    BlockMomentum(np.zeros(2), 0.0)
    for zeta in (0.0, -1.0):
        with pytest.raises(NnetavgError, match=f"^--block-learning-rate must be positive, not {zeta}$"):
            BlockMomentum(np.zeros(2), 0.5, zeta)
    with pytest.raises(NnetavgError, match="^the checkpoint has no block-momentum state: it was written with "
                                           "another --mixing$"):
        BlockMomentum(np.zeros(2), 0.5).load_state({})
    bm = BlockMomentum(np.zeros(2), 0.5)   # the paper's filter unless told otherwise: zeta 1, Nesterov
    assert bm.zeta == 1.0 and bm.nesterov is True


def test_nnet_average_with_job_logs_averages_the_successful_jobs_only(tmp_path):
    """nnet-average --job-logs: the jobs nnet-successful-models keeps are averaged (a failed job,
    one with NaN, an outlier left out with warnings); none left: an error; --weights refused."""
    from tests.conftest import run_cmd
    done = "LOG (nnet-train-simple rank 0/1 10:00:00) done minibatches=10 learn-rate=0.01 frames=2560 " \
           "cross-entropy={} frame-accuracy=0.5 frames-per-sec=1000\n"
    nets, paths = [], []
    for j, ce in enumerate(["1.2", "nan", "1.3", "3.0", None], 1):   # 5: failed, no model
        (tmp_path / f"train.{j}.log").write_text("# x\n" + (done.format(ce) if ce else "ERROR\n"))
        if ce:
            net, p = model(tmp_path, f"{j}.nnet", j)
            nets.append(net)
        paths.append(str(tmp_path / f"{j}.nnet"))
    p = run_cmd(["nnet-average", f"--job-logs={tmp_path}/train.JOB.log", "--max-gap=1.0", *paths, str(tmp_path / "avg")])
    from nnetavg.io.nnet1 import read_nnet
    np.testing.assert_allclose(read_nnet(str(tmp_path / "avg")).params, (nets[0].params + nets[2].params) / 2,
                               rtol=1e-6, atol=1e-7)
    assert "job 2: no finite objective" in p.stderr and "job 4: cross-entropy 3.0000" in p.stderr
    assert "job 5: no model" in p.stderr and "averaged 2 models" in p.stderr
    (tmp_path / "bad.1.log").write_text("# x\n" + done.format("nan"))   # JOB is the position among the models
    (tmp_path / "bad.2.log").write_text("# x\nERROR\n")
    bad = run_cmd(["nnet-average", f"--job-logs={tmp_path}/bad.JOB.log", paths[1], paths[4], str(tmp_path / "x")],
                  check=False)
    assert bad.returncode != 0 and "no successful job among 2" in bad.stderr and not (tmp_path / "x").exists()
    w = run_cmd(["nnet-average", "--weights=1:1", f"--job-logs={tmp_path}/train.JOB.log", *paths[:2],
                 str(tmp_path / "y")], check=False)
    assert w.returncode != 0 and "--weights and --job-logs do not go together" in w.stderr


def test_nnet_learning_rate_range_prints_a_line_per_iteration():
    from tests.conftest import run_cmd
    args = ["nnet-learning-rate", "--initial=0.008", "--final=0.0008", "--num-jobs=4", "--change-limits-for=sgd"]
    table = run_cmd([*args, "0:7", "8"]).stdout.splitlines()
    assert table == [run_cmd([*args, str(x), "8"]).stdout.strip() for x in range(8)]
    assert table[0] == "0.032 0.75 2" and table[-1] == "0.0032 0.75 2"
    bad = run_cmd([*args, "1:x", "8"], check=False)
    assert bad.returncode != 0 and "ITER must be a number or FIRST:LAST, not '1:x'" in bad.stderr
