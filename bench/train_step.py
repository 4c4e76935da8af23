#!/usr/bin/env python3
"""Training-step throughput against the bare matrix-multiply bound, measured in the same run.

Usage:  .venv/bin/python bench/train_step.py [--dims 440-6x2048-8806] [--minibatch 256 1024] [--steps 5]
e.g.:   .venv/bin/python bench/train_step.py --dims 440-2x512-48 --steps 20

For each minibatch size it times:
* ours:  one full SGD step of nnet-train-simple's loop (forward, softmax + cross-entropy,
         backward, in-place updates), on the backend's arrays;
* gemm:  the same matrix products done with the backend alone on preallocated arrays -- forward
         x W^T per affine layer, input derivatives dy W for all layers but the first, gradients
         dy^T x for all layers -- which is what the step cannot go below;
and prints frames/s for both and the fraction gemm/ours (1.0 = nothing but the GEMMs).
Writes bench/RESULTS-train_step.md with the machine, versions and the command.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))

from nnetavg.backend import select_device  # noqa: E402
from nnetavg.nnet.network import Network  # noqa: E402
from nnetavg.nnet.proto import init_from_proto, make_proto  # noqa: E402
from nnetavg.train.optim import SGD  # noqa: E402
from nnetavg.train.trainer import Trainer, TrainOptions  # noqa: E402


def parse_dims(s: str) -> tuple[int, int, int, int]:
    inp, rest = s.split("-", 1)
    hid, out = rest.rsplit("-", 1)
    n, h = hid.split("x")
    return int(inp), int(n), int(h), int(out)


def best_time(fn, repeats: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return float(np.median(times))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--dims", default="440-6x2048-8806")
    ap.add_argument("--minibatch", type=int, nargs="+", default=[256, 1024])
    ap.add_argument("--steps", type=int, default=5, help="timed repetitions (median reported)")
    ap.add_argument("--use-gpu", default="no")
    ap.add_argument("--out", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "RESULTS-train_step.md"))
    a = ap.parse_args()
    xp = select_device(a.use_gpu)
    sync = (lambda: xp.cuda.Stream.null.synchronize()) if xp is not np else (lambda: None)
    d_in, layers, hid, d_out = parse_dims(a.dims)
    net = Network(init_from_proto(make_proto(d_in, d_out, layers, hid), seed=1), xp=xp)
    dims = [d_in] + [hid] * layers + [d_out]
    rng = np.random.default_rng(0)
    rows = []
    for mb in a.minibatch:
        x = rng.standard_normal((mb, d_in)).astype(np.float32)
        t = rng.integers(0, d_out, mb).astype(np.int32)
        trainer = Trainer(net, SGD(net), TrainOptions(learn_rate=1e-5, minibatch_size=mb))

        def step():
            trainer.step(x, t)
            sync()
        t_step = best_time(step, a.steps)

        acts = [xp.asarray(rng.standard_normal((mb, d)).astype(np.float32)) for d in dims]
        Ws = [xp.asarray(rng.standard_normal((o, i)).astype(np.float32)) for i, o in zip(dims[:-1], dims[1:])]
        outs = [xp.empty((mb, o), np.float32) for o in dims[1:]]
        dxs = [xp.empty((mb, i), np.float32) for i in dims[:-1]]
        grads = [xp.empty_like(W) for W in Ws]

        def gemms():
            for i, W in enumerate(Ws):
                xp.matmul(acts[i], W.T, out=outs[i])
            for i in range(len(Ws) - 1, -1, -1):
                xp.matmul(outs[i].T, acts[i], out=grads[i])
                if i > 0:
                    xp.matmul(outs[i], Ws[i], out=dxs[i])
            sync()
        t_gemm = best_time(gemms, a.steps)
        flops = 2 * mb * sum(i * o for i, o in zip(dims[:-1], dims[1:])) * 3 - 2 * mb * dims[0] * dims[1]
        rows.append((mb, mb / t_step, mb / t_gemm, t_gemm / t_step, flops / t_gemm / 1e9, t_step * 1e3, t_gemm * 1e3))

    threads = os.environ.get("OPENBLAS_NUM_THREADS", "default")
    head = (f"| minibatch | ours frames/s | GEMM-only frames/s | fraction of GEMM bound | GEMM GFLOP/s | "
            f"step ms | GEMM ms |\n|---|---|---|---|---|---|---|")
    lines = [f"| {mb} | {fo:,.0f} | {fg:,.0f} | {fr:.2f} | {gf:.0f} | {ts:.1f} | {tg:.1f} |"
             for mb, fo, fg, fr, gf, ts, tg in rows]
    info = (f"network {a.dims} sigmoid ({net.num_params:,} parameters, float32), plain SGD, "
            f"backend {'cupy' if xp is not np else 'numpy'} {xp.__version__}, python {platform.python_version()}, "
            f"{platform.machine()} {os.cpu_count()} cores, OPENBLAS_NUM_THREADS={threads}, median of {a.steps} steps")
    table = "\n".join([head] + lines)
    print(info)
    print(table)
    cmd = "python bench/train_step.py " + " ".join(sys.argv[1:])
    with open(a.out, "w") as f:
        f.write(f"# Training step against the GEMM bound\n\nCommand: `{cmd}`\n\n{info}.\n\n{table}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
