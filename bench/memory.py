#!/usr/bin/env python3
"""Peak memory of a training process against the parameter bytes.

Usage:  .venv/bin/python bench/memory.py [--dims 440-6x2048-8806] [--minibatch 1024] [--optimizer sgd|ngsgd] [--json FILE]

Builds the network and trainer, runs a few steps, and reads the process's peak resident memory
(getrusage ru_maxrss) against the resident memory after the imports (interpreter, numpy,
OpenBLAS). Training memory = peak - baseline; the target is at most 4 x the parameter bytes plus
one minibatch of activations (the outputs of every layer for one minibatch, float32).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))

from nnetavg.nnet.network import Network  # noqa: E402
from nnetavg.nnet.proto import init_from_proto, make_proto  # noqa: E402
from nnetavg.train.optim import NGSGD, SGD  # noqa: E402
from nnetavg.train.trainer import Trainer, TrainOptions  # noqa: E402
from nnetavg.allocator import keep_freed_memory  # noqa: E402

keep_freed_memory()   # as the training commands do at their entry (NNETAVG_MALLOC=default: off)


def rss_mib() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--dims", default="440-6x2048-8806")
    ap.add_argument("--minibatch", type=int, default=1024)
    ap.add_argument("--optimizer", default="sgd", choices=["sgd", "ngsgd"])
    ap.add_argument("--steps", type=int, default=3)
    ap.add_argument("--json", default="")
    a = ap.parse_args()
    baseline = rss_mib()
    inp, rest = a.dims.split("-", 1)
    hid, out = rest.rsplit("-", 1)
    layers, width = (int(v) for v in hid.split("x"))
    net = Network(init_from_proto(make_proto(int(inp), int(out), layers, width), seed=1))
    opt = NGSGD(net) if a.optimizer == "ngsgd" else SGD(net)
    tr = Trainer(net, opt, TrainOptions(learn_rate=1e-6, minibatch_size=a.minibatch))
    rng = np.random.default_rng(0)
    x = rng.standard_normal((a.minibatch, net.input_dim)).astype(np.float32)
    t = rng.integers(0, net.output_dim, a.minibatch).astype(np.int32)
    for _ in range(a.steps):
        tr.step(x, t)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    param_mib = net.params.nbytes / 2**20
    dims = [int(inp)] + [width] * layers + [int(out)]
    act_mib = a.minibatch * sum(dims) * 4 / 2**20
    used = peak - baseline
    budget = 4 * param_mib + act_mib
    print(f"{a.dims} {a.optimizer} minibatch {a.minibatch}: parameters {param_mib:.0f} MiB, one minibatch of activations "
          f"{act_mib:.0f} MiB; peak RSS {peak:.0f} MiB, after imports {baseline:.0f} MiB, training {used:.0f} MiB = "
          f"{used / param_mib:.2f} x parameters (budget 4 x params + activations = {budget:.0f} MiB: "
          f"{used / budget:.2f} of it)")
    if a.json:
        with open(a.json, "w") as f:
            json.dump({"param_mib": param_mib, "act_mib": act_mib, "peak_mib": peak, "baseline_mib": baseline,
                       "used_mib": used, "budget_mib": budget, "optimizer": a.optimizer}, f)
    return 0


if __name__ == "__main__":
    sys.exit(main())
