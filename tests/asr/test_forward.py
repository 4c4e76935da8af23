"""nnet-forward against a direct numpy forward pass; priors with zero counts and the floor."""

import math

import numpy as np
import pytest

from nnetavg.errors import NnetavgError
from nnetavg.io.tables import MATRIX, VECTOR, SequentialReader, TableWriter, write_single
from nnetavg.nnet.forward import log_priors
from tests.conftest import run_cmd


def test_log_priors_floor_and_zero_counts():
    counts = np.array([3.0, 1.0, 0.0, 4.0])
    lp = log_priors(counts, prior_floor=1e-10)
    np.testing.assert_allclose(lp[[0, 1, 3]], np.log(np.array([3, 1, 4]) / 8.0 + 1e-20), rtol=1e-6)
    assert lp[2] == pytest.approx(math.sqrt(np.finfo(np.float32).max), rel=1e-6)  # disabled, not -inf
    lp = log_priors(counts, prior_floor=0.2)  # 1/8 < 0.2 is disabled too
    assert lp[1] == pytest.approx(math.sqrt(np.finfo(np.float32).max), rel=1e-6)
    with pytest.raises(NnetavgError):
        log_priors(np.zeros(3))


@pytest.fixture
def model_and_feats(tmp_path):
    run_cmd(["nnet-init", "--input-dim", "6", "--output-dim", "5", "--hidden-layers", "1", "--hidden-dim", "7",
             "--seed", "3", f"{tmp_path}/m.nnet"])
    rng = np.random.default_rng(0)
    feats = {f"u{i}": rng.standard_normal((int(rng.integers(3, 9)), 2)).astype(np.float32) for i in range(4)}
    with TableWriter(f"ark:{tmp_path}/feats.ark", MATRIX) as w:
        for k, v in feats.items():
            w.write(k, v)
    run_cmd(["nnet-init", "--input-dim", "2", "--output-dim", "2", "--hidden-layers", "0", f"{tmp_path}/unused.nnet"])
    # feature transform: splice +-1 (2 -> 6), written by hand in Kaldi text
    (tmp_path / "ft.nnet").write_text("<Nnet>\n<Splice> 6 2\n[ -1 0 1 ]\n<!EndOfComponent>\n</Nnet>\n")
    write_single(f"{tmp_path}/counts", np.array([10.0, 0.0, 5.0, 5.0, 20.0]), VECTOR, binary=False)
    return tmp_path, feats


def numpy_forward(path, x):
    """The network by hand: splice, then affine/sigmoid/affine, from the text form of the model."""
    from nnetavg.io.nnet1 import read_nnet
    net = read_nnet(str(path))
    (w1, b1), (w2, b2) = [(c.param("linearity"), c.param("bias")) for c in net.components if c.marker == "<AffineTransform>"]
    idx = np.clip(np.arange(len(x))[:, None] + np.array([-1, 0, 1]), 0, len(x) - 1)
    s = x[idx].reshape(len(x), -1)
    h = 1.0 / (1.0 + np.exp(-(s.astype(np.float64) @ w1.T + b1)))
    return h @ w2.T + b2  # logits


def test_nnet_forward_matches_numpy(model_and_feats):
    d, feats = model_and_feats
    run_cmd(["nnet-forward", "--feature-transform", f"{d}/ft.nnet", "--no-softmax=true",
             "--class-frame-counts", f"{d}/counts", f"{d}/m.nnet", f"ark:{d}/feats.ark", f"ark:{d}/out.ark"])
    run_cmd(["nnet-forward", "--feature-transform", f"{d}/ft.nnet", "--apply-log=true",
             f"{d}/m.nnet", f"ark:{d}/feats.ark", f"ark:{d}/logpost.ark"])
    run_cmd(["nnet-forward", "--feature-transform", f"{d}/ft.nnet", f"{d}/m.nnet", f"ark:{d}/feats.ark", f"ark:{d}/post.ark"])
    out, logpost, post = (dict(SequentialReader(f"ark:{d}/{n}.ark", MATRIX)) for n in ("out", "logpost", "post"))
    assert sorted(out) == sorted(feats)
    prior = np.log(np.array([10, 0, 5, 5, 20]) / 40.0 + 1e-20)
    prior[1] = math.sqrt(np.finfo(np.float32).max)
    for k, x in feats.items():
        z = numpy_forward(d / "m.nnet", x)
        np.testing.assert_allclose(out[k], z - prior, rtol=1e-5, atol=1e-4)
        p = np.exp(z - z.max(1, keepdims=True))
        p /= p.sum(1, keepdims=True)
        np.testing.assert_allclose(post[k], p, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(logpost[k], np.log(p + 1e-20), rtol=1e-5, atol=1e-5)


def test_nnet_forward_errors(model_and_feats):
    d, _ = model_and_feats
    proc = run_cmd(["nnet-forward", "--no-softmax=true", "--apply-log=true", f"{d}/m.nnet", f"ark:{d}/feats.ark",
                    f"ark:{d}/x.ark"], check=False)
    assert proc.returncode == 1 and "cannot be used together" in proc.stderr
    proc = run_cmd(["nnet-forward", "--class-frame-counts", f"{d}/counts", f"{d}/m.nnet", f"ark:{d}/feats.ark",
                    f"ark:{d}/x.ark"], check=False)
    assert proc.returncode == 1 and "--no-softmax" in proc.stderr
    proc = run_cmd(["nnet-forward", f"{d}/m.nnet", f"ark:{d}/feats.ark", f"ark:{d}/x.ark"], check=False)
    assert proc.returncode == 1 and "utterance u0" in proc.stderr and "dim 2" in proc.stderr
    assert "Traceback" not in proc.stderr
