"""Exact resume of a training pass: a job preempted by a signal writes its checkpoint and exits
75; rerun with the same command it finishes with the bitwise same model as an uninterrupted run
(SGD with momentum, and NG-SGD whose Fisher estimates are part of the checkpoint)."""

import os
import signal
import subprocess

import numpy as np
import pytest

from tests.conftest import make_labelled_data, run_cmd


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    d = tmp_path_factory.mktemp("ckpt")
    feats, ali = make_labelled_data(d, num_utts=300, feat_dim=8, num_pdfs=6)
    run_cmd(["nnet-init", "--input-dim", "8", "--output-dim", "6", "--hidden-layers", "2", "--hidden-dim", "32",
             f"{d}/0.nnet"])
    return d, feats, ali


def train_args(trainer, d, feats, ali, out, extra=()):
    return [trainer, "--minibatch-size", "32", "--randomizer-size", "4096", "--report-period", "640",
            "--momentum", "0.5", "--learn-rate", "0.01", *extra, f"{d}/0.nnet", f"scp:{feats}", f"ark:{ali}", out]


@pytest.mark.parametrize("trainer", ["nnet-train-simple", "nnet-train-ngsgd"])
def test_preempted_pass_resumes_bitwise(data, trainer):
    d, feats, ali = data
    ref = f"{d}/{trainer}.ref.nnet"
    run_cmd(train_args(trainer, d, feats, ali, ref))

    out, ckpt = f"{d}/{trainer}.out.nnet", f"{d}/{trainer}.ckpt.npz"
    args = train_args(trainer, d, feats, ali, out, ["--checkpoint", ckpt])
    proc = subprocess.Popen(args, stderr=subprocess.PIPE, text=True)
    for line in proc.stderr:  # the first progress line: training is under way, handlers installed
        if "progress" in line:
            proc.send_signal(signal.SIGUSR1)
            break
    rest = proc.stderr.read()
    assert proc.wait() == 75, rest
    assert "preempted (SIGUSR1)" in rest and os.path.exists(ckpt) and not os.path.exists(out)
    with np.load(ckpt) as z:
        done = int(z["pass.minibatches"])
        assert 0 < done < 300 * 60 // 32, done
        if trainer == "nnet-train-ngsgd":
            assert any(k.endswith(".W") for k in z.files) and "opt.momentum" in z.files

    p = run_cmd(args)
    assert f"resuming from {ckpt}: {done} minibatches" in p.stderr
    assert not os.path.exists(ckpt), "the checkpoint is removed once the pass is done"
    with open(ref, "rb") as a, open(out, "rb") as b:
        assert a.read() == b.read(), "resumed model differs from the uninterrupted one"


def test_checkpoint_from_other_data_is_refused(data, tmp_path):
    d, feats, ali = data
    ckpt = f"{tmp_path}/c.npz"
    np.savez(ckpt, params=np.zeros(3, np.float32))
    p = run_cmd(train_args("nnet-train-simple", d, feats, ali, f"{tmp_path}/o.nnet", ["--checkpoint", ckpt]), check=False)
    assert p.returncode == 1 and "parameters" in p.stderr and "Traceback" not in p.stderr
