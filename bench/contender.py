#!/usr/bin/env python3
"""One contender of the training-step comparison, alone in its process (bench/fair_step.py runs
each in turn): builds the network, warms up, times N steps and prints one JSON line.

Usage:  .venv/bin/python bench/contender.py --kind ours-sgd|ours-ngsgd|torch|gemm [--dims D] [--minibatch M]
e.g.:   OPENBLAS_NUM_THREADS=2 .venv/bin/python bench/contender.py --kind torch --minibatch 1024 --steps 6

Kinds:
* ours-sgd / ours-ngsgd: ``Trainer.step`` with SGD / online NG-SGD (nnet-train-simple's loop);
  with --breakdown also the step cut into forward GEMMs, backward GEMMs (input derivatives),
  updates (gradient GEMMs and their application), element-wise work, softmax + objective,
  and the rest (copies, Python), timed one phase at a time (numpy runs synchronously);
  the figure is the median step, for ours-ngsgd the median over whole update periods (16 steps by
  default) of their mean step: its Fisher update is part of its cost (a median step left it out);
* torch: ``nn.Sequential`` of Linear + Sigmoid, ``CrossEntropyLoss(reduction=sum)``, ``optim.SGD``
  on ``torch.set_num_threads(T)`` (T from OPENBLAS_NUM_THREADS), as a PyTorch user writes it;
* torch+numpy: PyTorch's step timed in a process that runs numpy's GEMMs between its steps (the
  old suite's setting: OpenBLAS's and PyTorch's thread pools in one process);
* gemm: only the step's matrix products on preallocated arrays, through the same BLAS calls
  (forward x W^T, input derivatives dy W but the first layer's, the update W -= lr dy^T x
  accumulated in the GEMM), what the step cannot go below with this BLAS.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))


def parse_dims(s: str) -> list[int]:
    inp, rest = s.split("-", 1)
    hid, out = rest.rsplit("-", 1)
    n, h = hid.split("x")
    return [int(inp)] + [int(h)] * int(n) + [int(out)]


def threads() -> int:
    return int(os.environ.get("OPENBLAS_NUM_THREADS", os.cpu_count() or 1))


def ours(kind: str, dims: list[int], mb: int):
    from nnetavg.nnet.network import Network
    from nnetavg.nnet.proto import init_from_proto, make_proto
    from nnetavg.train.optim import NGSGD, SGD
    from nnetavg.allocator import keep_freed_memory
    from nnetavg.train.trainer import Trainer, TrainOptions
    keep_freed_memory()   # as the training commands do at their entry (NNETAVG_MALLOC=default: off)
    net = Network(init_from_proto(make_proto(dims[0], dims[-1], len(dims) - 2, dims[1]), seed=1))
    opt = NGSGD(net) if kind == "ours-ngsgd" else SGD(net)
    trainer = Trainer(net, opt, TrainOptions(learn_rate=1e-5, minibatch_size=mb))
    rng = np.random.default_rng(0)
    x = rng.standard_normal((mb, dims[0])).astype(np.float32)
    t = rng.integers(0, dims[-1], mb).astype(np.int32)
    return (lambda: trainer.step(x, t)), trainer


def torch_step(dims: list[int], mb: int):
    """PyTorch's step (bench/train_step.py's make_torch_step) on this process's threads."""
    from train_step import make_torch_step
    rng = np.random.default_rng(0)
    x = rng.standard_normal((mb, dims[0])).astype(np.float32)
    t = rng.integers(0, dims[-1], mb).astype(np.int32)
    return make_torch_step(dims, x, t)


def gemm_step(dims: list[int], mb: int):
    """The step's matrix products alone, through the BLAS our step uses (lib/nnetavg/blas.py:
    numpy's bundled OpenBLAS, C = alpha op(A) op(B) + beta C straight into preallocated arrays)."""
    from nnetavg.blas import gemm
    rng = np.random.default_rng(0)
    acts = [rng.standard_normal((mb, d)).astype(np.float32) for d in dims]
    Ws = [rng.standard_normal((o, i)).astype(np.float32) for i, o in zip(dims[:-1], dims[1:])]
    outs = [np.empty((mb, o), np.float32) for o in dims[1:]]
    dxs = [np.empty((mb, i), np.float32) for i in dims[:-1]]
    grads = [np.zeros_like(W) for W in Ws]

    def step():
        for i, W in enumerate(Ws):
            gemm(1.0, acts[i], W, 0.0, outs[i], trans_b=True)          # y = x W^T
        for i in range(len(Ws) - 1, -1, -1):
            if i > 0:
                gemm(1.0, outs[i], Ws[i], 0.0, dxs[i])                  # dx = dy W
            gemm(-1e-9, outs[i], acts[i], 1.0, grads[i], trans_a=True)  # W -= lr dy^T x
    return step


class PhaseClock:
    """Adds the time of each call of the wrapped functions to a phase."""

    def __init__(self):
        self.t: dict[str, float] = {}

    def wrap(self, phase: str, fn):
        def timed(*a, **k):
            t0 = time.perf_counter()
            r = fn(*a, **k)
            self.t[phase] = self.t.get(phase, 0.0) + time.perf_counter() - t0
            return r
        return timed


def breakdown(trainer, step, n: int) -> dict[str, float]:
    """Seconds per step in each phase, by timing the components' and optimizer's methods on
    this (bench-only) trainer instance; 'other' is the rest of the step. Each phase is the median
    over the n steps (one slow step, e.g. a page-cache flush, does not move it); 'total' is the
    sum of the medians."""
    from nnetavg.nnet.components import AffineTransform
    from nnetavg.train import trainer as trainer_mod
    clock = PhaseClock()
    for comp in trainer.nnet.components:
        fwd = "forward GEMMs" if isinstance(comp, AffineTransform) else (
            "softmax + objective" if comp.marker == "<Softmax>" else "element-wise")
        bwd = "backward GEMMs" if isinstance(comp, AffineTransform) else "element-wise"
        comp.forward = clock.wrap(fwd, comp.forward)
        comp.backward = clock.wrap(bwd, comp.backward)
    trainer.optimizer.update = clock.wrap("updates (gradient GEMMs + apply)", trainer.optimizer.update)
    orig = trainer_mod.objective
    trainer_mod.objective = clock.wrap("softmax + objective", orig)
    per_step = []
    try:
        for _ in range(n):
            clock.t = {}
            t0 = time.perf_counter()
            step()
            total = time.perf_counter() - t0
            per_step.append({**clock.t, "other (copies, Python)": total - sum(clock.t.values())})
    finally:
        trainer_mod.objective = orig
    out = {k: float(np.median([s.get(k, 0.0) for s in per_step])) for k in per_step[0]}
    out["total"] = sum(out.values())
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--kind", required=True, choices=["ours-sgd", "ours-ngsgd", "torch", "gemm", "torch+numpy"])
    ap.add_argument("--dims", default="440-6x2048-8806")
    ap.add_argument("--minibatch", type=int, default=1024)
    ap.add_argument("--steps", type=int, default=6)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--breakdown", action="store_true")
    a = ap.parse_args()
    dims = parse_dims(a.dims)
    trainer = None
    if a.kind.startswith("ours"):
        step, trainer = ours(a.kind, dims, a.minibatch)
        a.warmup = max(a.warmup, 11) if a.kind == "ours-ngsgd" else a.warmup  # past the first Fisher updates
    elif a.kind == "torch":
        step = torch_step(dims, a.minibatch)
    elif a.kind == "torch+numpy":   # the old suite's setting: numpy (OpenBLAS) work between PyTorch steps
        tstep, nstep = torch_step(dims, a.minibatch), gemm_step(dims, a.minibatch)
        step = None
    else:
        step = gemm_step(dims, a.minibatch)
    times = []
    if step is None:   # torch+numpy: only the PyTorch steps are timed
        for i in range(a.warmup + a.steps):
            nstep()
            t0 = time.perf_counter()
            tstep()
            if i >= a.warmup:
                times.append(time.perf_counter() - t0)
    else:
        for _ in range(a.warmup):
            step()
        for _ in range(a.steps):
            t0 = time.perf_counter()
            step()
            times.append(time.perf_counter() - t0)
    figure = float(np.median(times))
    if a.kind == "ours-ngsgd":
        # NG-SGD's Fisher estimates update every PERIOD-th step: the median step would leave that
        # cost out. Its figure is the median over whole periods of their mean step.
        period = trainer.optimizer.ng.update_period
        while len(times) % period:   # finish the last period
            t0 = time.perf_counter()
            step()
            times.append(time.perf_counter() - t0)
        figure = float(np.median(np.array(times).reshape(-1, period).mean(axis=1)))
    result = {"kind": a.kind, "minibatch": a.minibatch, "threads": threads(), "step_s": times,
              "median_s": figure}
    if a.breakdown and trainer is not None:
        result["breakdown_s"] = breakdown(trainer, step, a.steps)
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
