"""Nothing breaks quietly: outputs honour the umask, no output appears unless the command
succeeded, corrupt input gives one clear error, NaN never reaches a decoder or a model step."""

import os
import stat

import numpy as np
import pytest

from nnetavg.errors import NnetavgError
from nnetavg.io.nnet1 import read_nnet, write_nnet
from nnetavg.io.tables import MATRIX, SequentialReader, TableWriter
from nnetavg.nnet.network import Network
from nnetavg.nnet.proto import init_from_proto
from nnetavg.train.optim import NGSGD, NGSGDOptions
from tests.conftest import make_labelled_data, run_cmd


@pytest.fixture()
def data(tmp_path):
    feats, ali = make_labelled_data(tmp_path, num_utts=6)
    run_cmd(["nnet-init", "--input-dim=6", "--output-dim=5", "--hidden-layers=1", "--hidden-dim=8",
             str(tmp_path / "m.nnet")])
    return tmp_path, feats, ali


def test_outputs_honour_the_umask(data):
    tmp, feats, ali = data
    for umask, mode in ((0o022, 0o644), (0o027, 0o640)):
        env = dict(os.environ)
        out_model, out_ark = tmp / f"c{umask}.nnet", tmp / f"f{umask}.ark"
        cmd = f"umask {umask:03o}; nnet-copy {tmp}/m.nnet {out_model} && copy-feats scp:{feats} ark:{out_ark}"
        run_cmd(["bash", "-c", cmd], env=env)
        assert stat.S_IMODE(out_model.stat().st_mode) == mode
        assert stat.S_IMODE(out_ark.stat().st_mode) == mode


def test_a_failed_command_leaves_no_output(data):
    tmp, feats, ali = data
    lines = open(feats).read().splitlines()
    (tmp / "bad.scp").write_text("\n".join(lines[:3] + [lines[3].split()[0] + " /nonexistent.ark:9"]) + "\n")
    p = run_cmd(["copy-feats", f"scp:{tmp}/bad.scp", f"ark,scp:{tmp}/o.ark,{tmp}/o.scp"], check=False)
    assert p.returncode == 1 and "nonexistent" in p.stderr
    (tmp / "empty.scp").write_text("")
    p = run_cmd(["copy-feats", f"scp:{tmp}/empty.scp", f"ark:{tmp}/e.ark"], check=False)
    assert p.returncode == 1 and "no feature matrices" in p.stderr
    p = run_cmd(["nnet-forward", f"{tmp}/m.nnet", f"scp:{tmp}/bad.scp", f"ark:{tmp}/fw.ark"], check=False)
    assert p.returncode == 1
    assert sorted(f.name for f in tmp.iterdir() if f.is_file()) == ["bad.scp", "empty.scp", "m.nnet"]


def test_corrupt_input_gives_one_clear_error(data):
    tmp, feats, ali = data
    (tmp / "big.nnet").write_text("<Nnet>\n<AffineTransform> 1000000000 1000000000\n")
    p = run_cmd(["nnet-info", str(tmp / "big.nnet")], check=False)
    assert p.returncode == 1 and "Traceback" not in p.stderr and "impossible for a file" in p.stderr
    ark = feats.replace("feats.scp", "feats.ark")
    (tmp / "cut.ark").write_bytes(open(ark, "rb").read()[:700])
    p = run_cmd(["copy-feats", f"ark:{tmp}/cut.ark", f"ark:{tmp}/x.ark"], check=False)
    assert p.returncode == 1 and "truncated or corrupt" in p.stderr and "ValueError" not in p.stderr
    key = open(feats).readline().split()[0]
    (tmp / "off.scp").write_text(f"{key} {ark}:17\n")
    p = run_cmd(["copy-feats", f"scp:{tmp}/off.scp", f"ark:{tmp}/x.ark"], check=False)
    assert p.returncode == 1 and "wrong scp offset" in p.stderr and "UnicodeDecodeError" not in p.stderr
    assert not (tmp / "x.ark").exists()


def test_nnet_forward_stops_on_nan(data):
    tmp, feats, ali = data
    x = {key: v.copy() for key, v in SequentialReader(f"scp:{feats}", MATRIX)}
    k = next(iter(x))
    x[k][3, 2] = np.nan
    with TableWriter(f"ark:{tmp}/nan.ark", MATRIX) as w:
        for key, v in x.items():
            w.write(key, v)
    p = run_cmd(["nnet-forward", str(tmp / "m.nnet"), f"ark:{tmp}/nan.ark", f"ark:{tmp}/out.ark"], check=False)
    assert p.returncode == 1 and f"utterance {k}" in p.stderr and "NaN or Inf in its features" in p.stderr
    assert not (tmp / "out.ark").exists()
    net = read_nnet(str(tmp / "m.nnet"))
    net.params[0] = np.nan
    write_nnet(net, str(tmp / "nan.nnet"), allow_non_finite=True)
    p = run_cmd(["nnet-forward", str(tmp / "nan.nnet"), f"scp:{feats}", f"ark:{tmp}/out.ark"], check=False)
    assert p.returncode == 1 and "NaN or infinite model" in p.stderr
    # a diverged model can still be looked at
    p = run_cmd(["nnet-copy", "--binary=false", str(tmp / "nan.nnet"), str(tmp / "nan.txt")])
    assert "NaN or infinite parameters" in p.stderr and "nan" in (tmp / "nan.txt").read_text().lower()


@pytest.mark.parametrize("variant", ["online", "simple"])
def test_ngsgd_refuses_a_nan_step(variant):
    net = Network(init_from_proto("<AffineTransform> <InputDim> 4 <OutputDim> 3\n<Softmax> <InputDim> 3 <OutputDim> 3"))
    opt = NGSGD(net, None, NGSGDOptions(ngsgd_variant=variant, rank_in=2, rank_out=2))
    before = net.params.copy()
    x = np.random.default_rng(0).standard_normal((16, 4)).astype(np.float32)
    dy = np.random.default_rng(1).standard_normal((16, 3)).astype(np.float32)
    for minibatch in range(12):   # updating and non-updating minibatches of the Fisher estimate
        xb = x.copy()
        if minibatch in (3, 11):
            xb[2, 1] = np.nan
            with pytest.raises(NnetavgError, match="NaN or Inf"):
                opt.update(0, net.components[0], xb, None, dy, 0.01)
            assert np.all(np.isfinite(net.params))
        else:
            opt.update(0, net.components[0], xb, None, dy, 0.01)
    assert not np.array_equal(before, net.params)


def test_simple_variant_has_no_per_sample_limit_by_default():
    """nnet2's AffineComponentPreconditioned: max-change is its own (absolute, off by default),
    not the online variant's 0.075 x N."""
    net = Network(init_from_proto("<AffineTransform> <InputDim> 4 <OutputDim> 3\n<Softmax> <InputDim> 3 <OutputDim> 3"))
    x = 100 * np.random.default_rng(0).standard_normal((16, 4)).astype(np.float32)
    dy = 100 * np.random.default_rng(1).standard_normal((16, 3)).astype(np.float32)
    steps = {}
    for name, opts in {"default": NGSGDOptions(ngsgd_variant="simple"),
                       "limited": NGSGDOptions(ngsgd_variant="simple", simple_max_change=1.0)}.items():
        n = Network(init_from_proto("<AffineTransform> <InputDim> 4 <OutputDim> 3\n<Softmax> <InputDim> 3 <OutputDim> 3"))
        n.params[...] = net.params
        opt = NGSGD(n, None, opts)
        opt.update(0, n.components[0], x, None, dy, 0.01)
        steps[name] = float(np.linalg.norm(n.params - net.params))
        assert opt.limited == (1 if name == "limited" else 0)
    assert steps["default"] > 5 * steps["limited"]
