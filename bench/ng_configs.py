#!/usr/bin/env python3
"""NG-SGD's cost against its parameters: the step time of online NG-SGD for several
(rank-in, rank-out, update period) settings against the SGD step, in one process, interleaved.

Usage:  .venv/bin/python bench/ng_configs.py [--dims 440-3x512-68] [--minibatch 256 1024] [--blocks 7]
        [--configs 20,80,4 10,40,4 20,40,4 20,80,8 10,40,8 20,80,4,16]

A configuration is rank-in,rank-out,period[,divisor]: with a divisor N each side's rank is at most
its dimension / N (``--rank-divisor``). ``--floor`` adds the first configuration cut down to the two
products that define the method, H = X W^T and X -= H W (no traces, no row norms, no Fisher
updates, no max-change limit): what NG-SGD cannot cost less than with these BLAS calls.

Each block times SGD and every configuration for the same number of steps, the least common
multiple of the update periods (at least 8), after the 10 initial updates: every block holds whole
update periods of every configuration. Figures are medians over blocks, overheads medians of the
per-block ratios NG/SGD - 1. Prints a markdown table.
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import sys
import time
import types

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))

from nnetavg.allocator import keep_freed_memory  # noqa: E402
from nnetavg.blas import gemm  # noqa: E402
from nnetavg.nnet.network import Network  # noqa: E402
from nnetavg.nnet.proto import init_from_proto, make_proto  # noqa: E402
from nnetavg.train.optim import NGSGD, SGD, NGSGDOptions  # noqa: E402
from nnetavg.train.trainer import Trainer, TrainOptions  # noqa: E402

keep_freed_memory()   # as the training commands do at their entry


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--dims", default="440-3x512-68")
    ap.add_argument("--minibatch", type=int, nargs="+", default=[256, 1024])
    ap.add_argument("--blocks", type=int, default=7)
    ap.add_argument("--configs", nargs="+", default=["20,80,4", "10,40,4", "20,40,4", "20,80,8", "10,40,8"])
    ap.add_argument("--floor", action="store_true", help="also the first configuration's two GEMMs alone")
    a = ap.parse_args()
    d_in, rest = a.dims.split("-", 1)
    hid, d_out = rest.rsplit("-", 1)
    layers, width = (int(v) for v in hid.split("x"))
    d_in, d_out = int(d_in), int(d_out)
    configs = [tuple(int(v) for v in (c + ",0").split(",")[:4]) for c in a.configs]
    block = math.lcm(8, *(c[2] for c in configs))   # whole update periods of every configuration
    print(f"network {a.dims} sigmoid float32; python {platform.python_version()}, numpy {np.__version__}, "
          f"{os.cpu_count()} cores, OPENBLAS_NUM_THREADS={os.environ.get('OPENBLAS_NUM_THREADS', 'default')}; "
          f"medians of {a.blocks} interleaved blocks of {block} steps\n")
    print("| minibatch | rank-in, rank-out, period, divisor | SGD fr/s | NG-SGD fr/s | NG-SGD overhead |")
    print("|---|---|---|---|---|")
    rng = np.random.default_rng(0)
    for mb in a.minibatch:
        x = rng.standard_normal((mb, d_in)).astype(np.float32)
        t = rng.integers(0, d_out, mb).astype(np.int32)
        base = Network(init_from_proto(make_proto(d_in, d_out, layers, width), seed=1))
        trainers = [Trainer(base, SGD(base), TrainOptions(learn_rate=1e-5, minibatch_size=mb))]
        for r_in, r_out, period, div in configs:
            net = base.copy()
            ng = NGSGD(net, ng=NGSGDOptions(rank_in=r_in, rank_out=r_out, update_period=period, rank_divisor=div))
            tr = Trainer(net, ng, TrainOptions(learn_rate=1e-5, minibatch_size=mb))
            for _ in range(10 + block):
                tr.step(x, t)
            trainers.append(tr)
        if a.floor:
            r_in, r_out, period, div = configs[0]
            net = base.copy()
            ng = NGSGD(net, ng=NGSGDOptions(rank_in=r_in, rank_out=r_out, update_period=period, rank_divisor=div,
                                            max_change_per_sample=0))
            tr = Trainer(net, ng, TrainOptions(learn_rate=1e-5, minibatch_size=mb))
            tr.step(x, t)                      # initialises the estimates
            for pre in ng.pre.values():
                for side in pre:
                    side.precondition = types.MethodType(_two_products, side)
            trainers.append(tr)
        times = []
        for _ in range(a.blocks):
            row = []
            for tr in trainers:
                t0 = time.perf_counter()
                for _ in range(block):
                    tr.step(x, t)
                row.append((time.perf_counter() - t0) / block)
            times.append(row)
        times = np.array(times)
        sgd = float(np.median(times[:, 0]))
        if a.floor:
            over = float(np.median(times[:, -1] / times[:, 0])) - 1
            r_in, r_out = configs[0][:2]
            print(f"| {mb} | {r_in}, {r_out}: H = X W^T and X -= H W only | {mb / sgd:,.0f} | "
                  f"{mb / float(np.median(times[:, -1])):,.0f} | {100 * over:+.1f}% |")
        for k, (r_in, r_out, period, div) in enumerate(configs, 1):
            over = float(np.median(times[:, k] / times[:, 0])) - 1
            print(f"| {mb} | {r_in}, {r_out}, {period}, {div or '-'} | {mb / sgd:,.0f} | {mb / float(np.median(times[:, k])):,.0f} | "
                  f"{100 * over:+.1f}% |")
    return 0


def _two_products(self, X, row_norms=False, ones_column=False):
    """--floor: a preconditioner's call cut down to H = X W^T and X -= H W (gamma 1)."""
    W = self.W[:, :-1] if ones_column else self.W
    H = X @ W.T
    if ones_column:
        H += self.W[:, -1]
        self.ones_hat = 1.0 - H @ self.W[:, -1]
    gemm(-1.0, H, W, 1.0, X)
    return 1.0


if __name__ == "__main__":
    sys.exit(main())
