"""Averaged SGD: the running average and the Polyak average against their closed forms."""

import numpy as np
import pytest

from nnetavg.nnet.network import Network
from nnetavg.nnet.proto import init_from_proto, make_proto
from nnetavg.train.iterate_averaging import IterateAverager


def test_running_then_polyak_average_equal_their_closed_forms():
    net = Network(init_from_proto(make_proto(3, 2, 1, 4)), dtype=np.float64)
    rng = np.random.default_rng(0)
    theta0 = net.params.copy()
    av = IterateAverager(net, eta=0.1)
    iterates = [rng.standard_normal(net.num_params) for _ in range(7)]
    expect = theta0.copy()
    for i, th in enumerate(iterates[:3], 1):
        net.params[:] = th
        av(i, net)
        expect = 0.9 * expect + 0.1 * th
    np.testing.assert_allclose(av.avg, expect, rtol=1e-12)
    assert not av.consider_switch(2.0, 1.5) and av.consider_switch(1.4, 1.5)
    running = av.avg.copy()
    for i, th in enumerate(iterates[3:], 4):
        net.params[:] = th
        av(i, net)
    # the Polyak average is the plain mean of the running average (as first element) and later iterates
    np.testing.assert_allclose(av.avg, np.mean([running] + iterates[3:], axis=0), rtol=1e-12)
    assert av.count == 5 and av.updates == 7


def test_swap_exchanges_model_and_average():
    net = Network(init_from_proto(make_proto(3, 2, 1, 4)))
    av = IterateAverager(net)
    net.params[:] = 1.0
    before_avg = av.avg.copy()
    av.swap()
    np.testing.assert_array_equal(net.params, before_avg)
    np.testing.assert_array_equal(av.avg, 1.0)
    av.swap()
    np.testing.assert_array_equal(net.params, 1.0)
    with pytest.raises(ValueError):
        IterateAverager(net, eta=0)


def test_no_polyak_switch_before_min_updates():
    """A CV check that favours the average early (a plateau near chance) does not start the Polyak
    phase before ``min_updates``; the first check after it does."""
    import numpy as np
    from nnetavg.train.iterate_averaging import IterateAverager

    class Net:
        xp = np
        params = np.zeros(3)

    net = Net()
    avg = IterateAverager(net, eta=0.5, min_updates=10)
    for t in range(9):
        net.params = np.full(3, float(t))
        avg(t, net)
        assert not avg.consider_switch(1.0, 2.0)
    net.params = np.full(3, 9.0)
    avg(9, net)
    assert avg.consider_switch(1.0, 2.0) and avg.count == 1
    net.params = np.full(3, 100.0)
    before = avg.avg.copy()
    avg(10, net)
    np.testing.assert_allclose(avg.avg, before + (100.0 - before) / 2)  # Polyak: the 2nd iterate of the mean
