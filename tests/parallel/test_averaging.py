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
