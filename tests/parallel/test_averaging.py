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
