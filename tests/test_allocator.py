"""The allocator setting of training processes: after the first minibatches, a training step
reuses freed heap memory instead of page-faulting fresh buffers in (lib/nnetavg/allocator.py)."""

import os
import subprocess
import sys

import pytest

from tests.conftest import REPO

# A training step of a network whose activations are 2-5 MiB (minibatch 1024), in a fresh
# process: the page faults of 5 steps after 5 warm-up steps.
PROGRAM = r"""
import resource
import numpy as np
from nnetavg.allocator import keep_freed_memory
from nnetavg.nnet.network import Network
from nnetavg.nnet.proto import init_from_proto, make_proto
from nnetavg.train.optim import SGD
from nnetavg.train.trainer import Trainer, TrainOptions
import nnetavg.allocator
assert nnetavg.allocator._in_effect is None   # importing the library changes nothing
keep_freed_memory()                           # what a training command does at its entry
net = Network(init_from_proto(make_proto(40, 1200, 2, 512), seed=1))
trainer = Trainer(net, SGD(net), TrainOptions(learn_rate=1e-3, minibatch_size=1024))
rng = np.random.default_rng(0)
x = rng.standard_normal((1024, 40)).astype(np.float32)
t = rng.integers(0, 1200, 1024).astype(np.int32)
for _ in range(5):
    trainer.step(x, t)
f0 = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(5):
    trainer.step(x, t)
print(keep_freed_memory(), (resource.getrusage(resource.RUSAGE_SELF).ru_minflt - f0) / 5)
"""


def faults_per_step(malloc: str) -> tuple[bool, float]:
    env = dict(os.environ, NNETAVG_MALLOC=malloc, PYTHONPATH=os.path.join(REPO, "lib"))
    out = subprocess.run([sys.executable, "-c", PROGRAM], capture_output=True, text=True, env=env, check=True)
    in_effect, faults = out.stdout.split()
    return in_effect == "True", float(faults)


def test_training_steps_reuse_freed_memory_instead_of_page_faulting():
    tuned, faults = faults_per_step("")
    if not tuned:
        pytest.skip("not glibc: malloc's thresholds cannot be set here")
    untuned_effect, untuned = faults_per_step("default")
    assert not untuned_effect
    # glibc's own thresholds give back and re-fault the step's buffers (~1000 pages a step here)
    assert untuned > 200, f"malloc's defaults already reuse the buffers ({untuned} faults a step)"
    assert faults < untuned / 20, f"{faults} page faults a step with the thresholds set, {untuned} without"


def test_only_commands_set_malloc_and_say_so(tmp_path):
    """A Trainer built in a user's own program leaves malloc alone; a training command sets it once
    and logs it; a GLIBC_TUNABLES that tunes malloc is left alone."""
    code = ("import numpy as np, nnetavg.allocator as a\n"
            "from nnetavg.nnet.network import Network\nfrom nnetavg.nnet.proto import init_from_proto, make_proto\n"
            "from nnetavg.train.optim import SGD\nfrom nnetavg.train.trainer import Trainer, TrainOptions\n"
            "net = Network(init_from_proto(make_proto(4, 3, 1, 8), seed=1))\n"
            "Trainer(net, SGD(net), TrainOptions()).step(np.zeros((2, 4), np.float32), np.zeros(2, np.int32))\n"
            "print(a._in_effect)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env=dict(os.environ, PYTHONPATH=os.path.join(REPO, "lib"))).stdout
    assert out.strip() == "None"
    from tests.conftest import make_labelled_data, run_cmd
    feats, ali = make_labelled_data(tmp_path, num_utts=4)
    run_cmd(["nnet-init", "--input-dim=6", "--output-dim=5", "--hidden-layers=1", "--hidden-dim=8", f"{tmp_path}/0.nnet"])
    args = ["nnet-train-simple", "--minibatch-size=16", f"{tmp_path}/0.nnet", f"scp:{feats}", f"ark:{ali}", f"{tmp_path}/1.nnet"]
    p = run_cmd(args)
    assert p.stderr.count("malloc: ") == 1
    if "malloc: freed blocks up to 32 MiB are reused" not in p.stderr:
        pytest.skip("not glibc: malloc's thresholds cannot be set here")
    env = dict(os.environ, GLIBC_TUNABLES="glibc.malloc.trim_threshold=1000")
    assert "malloc: its own settings (GLIBC_TUNABLES sets malloc)" in run_cmd(args, env=env).stderr
    env = dict(os.environ, NNETAVG_MALLOC="default")
    assert "malloc: its own settings (NNETAVG_MALLOC=default)" in run_cmd(args, env=env).stderr
