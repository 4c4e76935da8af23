"""FrameRandomizer: every frame once per pass with its target, minibatches of exactly the size,
leftovers carried to the next fill and dropped at the end, reproducible from the seed, and the
same order as shuffling the whole buffer at once (what earlier versions did, so runs reproduce)."""

import numpy as np
import pytest

from nnetavg.data.randomizer import FrameRandomizer


def utterances(rng, n=40, dim=3):
    start = 0
    for _ in range(n):
        length = int(rng.integers(5, 60))
        ids = np.arange(start, start + length)
        start += length
        yield np.repeat(ids[:, None], dim, axis=1).astype(np.float32), ids.astype(np.int32)


def run(size, mb, seed, shuffle=True, n=40):
    r = FrameRandomizer(size, mb, seed, shuffle)
    out = []
    for x, t in utterances(np.random.default_rng(1), n):
        r.add(x, t)
        if r.full():
            out += [(xb.copy(), tb.copy()) for xb, tb in r.minibatches()]
    out += [(xb.copy(), tb.copy()) for xb, tb in r.minibatches(final=True)]
    return out, r


def reference(size, mb, seed, n=40):
    """The earlier implementation: concatenate, permute the whole buffer, cut."""
    rng = np.random.default_rng(seed)
    bx, bt, out, dropped = [], [], [], 0

    def flush(final):
        nonlocal bx, bt, dropped
        x, t = np.concatenate(bx), np.concatenate(bt)
        p = rng.permutation(len(t))
        x, t = x[p], t[p]
        k = (len(t) // mb) * mb
        out.extend((x[i:i + mb], t[i:i + mb]) for i in range(0, k, mb))
        bx, bt = ([], []) if final or k == len(t) else ([x[k:]], [t[k:]])
        dropped += (len(t) - k) if final else 0

    for x, t in utterances(np.random.default_rng(1), n):
        bx.append(x)
        bt.append(t)
        if sum(len(v) for v in bt) >= max(size, mb):
            flush(False)
    flush(True)
    return out, dropped


@pytest.mark.parametrize("size,mb", [(200, 32), (64, 64), (1000, 7)])
def test_every_frame_once_with_its_target_in_the_reference_order(size, mb):
    out, r = run(size, mb, seed=5)
    ref, dropped = reference(size, mb, seed=5)
    assert len(out) == len(ref) and r.dropped == dropped
    for (x, t), (rx, rt) in zip(out, ref):
        assert x.shape == (mb, 3) and np.array_equal(x, rx) and np.array_equal(t, rt)
        assert np.array_equal(x[:, 0].astype(np.int32), t)      # each frame with its own target
    seen = np.concatenate([t for _, t in out])
    total = sum(len(t) for _, t in utterances(np.random.default_rng(1)))
    assert len(np.unique(seen)) == len(seen) == total - r.dropped and r.dropped < mb


def test_seeds_and_the_unshuffled_order():
    a, _ = run(200, 32, seed=5)
    b, _ = run(200, 32, seed=5)
    c, _ = run(200, 32, seed=6)
    assert all(np.array_equal(x, y) for (x, _), (y, _) in zip(a, b))
    assert not all(np.array_equal(x, y) for (x, _), (y, _) in zip(a, c))
    plain, r = run(200, 32, seed=5, shuffle=False)
    seen = np.concatenate([t for _, t in plain])
    assert np.array_equal(seen, np.arange(len(seen)))   # in the data's order, leftovers first in the next fill
