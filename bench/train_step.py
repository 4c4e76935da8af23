#!/usr/bin/env python3
"""Training-step throughput against the bare matrix-multiply bound, measured in the same run.

Usage:  .venv/bin/python bench/train_step.py [--dims 440-6x2048-8806] [--minibatch 256 1024] [--steps 5]
e.g.:   .venv/bin/python bench/train_step.py --dims 440-2x512-48 --steps 20

For each minibatch size it times:
* sgd:   one full SGD step of nnet-train-simple's loop (forward, softmax + cross-entropy,
         backward, in-place updates), on the backend's arrays;
* ngsgd: the same step with online natural-gradient updates (nnet-train-ngsgd's defaults), timed
         over whole update periods after the first 10 minibatches (which all update the Fisher
         estimates), so Fisher updates are counted at their steady-state rate;
* gemm:  the same matrix products done with the backend alone on preallocated arrays -- forward
         x W^T per affine layer, input derivatives dy W for all layers but the first, gradients
         dy^T x for all layers -- which is what the step cannot go below;
* torch: when PyTorch is importable (a benchmark-only dependency: ./setup.sh bench), the same
         network and SGD step in PyTorch (nn.Linear + Sigmoid, cross-entropy, torch.optim.SGD) on
         the same number of threads;
and prints frames/s for each, the fraction gemm/sgd (1.0 = nothing but the GEMMs), the
natural-gradient overhead ngsgd/sgd - 1 and ours/PyTorch. All blocks are interleaved.
Writes bench/RESULTS-train_step.md with the machine, versions and the command (--json: figures).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))

from nnetavg.backend import select_device  # noqa: E402
from nnetavg.nnet.network import Network  # noqa: E402
from nnetavg.nnet.proto import init_from_proto, make_proto  # noqa: E402
from nnetavg.train.optim import NGSGD, SGD  # noqa: E402
from nnetavg.train.trainer import Trainer, TrainOptions  # noqa: E402
from nnetavg.allocator import keep_freed_memory  # noqa: E402

keep_freed_memory()   # as the training commands do at their entry (NNETAVG_MALLOC=default: off)


def parse_dims(s: str) -> tuple[int, int, int, int]:
    inp, rest = s.split("-", 1)
    hid, out = rest.rsplit("-", 1)
    n, h = hid.split("x")
    return int(inp), int(n), int(h), int(out)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--dims", default="440-6x2048-8806")
    ap.add_argument("--minibatch", type=int, nargs="+", default=[256, 1024])
    ap.add_argument("--steps", type=int, default=5, help="timed blocks of 4 steps each, interleaved (medians reported)")
    ap.add_argument("--use-gpu", default="no")
    ap.add_argument("--out", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "RESULTS-train_step.md"))
    ap.add_argument("--json", default="", help="also write the figures to this JSON file")
    ap.add_argument("--no-torch", action="store_true", help="skip the PyTorch comparison")
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
        sgd = Trainer(net, SGD(net), TrainOptions(learn_rate=1e-5, minibatch_size=mb))
        ng_net = net.copy()
        ng = Trainer(ng_net, NGSGD(ng_net), TrainOptions(learn_rate=1e-5, minibatch_size=mb))
        for _ in range(11):  # past the initial Fisher updates: t = 11, the next update at t = 14
            ng.step(x, t)
        period = ng.optimizer.ng.update_period

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

        def block(fn):
            """Seconds per step over one NG update period (``period`` steps)."""
            sync()
            t0 = time.perf_counter()
            for _ in range(period):
                fn()
            sync()
            return (time.perf_counter() - t0) / period

        torch_step = None if a.no_torch or xp is not np else make_torch_step(dims, x, t)
        fns = [lambda: sgd.step(x, t), lambda: ng.step(x, t), gemms] + ([torch_step] if torch_step else [])
        # Interleaved blocks, so drift and noise of a shared machine hit all alike.
        blocks = [tuple(block(fn) for fn in fns) for _ in range(a.steps)]
        t_step, t_ng, t_gemm = (float(np.median([b[k] for b in blocks])) for k in range(3))
        t_torch = float(np.median([b[3] for b in blocks])) if torch_step else float("nan")
        overhead = float(np.median([b[1] / b[0] for b in blocks])) - 1
        vs_torch = float(np.median([b[3] / b[0] for b in blocks])) if torch_step else float("nan")
        flops = 2 * mb * sum(i * o for i, o in zip(dims[:-1], dims[1:])) * 3 - 2 * mb * dims[0] * dims[1]
        rows.append((mb, mb / t_step, mb / t_ng, mb / t_gemm, t_gemm / t_step, overhead,
                     flops / t_gemm / 1e9, t_step * 1e3, t_ng * 1e3, t_gemm * 1e3, mb / t_torch, vs_torch))

    threads = os.environ.get("OPENBLAS_NUM_THREADS", "default")
    head = ("| minibatch | SGD frames/s | NG-SGD frames/s | GEMM-only frames/s | SGD fraction of GEMM bound | "
            "NG-SGD overhead | GEMM GFLOP/s | SGD step ms | NG-SGD step ms | GEMM ms | PyTorch frames/s | ours / PyTorch |\n"
            "|---|---|---|---|---|---|---|---|---|---|---|---|")
    lines = [f"| {mb} | {fo:,.0f} | {fn:,.0f} | {fg:,.0f} | {fr:.2f} | {ov:+.1%} | {gf:.0f} | {ts:.1f} | {tn:.1f} | {tg:.1f} "
             f"| {ft:,.0f} | {vt:.2f} |"
             for mb, fo, fn, fg, fr, ov, gf, ts, tn, tg, ft, vt in rows]
    info = (f"network {a.dims} sigmoid ({net.num_params:,} parameters, float32), SGD and online NG-SGD "
            f"(NGSGD's defaults: rank 20/40, update period {period}), "
            f"backend {'cupy' if xp is not np else 'numpy'} {xp.__version__}, python {platform.python_version()}, "
            f"{platform.machine()} {os.cpu_count()} cores, OPENBLAS_NUM_THREADS={threads}, medians of {a.steps} "
            f"interleaved blocks of {period} steps (an update period); overhead = median of the per-block ratios")
    table = "\n".join([head] + lines)
    print(info)
    print(table)
    cmd = "python bench/train_step.py " + " ".join(sys.argv[1:])
    with open(a.out, "w") as f:
        f.write(f"# Training step against the GEMM bound\n\nCommand: `{cmd}`\n\n{info}.\n\n{table}\n")
    if a.json:
        keys = ("minibatch", "sgd_fps", "ngsgd_fps", "gemm_fps", "gemm_fraction", "ng_overhead", "gemm_gflops",
                "sgd_ms", "ngsgd_ms", "gemm_ms", "torch_fps", "ours_vs_torch")
        with open(a.json, "w") as f:
            json.dump({"info": info, "param_bytes": int(net.params.nbytes), "dims": dims,
                       "rows": [dict(zip(keys, r)) for r in rows],
                       "torch": torch_version()}, f, indent=1)
    return 0


def torch_version() -> str:
    try:
        import torch
    except ImportError:
        return ""
    return torch.__version__


def make_torch_step(dims, x, t):
    """The same network and SGD step in PyTorch on the same threads; None without torch."""
    try:
        import torch
    except ImportError:
        return None
    torch.set_num_threads(int(os.environ.get("OPENBLAS_NUM_THREADS", os.cpu_count() or 1)))
    layers = []
    for i, (d_in, d_out) in enumerate(zip(dims[:-1], dims[1:])):
        layers.append(torch.nn.Linear(d_in, d_out))
        if i < len(dims) - 2:
            layers.append(torch.nn.Sigmoid())
    model = torch.nn.Sequential(*layers)
    opt = torch.optim.SGD(model.parameters(), lr=1e-5)
    loss_fn = torch.nn.CrossEntropyLoss(reduction="sum")
    tx, tt = torch.from_numpy(x), torch.from_numpy(t.astype(np.int64))

    def step():
        opt.zero_grad(set_to_none=False)
        loss = loss_fn(model(tx), tt)
        loss.backward()
        opt.step()
        loss.item()
    step()
    return step


if __name__ == "__main__":
    sys.exit(main())
