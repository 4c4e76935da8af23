"""The optimizers' plumbing, exactly: make_optimizer, the momentum and Fisher state, the updates of
<AddShift>/<Rescale>, learning-rate coefficients and max-norm, NG-SGD with momentum, the options
reaching each preconditioner, the simple variant's own limit, and every error message."""

import re

import numpy as np
import pytest

from nnetavg.errors import NnetavgError, NonFiniteUpdate, ObjectiveError
from nnetavg.nnet.components import AddShift, AffineTransform, Rescale, Softmax
from nnetavg.nnet.network import Network
from nnetavg.nnet.proto import init_from_proto, make_proto
from nnetavg.train.optim import NGSGD, SGD, NGSGDOptions, SGDOptions, make_optimizer
from nnetavg.train.trainer import TrainOptions, Trainer


def data(rng, n=16, d=3, k=2):
    return rng.standard_normal((n, d)), rng.integers(0, k, n).astype(np.int32)


def test_make_optimizer_passes_the_options_and_names_the_choices():
    net = Network(init_from_proto(make_proto(5, 3, 1, 6)), dtype=np.float64)
    s = make_optimizer("sgd", net, SGDOptions(momentum=0.5))
    assert type(s) is SGD and s.nnet is net and s.opts.momentum == 0.5
    n = make_optimizer("ngsgd", net, SGDOptions(l2_penalty=0.1), NGSGDOptions(rank_in=3, rank_out=2))
    assert type(n) is NGSGD and n.nnet is net and n.opts.l2_penalty == 0.1
    assert [(p.rank, q.rank) for p, q in n.pre.values()] == [(3, 2), (3, 2)]
    with pytest.raises(NnetavgError, match=r"^--optimizer must be one of sgd\|ngsgd, not 'adam'$"):
        make_optimizer("adam", net)


def test_momentum_state_round_trip_continues_bitwise():
    rng = np.random.default_rng(1)
    x, t = data(rng, d=5, k=3)
    net = Network(init_from_proto(make_proto(5, 3, 1, 6), seed=2), dtype=np.float64)
    assert SGD(net).state() == {}                          # no momentum: nothing to keep
    a = SGD(net, SGDOptions(momentum=0.5))
    tr = Trainer(net, a, TrainOptions(learn_rate=0.1))
    tr.step(x, t)
    st = a.state()
    assert set(st) == {"momentum"} and np.array_equal(st["momentum"], a._corr_flat) and st["momentum"].any()
    twin = net.copy()
    b = SGD(twin, SGDOptions(momentum=0.5))
    b.load_state(st)
    tr.step(x, t)
    Trainer(twin, b, TrainOptions(learn_rate=0.1)).step(x, t)
    assert np.array_equal(net.params, twin.params)
    c = SGD(net.copy(), SGDOptions(momentum=0.5))
    c.load_state({})                                       # nothing saved: the buffer stays zero
    assert not c._corr_flat.any()


def test_fisher_state_round_trip_and_its_refusals():
    rng = np.random.default_rng(2)
    x, t = data(rng, d=5, k=3)
    net = Network(init_from_proto(make_proto(5, 3, 1, 6), seed=2), dtype=np.float64)
    a = NGSGD(net, SGDOptions(momentum=0.5))
    tr = Trainer(net, a, TrainOptions(learn_rate=0.1))
    for _ in range(3):
        tr.step(x, t)
    st = a.state()
    assert "momentum" in st and "0.in.W" in st and "2.out.W" in st
    twin = net.copy()
    b = NGSGD(twin, SGDOptions(momentum=0.5))
    b.load_state(st)
    assert np.array_equal(b._corr_flat, a._corr_flat)      # the momentum too (SGD's part of the state)
    tr.step(x, t)
    Trainer(twin, b, TrainOptions(learn_rate=0.1)).step(x, t)
    assert np.array_equal(net.params, twin.params)
    missing = {k: v for k, v in st.items() if not k.startswith("2.")}
    with pytest.raises(NnetavgError, match=r"^natural-gradient state has nothing for component 3 \(in\)$"):
        NGSGD(net.copy()).load_state(missing)
    other = Network(init_from_proto(make_proto(4, 3, 1, 6), seed=2), dtype=np.float64)
    with pytest.raises(NnetavgError, match=r"^natural-gradient state of component 1 \(in\) has dim 6, which does "
                                           r"not fit the network$"):
        NGSGD(other).load_state(st)


def test_vector_components_step_along_their_gradients_with_their_coefficients():
    rng = np.random.default_rng(3)
    shift, scale = AddShift(3, 3, learn_rate_coef=0.5), Rescale(3, 3, learn_rate_coef=2.0)
    shift.init = {"shift": rng.standard_normal(3)}
    scale.init = {"scale": rng.uniform(0.5, 1.5, 3)}
    net = Network([shift, scale], dtype=np.float64)
    x, dy = rng.standard_normal((8, 3)), rng.standard_normal((8, 3))
    opt = SGD(net)
    s0, c0 = shift.params["shift"].copy(), scale.params["scale"].copy()
    y1 = x + s0
    opt.update(1, scale, y1, y1 * c0, dy, 0.1)
    np.testing.assert_allclose(scale.params["scale"], c0 - 0.1 * 2.0 * (dy * y1).sum(axis=0), rtol=1e-14)
    opt.update(0, shift, x, y1, dy, 0.1)
    np.testing.assert_allclose(shift.params["shift"], s0 - 0.1 * 0.5 * dy.sum(axis=0), rtol=1e-14)
    bad = dy.copy()
    bad[2, 1] = np.nan
    before = shift.params["shift"].copy()
    with pytest.raises(NonFiniteUpdate, match=r"^NaN or Inf in the update of component 1$"):
        opt.update(0, shift, x, y1, bad, 0.1)
    assert np.array_equal(shift.params["shift"], before)


def test_learning_rate_coefficients_and_max_norm_of_an_affine_layer():
    rng = np.random.default_rng(4)
    a = AffineTransform(3, 4, learn_rate_coef=0.5, bias_learn_rate_coef=2.0, max_norm=0.5)
    a.init = {"linearity": rng.standard_normal((4, 3)) * 0.35, "bias": rng.standard_normal(4)}
    net = Network([a], dtype=np.float64)
    W0, b0 = a.params["linearity"].copy(), a.params["bias"].copy()
    x, g = rng.standard_normal((8, 3)), rng.standard_normal((8, 4))
    SGD(net).update(0, a, x, None, g.copy(), 0.01)
    W = W0 - 0.01 * 0.5 * g.T @ x
    norms = np.linalg.norm(W, axis=1)
    assert (norms < 1).all() and (norms > 0.5).any()       # rows between the limit and 1
    np.testing.assert_allclose(a.params["linearity"], W * np.minimum(1, 0.5 / norms)[:, None], rtol=1e-12)
    np.testing.assert_allclose(a.params["bias"], b0 - 0.01 * 2.0 * g.sum(axis=0), rtol=1e-12)


def test_ngsgd_with_momentum_accumulates_the_scaled_direction():
    """The first step with momentum is the step without (the buffer starts at zero and holds
    the preconditioned, scaled direction); the second adds momentum x the first direction."""
    rng = np.random.default_rng(5)
    x, t = data(rng, n=32, d=4, k=3)
    base = Network(init_from_proto(make_proto(4, 3, 1, 6), seed=3), dtype=np.float64)
    plain, mom = base.copy(), base.copy()
    op = NGSGD(plain, ng=NGSGDOptions(max_change_per_sample=0))
    om = NGSGD(mom, SGDOptions(momentum=0.5), NGSGDOptions(max_change_per_sample=0))
    tp, tm = Trainer(plain, op, TrainOptions(learn_rate=0.1)), Trainer(mom, om, TrainOptions(learn_rate=0.1))
    p0 = base.params.copy()
    tp.step(x, t)
    tm.step(x, t)
    np.testing.assert_allclose(mom.params, plain.params, rtol=1e-12, atol=1e-15)
    d1 = p0 - plain.params            # lr x the first direction (weights and biases)
    # the buffer holds the first direction; the parameters moved by lr x each one's coefficient
    coef = np.concatenate([np.concatenate([np.full(c.output_dim * c.input_dim, c.lr_coef), np.full(c.output_dim, c.bias_lr_coef)])
                           for c in mom.components if isinstance(c, AffineTransform)])
    corr = np.concatenate([np.concatenate([v[k].ravel() for k in ("linearity", "bias")]) for v in om._corr if v])
    assert sorted(set(coef)) == [0.1, 1.0]
    np.testing.assert_allclose(0.1 * coef * corr, d1, rtol=1e-10, atol=1e-15)
    tp.step(x, t)
    tm.step(x, t)
    d2 = (p0 - d1) - plain.params            # lr x coef x the second direction, without momentum
    np.testing.assert_allclose((p0 - d1) - mom.params, d2 + 0.5 * d1, rtol=1e-6, atol=1e-12)


def test_every_preconditioner_gets_the_options_and_its_dimension():
    net = Network(init_from_proto(make_proto(440, 68, 1, 16)))
    opt = NGSGD(net, ng=NGSGDOptions(update_period=3, num_samples_history=777.0, alpha=2.5))
    for pin, pout in opt.pre.values():
        for p in (pin, pout):
            assert (p.update_period, p.num_samples_history, p.alpha) == (3, 777.0, 2.5)
    # the input side holds the bias column: 441 dimensions, so divisor 2 gives 220 (442 would give 221)
    wide = NGSGD(net, ng=NGSGDOptions(rank_in=300, rank_divisor=2))
    assert wide.pre[0][0].rank == 220
    assert NGSGD(net, ng=NGSGDOptions(rank_divisor=1)).side_rank(80, 68) == 68   # divisor 1: at most the dim


def test_simple_variant_alpha_and_its_own_limit():
    rng = np.random.default_rng(6)
    x, t = data(rng, n=1, d=4, k=3)          # one frame: the simple preconditioner returns the rows as they are
    base = Network(init_from_proto(make_proto(4, 3, 1, 6), seed=3), dtype=np.float64)
    net = base.copy()
    opt = NGSGD(net, ng=NGSGDOptions(ngsgd_variant="simple", simple_max_change=1e-4, max_change_per_sample=0))
    views0 = [{k: v.copy() for k, v in d.items()} for d in net.views(net.params)]
    Trainer(net, opt, TrainOptions(learn_rate=1.0)).step(x, t)
    changes = [np.sqrt(sum(np.sum((d1[k] - d0[k]) ** 2) for k in d0))
               for d0, d1 in zip(views0, net.views(net.params)) if d0]
    # each layer's rank-one step lr g [x, 1]^T clipped to the limit; the output layer's bias moves at
    # its coefficient 0.1 (nnet1's proto) while the limit counts the ones column at 1, so that layer
    # comes under the limit by sqrt((|h|^2 + 0.01) / (|h|^2 + 1)), h its input
    w1, b1 = (base.views(base.params)[0][k] for k in ("linearity", "bias"))
    h2 = float(np.sum((1 / (1 + np.exp(-(x @ w1.T + b1)))) ** 2))
    assert opt.limited == 2
    assert changes == pytest.approx([1e-4, 1e-4 * np.sqrt((h2 + 0.01) / (h2 + 1))], rel=1e-9)
    # alpha reaches the simple preconditioner: another alpha, another step
    x8, t8 = data(rng, n=8, d=4, k=3)
    steps = []
    for alpha in (4.0, 1.0):
        m = base.copy()
        Trainer(m, NGSGD(m, ng=NGSGDOptions(ngsgd_variant="simple", alpha=alpha)), TrainOptions(learn_rate=0.1)).step(x8, t8)
        steps.append(m.params - base.params)
    assert not np.allclose(steps[0], steps[1], rtol=1e-6)


def test_ngsgd_error_messages_name_the_component(monkeypatch):
    rng = np.random.default_rng(7)
    net = Network(init_from_proto(make_proto(4, 3, 1, 6), seed=3), dtype=np.float64)
    opt = NGSGD(net)
    comp = net.components[2]
    x, dy = rng.standard_normal((8, 6)), rng.standard_normal((8, 3))
    bad = dy.copy()
    bad[0, 0] = np.inf
    with pytest.raises(NonFiniteUpdate, match=r"^natural gradient of component 3: NaN or Inf in its input or "
                                              r"derivatives$"):
        opt.update(2, comp, x, None, bad, 0.1)

    def broken(X, row_norms=False, ones_column=False):
        raise np.linalg.LinAlgError("Eigenvalues did not converge")
    monkeypatch.setattr(opt.pre[2][0], "precondition", broken)
    with pytest.raises(ObjectiveError, match=r"^natural gradient of component 3: the Fisher estimate cannot be "
                                             r"decomposed \(Eigenvalues did not converge\); NaN or Inf in the input "
                                             r"or the derivatives\?$"):
        opt.update(2, comp, x, None, dy.copy(), 0.1)


def test_the_input_buffer_keeps_the_dtype_and_is_reused():
    net = Network(init_from_proto(make_proto(4, 3, 1, 6), seed=3))   # float32
    opt = NGSGD(net)
    x = np.ones((5, 4), np.float32)
    b1 = opt._input_buffer(0, x, True)
    assert b1.dtype == np.float32 and b1.shape == (5, 5) and (b1[:, -1] == 1).all()
    b1[:, -1] = 7                         # preconditioned in place by the last call ...
    assert opt._input_buffer(0, x, True) is b1 and (b1[:, -1] == 1).all()   # ... the same buffer, ones again
    assert opt._input_buffer(0, np.ones((6, 4), np.float32), True) is not b1
    b2 = NGSGD(net)._input_buffer(0, 2 * x, False)   # the online variant's: no ones column
    assert b2.shape == (5, 4) and (b2 == 2).all()


@pytest.mark.parametrize("variant", ["online", "simple"])
def test_limit_log_lines_factor_and_count(variant, caplog):
    """The first ten limited updates are logged with the component, the factor and which limit;
    the online limit is per frame (x N), the simple one per minibatch; the learning-rate
    coefficient is part of the step that is limited."""
    import logging

    rng = np.random.default_rng(8)
    x, t = data(rng, n=8, d=4, k=3)
    base = Network(init_from_proto(make_proto(4, 3, 1, 6), seed=3), dtype=np.float64)
    base.components[2].lr_coef = 0.5
    key = "max_change_per_sample" if variant == "online" else "simple_max_change"
    other = "simple_max_change" if variant == "online" else "max_change_per_sample"

    def run(limit, steps=1):
        net = base.copy()
        opt = NGSGD(net, ng=NGSGDOptions(ngsgd_variant=variant, **{key: limit, other: 0.0}))
        tr = Trainer(net, opt, TrainOptions(learn_rate=0.1))
        caplog.clear()
        with caplog.at_level(logging.INFO, logger="nnetavg.train.optim"):
            for _ in range(steps):
                tr.step(x, t)
        return opt, [r.getMessage() for r in caplog.records if r.name == "nnetavg.train.optim"]

    tiny = 1e-12
    opt, lines = run(tiny)
    name = "max-change-per-sample" if variant == "online" else "simple-max-change"
    pat = rf"^natural gradient: limiting the step of component (\d) by a factor (\S+) \({name}\)$"
    found = [re.match(pat, ln) for ln in lines]
    assert all(found) and [int(m.group(1)) for m in found] == [3, 1] and opt.limited == 2
    n = 8 if variant == "online" else 1
    tot_out = tiny * n / float(found[0].group(2))          # the output layer's unlimited lr x sum |x||g|
    # a limit at half that: the factor is 0.5 (to the 3 digits the factor above was logged with)
    _, lines = run(tot_out / 2 / n)
    assert re.match(pat, lines[0]).group(1) == "3" and float(re.match(pat, lines[0]).group(2)) == pytest.approx(0.5, rel=0.01)
    # the coefficient is in the step: with coefficient 1 the same limit is a factor 0.25
    base.components[2].lr_coef = 1.0
    _, lines = run(tot_out / 2 / n)
    assert float(re.match(pat, lines[0]).group(2)) == pytest.approx(0.25, rel=0.01)
    # twelve limited steps of two layers: ten lines
    opt, lines = run(tiny, steps=6)
    assert opt.limited == 12 and len([ln for ln in lines if ln.startswith("natural gradient: limiting")]) == 10


def test_unknown_variant_is_named():
    with pytest.raises(NnetavgError, match=r"^--ngsgd-variant must be online or simple, not 'fast'$"):
        NGSGD(Network(init_from_proto(make_proto(4, 3, 1, 6))), ng=NGSGDOptions(ngsgd_variant="fast"))


def test_simple_variant_step_against_its_formula():
    """One step of the simple variant (alpha 1) on one affine layer: the change is
    -lr * gamma_in * gamma_out * G_hat^T [X_hat, 1] with both sides preconditioned at that alpha;
    with simple-max-change at half of lr * gamma_in * gamma_out * sum_i |x_hat_i||g_hat_i| (per
    minibatch, not per frame), exactly half of that change."""
    from nnetavg.train.natural_gradient import precondition_simple

    rng = np.random.default_rng(9)
    a = AffineTransform(5, 3)
    a.init = {"linearity": rng.standard_normal((3, 5)), "bias": rng.standard_normal(3)}
    x, t = rng.standard_normal((16, 5)), rng.integers(0, 3, 16)
    base = Network([a, Softmax(3, 3)], dtype=np.float64)
    y = base.forward(x)
    g = y.copy()
    g[np.arange(16), t] -= 1
    xh, gi = precondition_simple(np.hstack([x, np.ones((16, 1))]), 1.0)
    gh, go = precondition_simple(g, 1.0)
    full = 0.01 * gi * go * gh.T @ xh                     # weights and bias (last column)
    tot = 0.01 * gi * go * np.sqrt((xh * xh).sum(axis=1) * (gh * gh).sum(axis=1)).sum()
    for limit, f in ((0.0, 1.0), (tot / 2, 0.5)):
        net = base.copy()
        W0, b0 = net.components[0].params["linearity"].copy(), net.components[0].params["bias"].copy()
        opt = NGSGD(net, ng=NGSGDOptions(ngsgd_variant="simple", alpha=1.0, simple_max_change=limit))
        Trainer(net, opt, TrainOptions(learn_rate=0.01)).step(x, t)
        np.testing.assert_allclose(W0 - net.components[0].params["linearity"], f * full[:, :5], rtol=1e-9)
        np.testing.assert_allclose(b0 - net.components[0].params["bias"], f * full[:, 5], rtol=1e-9)
