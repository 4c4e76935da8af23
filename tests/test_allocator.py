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
