"""CMVN stats and the feature transform, the randomizer, the CV split, counts and egs copying."""

import numpy as np
import pytest

from nnetavg.data.cmvn import apply_cmvn, make_feature_transform, mean_var, stats_of
from nnetavg.data.counts import analyze_counts
from nnetavg.data.egs import copy_egs
from nnetavg.data.randomizer import FrameRandomizer
from nnetavg.data.split import split_data_dir
from nnetavg.errors import NnetavgError
from nnetavg.io.tables import INT_VECTOR, MATRIX, VECTOR, SequentialReader, TableWriter


def test_stats_and_apply_cmvn():
    rng = np.random.default_rng(0)
    x = rng.normal(3.0, 2.0, (500, 4))
    s = stats_of(x)
    assert s.shape == (2, 5) and s[0, 4] == 500 and s[1, 4] == 0
    np.testing.assert_allclose(s[0, :4], x.sum(0))
    mean, var = mean_var(s)
    np.testing.assert_allclose(mean, x.mean(0))
    np.testing.assert_allclose(var, x.var(0))
    y = apply_cmvn(x, s, norm_vars=True)
    np.testing.assert_allclose(y.mean(0), 0, atol=1e-5)
    np.testing.assert_allclose(y.std(0), 1, atol=1e-4)
    np.testing.assert_allclose(apply_cmvn(x, s).std(0), x.std(0), rtol=1e-5)
    with pytest.raises(NnetavgError, match="count"):
        mean_var(np.zeros((2, 5)))


def test_feature_transform_is_splice_then_global_cmvn():
    rng = np.random.default_rng(1)
    utts = [rng.normal(5.0, 3.0, (int(rng.integers(20, 60)), 3)).astype(np.float32) for _ in range(30)]
    ft = make_feature_transform(utts, splice=2)
    assert [c.marker for c in ft.components] == ["<Splice>", "<AddShift>", "<Rescale>"]
    assert (ft.input_dim, ft.output_dim) == (3, 15)
    out = np.concatenate([ft.forward(u) for u in utts])
    np.testing.assert_allclose(out.mean(0), 0, atol=1e-4)
    np.testing.assert_allclose(out.std(0), 1, atol=1e-3)
    # from global stats of unspliced features: nearly the same transform
    ft2 = make_feature_transform([], splice=2, global_stats=stats_of(np.concatenate(utts)))
    np.testing.assert_allclose(ft2.components[2].params["scale"], ft.components[2].params["scale"], rtol=0.02)


def test_randomizer_uses_every_frame_once_and_is_reproducible():
    def run(seed):
        r = FrameRandomizer(randomizer_size=50, minibatch_size=8, seed=seed)
        out = []
        for i in range(20):
            n = 7 + i % 5
            r.add(np.arange(100 * i, 100 * i + n)[:, None].astype(np.float32), np.full(n, i, np.int32))
            if r.full():
                out.extend(r.minibatches())
        out.extend(r.minibatches(final=True))
        return out, r.dropped
    mbs, dropped = run(5)
    assert all(x.shape == (8, 1) and t.shape == (8,) for x, t in mbs)
    frames = np.concatenate([x[:, 0] for x, _ in mbs])
    total = sum(7 + i % 5 for i in range(20))
    assert len(frames) + dropped == total and dropped < 8
    assert len(np.unique(frames)) == len(frames)
    for x, t in mbs:  # targets travel with their frames
        np.testing.assert_array_equal(x[:, 0] // 100, t)
    again, _ = run(5)
    assert all(np.array_equal(a[0], b[0]) for a, b in zip(mbs, again))
    other, _ = run(6)
    assert not all(np.array_equal(a[0], b[0]) for a, b in zip(mbs, other))


def _data_dir(tmp_path, speakers=10, utts=3):
    d = tmp_path / "data"
    d.mkdir()
    scp, u2s = [], []
    for s in range(speakers):
        for u in range(utts):
            key = f"s{s}-u{u}"
            scp.append(f"{key} /x/{key}.ark:1\n")
            u2s.append(f"{key} s{s}\n")
    (d / "feats.scp").write_text("".join(scp))
    (d / "utt2spk").write_text("".join(u2s))
    return str(d)


def test_split_holds_out_speakers():
    import tempfile
    from pathlib import Path
    with tempfile.TemporaryDirectory() as t:
        d = _data_dir(Path(t))
        lists, cv = split_data_dir(d, 4, cv_spk_percent=10, seed=1)
        assert len(lists) == 4 and abs(len(lists[0]) - len(lists[3])) <= 1
        cv_spk = {u.split("-")[0] for u in cv}
        tr = [u for lst in lists for u in lst]
        assert len(cv_spk) == 1 and len(cv) == 3
        assert not cv_spk & {u.split("-")[0] for u in tr}
        assert sorted(tr + cv) == sorted(f"s{s}-u{u}" for s in range(10) for u in range(3))
        assert split_data_dir(d, 4, seed=1) == (lists, cv) and split_data_dir(d, 4, seed=2) != (lists, cv)
        with pytest.raises(NnetavgError, match="cannot fill"):
            split_data_dir(d, 100)


def test_analyze_counts_adds_half(tmp_path):
    with TableWriter(f"ark:{tmp_path}/a.ark", INT_VECTOR) as w:
        w.write("u1", np.array([0, 0, 2], np.int32))
        w.write("u2", np.array([2, 2], np.int32))
    np.testing.assert_array_equal(analyze_counts(f"ark:{tmp_path}/a.ark", 4), [2.5, 0.5, 3.5, 0.5])
    # --counts-dim is a hint, as Kaldi's: larger ids (phones per frame) grow the vector
    np.testing.assert_array_equal(analyze_counts(f"ark:{tmp_path}/a.ark", 2), [2.5, 0.5, 3.5])
    # weights per frame and per utterance multiply each frame's count
    with TableWriter(f"ark:{tmp_path}/fw.ark", VECTOR) as w:
        w.write("u1", np.array([1.0, 0.5, 2.0], np.float32))
        w.write("u2", np.array([1.0, 0.0], np.float32))
    (tmp_path / "uw.txt").write_text("u1 2.0\nu2 3.0\n")
    np.testing.assert_allclose(analyze_counts(f"ark:{tmp_path}/a.ark", 3, f"ark:{tmp_path}/fw.ark",
                                              f"ark,t:{tmp_path}/uw.txt"), [3.5, 0.5, 7.5])


def test_copy_egs_checks_and_counts(tmp_path):
    rng = np.random.default_rng(0)
    with TableWriter(f"ark,scp:{tmp_path}/f.ark,{tmp_path}/f.scp", MATRIX) as fw, \
            TableWriter(f"ark:{tmp_path}/a.ark", INT_VECTOR) as aw:
        for key, T, L in [("ok", 10, 10), ("short", 10, 8), ("bad", 10, 30), ("noali", 5, None), ("nan", 6, 6)]:
            x = rng.standard_normal((T, 3)).astype(np.float32)
            if key == "nan":
                x[2, 1] = np.nan
            fw.write(key, x)
            if L is not None:
                aw.write(key, np.zeros(L, np.int32))
    stats = copy_egs(["nan", "ok", "short", "bad", "noali", "absent"], f"scp:{tmp_path}/f.scp",
                     f"ark:{tmp_path}/a.ark", f"ark:{tmp_path}/o.ark", f"ark:{tmp_path}/oa.ark", num_pdfs=3)
    assert (stats.utterances, stats.truncated, stats.length_mismatch, stats.no_targets, stats.non_finite,
            stats.no_features) == (2, 1, 1, 1, 1, 1)
    got = dict(SequentialReader(f"ark:{tmp_path}/o.ark"))
    assert list(got) == ["ok", "short"] and got["short"].shape == (8, 3)
