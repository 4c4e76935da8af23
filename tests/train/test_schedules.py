"""Newbob's decisions on scripted CV sequences, written out by hand from nnet1's scheduler."""

import pytest

from nnetavg.train.schedules import NewbobSchedule


def run(losses, **kw):
    nb = NewbobSchedule(0.008, **kw)
    nb.start(10.0)
    out = []
    for i, loss in enumerate(losses, 1):
        acc = nb.after_iteration(i, loss)
        out.append((acc, nb.state["learn_rate"], nb.state["best_iter"], nb.state["stop"]))
        if nb.state["stop"]:
            break
    return out


def test_accept_reject_halve_stop():
    # 10 -> 5 (50% better), 4 (20%), 3.99 (0.25% < 1%: start halving), 4.5 (rejected: rel 0 < 0.1% while
    # halving: stop, without halving again)
    out = run([5.0, 4.0, 3.99, 4.5])
    assert out == [(True, 0.008, 1, False), (True, 0.008, 2, False), (True, 0.004, 3, False),
                   (False, 0.004, 3, True)]


def test_halving_continues_until_improvement_is_tiny():
    out = run([9.0, 8.95, 8.90, 8.8999])
    # 8.95: 0.56% -> halving; 8.90: 0.56% > 0.1%: keep going, halve again; 8.8999: 0.001% -> stop
    assert [o[1] for o in out] == [0.008, 0.004, 0.002, 0.002]
    assert out[-1][3] and out[-1][2] == 4


def test_keep_lr_iters_and_min_iters_and_max_iters():
    out = run([12.0, 11.0, 10.9], keep_lr_iters=2)
    assert out[0][0] and out[1][0]            # worse, but accepted while iteration <= keep_lr_iters
    assert out[0][1] == out[1][1] == 0.008   # no halving logic while keeping the rate
    out = run([10.5, 10.6, 10.7], min_iters=2)
    assert out[0][0] and out[1][0] and not out[2][0]
    # halving and no improvement before min_iters: neither stop nor halve (nnet1's "continue")
    out = run([9.99, 9.98, 9.98, 9.98], min_iters=3)
    assert [(o[1], o[3]) for o in out] == [(0.004, False), (0.002, False), (0.002, False), (0.002, True)]
    out = run([9.0, 8.0, 7.0, 6.0], max_iters=3)
    assert len(out) == 3 and out[-1][3]


def test_misuse():
    nb = NewbobSchedule(0.1)
    with pytest.raises(ValueError):
        nb.after_iteration(1, 1.0)
    nb.start(2.0)
    with pytest.raises(ValueError):
        nb.after_iteration(2, 1.0)


def test_per_minibatch_schedules_closed_forms():
    from nnetavg.train.schedules import MinibatchDecay, XuRate, make_schedule
    d = MinibatchDecay(0.01, 0.999)
    assert d.learning_rate(0, 0) == 0.01 and d.learning_rate(1000, 0) == pytest.approx(0.01 * 0.999 ** 1000)
    x = XuRate(0.02, a=0.5, c=0.75)
    assert x.learning_rate(0, 0) == 0.02
    assert x.learning_rate(400, 0) == pytest.approx(0.02 * (1 + 0.5 * 0.02 * 400) ** -0.75)
    assert make_schedule("constant", 0.3).learning_rate(99, 0) == 0.3
    with pytest.raises(ValueError):
        make_schedule("cosine", 0.1)


def test_trainer_asks_the_schedule_every_minibatch():
    import numpy as np
    from nnetavg.nnet.network import Network
    from nnetavg.nnet.proto import init_from_proto, make_proto
    from nnetavg.train.optim import SGD
    from nnetavg.train.trainer import Trainer, TrainOptions
    net = Network(init_from_proto(make_proto(4, 3, 1, 5)), dtype=np.float64)
    ref = net.copy()
    tr = Trainer(net, SGD(net), TrainOptions(learn_rate=0.01, lr_schedule="minibatch-decay", lr_decay=0.9))
    rng = np.random.default_rng(0)
    for k in range(5):
        x, t = rng.standard_normal((8, 4)), rng.integers(0, 3, 8)
        tr.step(x, t)
        # the same minibatch through a constant-rate trainer at the rate the schedule gives step k
        Trainer(ref, SGD(ref), TrainOptions(learn_rate=0.01 * 0.9 ** k)).step(x, t)
        np.testing.assert_allclose(net.params, ref.params, rtol=1e-12, atol=1e-15)
    assert tr.last_lr == pytest.approx(0.01 * 0.9 ** 4)


def test_exponential_rate_closed_form_and_its_domain():
    from nnetavg.train.schedules import exponential_rate
    assert exponential_rate(2.0, 0.5, 0, 4) == 2.0                           # rates above 1 are fine
    assert exponential_rate(2.0, 0.5, 1, 4) == pytest.approx(2.0 * 0.25 ** 0.25)
    assert exponential_rate(2.0, 0.5, 2, 4) == pytest.approx(2.0 * 0.25 ** 0.5)
    assert exponential_rate(2.0, 0.5, 3, 4) == 0.5                           # the last iteration: final
    assert exponential_rate(0.3, 0.3, 0, 1) == 0.3
    for bad in ((0.0, 0.1, 0, 3), (0.1, 0.0, 0, 3), (-1.0, 0.1, 0, 3), (0.1, -1.0, 0, 3)):
        with pytest.raises(ValueError, match="learning rates must be positive"):
            exponential_rate(*bad)
    for it, n in ((-1, 3), (3, 3), (0, 0)):
        with pytest.raises(ValueError, match=f"iteration {it} outside 0..{n - 1}"):
            exponential_rate(0.1, 0.01, it, n)


def test_default_change_limits_rule():
    from nnetavg.train.schedules import default_change_limits
    assert default_change_limits("sgd", 2, True) == (0.75, 2.0)
    assert default_change_limits("sgd", 64, True) == (0.75, 2.0)
    for args in (("sgd", 1, True), ("sgd", 8, False), ("ngsgd", 8, True), ("ngsgd", 1, False)):
        assert default_change_limits(*args) == (0.0, 0.0), args


# ---- exact behaviour at the boundaries (each assertion kills a mutant that the tests above let live)

def test_schedule_errors_say_what_is_wrong():
    from nnetavg.train.schedules import MinibatchDecay, NewbobSchedule, XuRate, exponential_rate, make_schedule

    with pytest.raises(ValueError, match=r"^learning rates must be positive$"):
        exponential_rate(0.0, 0.1, 0, 2)
    nb = NewbobSchedule(0.1)
    with pytest.raises(ValueError, match=r"^call start\(\) with the initial model's CV loss first$"):
        nb.after_iteration(1, 1.0)
    nb.start(1.0)
    with pytest.raises(ValueError, match=r"^iteration 2 after 0$"):
        nb.after_iteration(2, 1.0)
    for bad in (0.0, 1.5):
        with pytest.raises(ValueError, match=r"^the per-minibatch decay must be in \(0, 1\]$"):
            MinibatchDecay(0.1, bad)
    assert MinibatchDecay(0.1, 1.0).learning_rate(7, 0) == 0.1
    for a, c in ((-1.0, 1.0), (1.0, -1.0)):
        with pytest.raises(ValueError, match=r"^a and c must be non-negative$"):
            XuRate(0.1, a, c)
    assert XuRate(0.1, 0.0, 0.0).learning_rate(5, 0) == 0.1
    with pytest.raises(ValueError, match=r"^--lr-schedule must be constant, minibatch-decay or xu, not 'XU'$"):
        make_schedule("XU", 0.1)


def test_per_minibatch_schedules_defaults_are_the_papers():
    from nnetavg.train.schedules import MinibatchDecay, XuRate, make_schedule

    assert MinibatchDecay(0.1).learning_rate(2, 0) == 0.1 * 0.999 ** 2
    assert XuRate(0.1).learning_rate(4, 0) == 0.1 * (1 + 1.0 * 0.1 * 4) ** -0.75
    d = make_schedule("minibatch-decay", 0.2)
    assert isinstance(d, MinibatchDecay) and d.learning_rate(3, 0) == 0.2 * 0.999 ** 3
    x = make_schedule("xu", 0.2)
    assert isinstance(x, XuRate) and x.learning_rate(4, 0) == 0.2 * (1 + 0.2 * 4) ** -0.75
    x = make_schedule("xu", 0.2, xu_a=3.0, xu_c=0.5)
    assert x.learning_rate(4, 0) == 0.2 * (1 + 3.0 * 0.2 * 4) ** -0.5


def test_newbob_decisions_at_their_boundaries():
    from nnetavg.train.schedules import NewbobSchedule

    nb = NewbobSchedule(0.1)
    assert nb.learning_rate() == 0.1 and nb.state["best_iter"] == 0
    nb.start(1.0)
    # an equal CV loss is not an improvement: rejected; best stays the initial model; no
    # improvement (0 < 0.01) starts halving
    assert nb.after_iteration(1, 1.0) is False
    assert nb.state["best_iter"] == 0 and nb.state["halving"] and nb.learning_rate() == 0.05
    assert nb.state["history"] == [{"iteration": 1, "cv_loss": 1.0, "accepted": False, "learn_rate": 0.1}]

    # an improvement of exactly start_halving_impr does not start halving (strictly less does)
    nb = NewbobSchedule(0.1, start_halving_impr=0.25, end_halving_impr=0.125)
    nb.start(1.0)
    assert nb.after_iteration(1, 0.75) and not nb.state["halving"] and nb.learning_rate() == 0.1
    assert nb.after_iteration(2, 0.75 * 0.875) and nb.state["halving"] and nb.learning_rate() == 0.05   # 0.125 < 0.25
    # once halving, an improvement of exactly end_halving_impr does not stop (strictly less does)
    loss = nb.state["loss"]
    assert nb.after_iteration(3, loss * 0.875) and not nb.state["stop"]
    assert nb.after_iteration(4, nb.state["loss"] * 0.9) and nb.state["stop"]

    # keep_lr_iters: up to and including that iteration, any model is accepted and the rate kept
    nb = NewbobSchedule(0.1, keep_lr_iters=2)
    nb.start(1.0)
    assert nb.after_iteration(1, 2.0) and nb.after_iteration(2, 2.0)
    assert nb.learning_rate() == 0.1 and not nb.state["halving"] and nb.state["best_iter"] == 2
    assert nb.after_iteration(3, 2.0) is False and nb.state["halving"]

    # a CV loss of 0 (a perfect model) is no improvement over itself, and no division by zero
    nb = NewbobSchedule(0.1)
    nb.start(0.0)
    assert nb.after_iteration(1, 0.0) is False and nb.state["halving"] and nb.learning_rate() == 0.05

    # min_iters 0 and max_iters 20 by default: a worse first model is rejected; 20 iterations at most
    nb = NewbobSchedule(0.1)
    nb.start(1.0)
    assert nb.after_iteration(1, 1.5) is False
    nb = NewbobSchedule(0.1, start_halving_impr=0.0, end_halving_impr=0.0)
    nb.start(1.0)
    for i in range(1, 20):
        nb.after_iteration(i, 1.0 - i / 100)
        assert not nb.state["stop"], i
    nb.after_iteration(20, 0.79)
    assert nb.state["stop"]
