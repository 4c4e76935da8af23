#!/usr/bin/env python3
"""The training step against PyTorch and the bare GEMMs, measured fairly: every contender in its
own process (bench/contender.py), the same threads, in turn, several rounds; each figure is the
median over rounds of the per-round ratio. Also our step cut into phases.

Usage:  .venv/bin/python bench/fair_step.py [--rounds 3] [--minibatch 256 1024] [--threads 2]
e.g.:   .venv/bin/python bench/fair_step.py --dims 440-3x512-68 --rounds 5 --steps 20

Contenders (one process each, every round, order rotated between rounds):
  ours-sgd, ours-ngsgd, torch, gemm (numpy's BLAS, our bound), and torch+numpy: PyTorch timed in a
  process that also runs numpy GEMMs between its steps, as the old suite did (two thread pools,
  OpenBLAS's and PyTorch's OpenMP, on the same cores) -- kept to show why that figure was wrong;
  ours-sgd-matmul: our SGD step with NNETAVG_BLAS=numpy (updates through matmul and a product
  array instead of gemm with beta = 1: the step before that change, measured in the same run);
  ours-sgd-malloc / ours-ngsgd-malloc: our steps with NNETAVG_MALLOC=default (glibc's own
  thresholds, so every step page-faults its buffers in again: the steps before
  lib/nnetavg/allocator.py, measured in the same run);
  with --mkl LIB (libmkl_rt.so.2 of `pip install mkl`): ours-sgd-mkl and gemm-mkl, our step and
  the bare GEMMs with every GEMM through MKL instead of numpy's OpenBLAS (a side-by-side trial).
Writes bench/RESULTS-fair_step.md (--out) with the machine, versions, the command and the tables.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
KINDS = ["ours-sgd", "ours-ngsgd", "torch", "gemm", "torch+numpy", "ours-sgd-matmul", "ours-sgd-malloc",
         "ours-ngsgd-malloc"]
MKL_KINDS = ["ours-sgd-mkl", "gemm-mkl"]


def run(kind: str, mb: int, a, breakdown: bool = False) -> dict:
    env = dict(os.environ, OPENBLAS_NUM_THREADS=str(a.threads), OMP_NUM_THREADS=str(a.threads),
               MKL_NUM_THREADS=str(a.threads))
    if kind == "ours-sgd-matmul":
        env["NNETAVG_BLAS"], kind = "numpy", "ours-sgd"
    if kind.endswith("-malloc"):
        env["NNETAVG_MALLOC"], kind = "default", kind[:-len("-malloc")]
    if kind.endswith("-mkl"):
        env.update(NNETAVG_BLAS=a.mkl, MKL_THREADING_LAYER="GNU",
                   LD_LIBRARY_PATH=os.path.dirname(a.mkl) + ":" + os.environ.get("LD_LIBRARY_PATH", ""))
        kind = kind[:-4]
    cmd = [sys.executable, os.path.join(HERE, "contender.py"), "--kind", kind, "--dims", a.dims,
           "--minibatch", str(mb), "--steps", str(a.steps)] + (["--breakdown"] if breakdown else [])
    p = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if p.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{p.stderr[-2000:]}")
    return json.loads(p.stdout.strip().splitlines()[-1])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--dims", default="440-6x2048-8806")
    ap.add_argument("--minibatch", type=int, nargs="+", default=[256, 1024])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--steps", type=int, default=6, help="timed steps per process (median taken)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--kinds", nargs="+", default=None, choices=KINDS + MKL_KINDS)
    ap.add_argument("--mkl", default="", help="libmkl_rt.so.2 to try MKL's GEMMs side by side")
    ap.add_argument("--out", default=os.path.join(HERE, "RESULTS-fair_step.md"))
    ap.add_argument("--json", default="", help="also write the figures to this JSON file")
    a = ap.parse_args()
    if a.kinds is None:
        a.kinds = KINDS + (MKL_KINDS if a.mkl else [])
    times = {mb: {k: [] for k in a.kinds} for mb in a.minibatch}
    for r in range(a.rounds):
        order = a.kinds[r % len(a.kinds):] + a.kinds[:r % len(a.kinds)]
        for mb in a.minibatch:
            for kind in order:
                times[mb][kind].append(run(kind, mb, a)["median_s"])
            print(f"round {r + 1}/{a.rounds} minibatch {mb}: " +
                  " ".join(f"{k}={times[mb][k][-1] * 1e3:.0f}ms" for k in a.kinds), flush=True)
    parts = {mb: run("ours-sgd", mb, a, breakdown=True)["breakdown_s"] for mb in a.minibatch}

    def ratio(mb, num, den):   # median over rounds of time(num)/time(den)
        if num not in times[mb] or den not in times[mb]:
            return float("nan")
        return float(np.median(np.array(times[mb][num]) / np.array(times[mb][den])))

    def fps(mb, k):
        return mb / float(np.median(times[mb][k])) if k in times[mb] else float("nan")

    head = ("| minibatch | ours SGD fr/s | ours NG-SGD fr/s | PyTorch fr/s | GEMM-only fr/s | ours / PyTorch | "
            "ours / GEMM bound | NG-SGD overhead | ours / ours with matmul updates | SGD / SGD with malloc defaults | "
            "NG-SGD / NG-SGD with malloc defaults | "
            "PyTorch in a process with numpy: ours / PyTorch | with MKL: ours / PyTorch | MKL GEMMs / OpenBLAS GEMMs |\n"
            "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    rows = [f"| {mb} | {fps(mb, 'ours-sgd'):,.0f} | {fps(mb, 'ours-ngsgd'):,.0f} | {fps(mb, 'torch'):,.0f} | "
            f"{fps(mb, 'gemm'):,.0f} | {ratio(mb, 'torch', 'ours-sgd'):.2f} | {ratio(mb, 'gemm', 'ours-sgd'):.2f} | "
            f"{ratio(mb, 'ours-ngsgd', 'ours-sgd') - 1:+.1%} | {ratio(mb, 'ours-sgd-matmul', 'ours-sgd'):.2f} | "
            f"{ratio(mb, 'ours-sgd-malloc', 'ours-sgd'):.2f} | {ratio(mb, 'ours-ngsgd-malloc', 'ours-ngsgd'):.2f} | "
            f"{ratio(mb, 'torch+numpy', 'ours-sgd'):.2f} | {ratio(mb, 'torch', 'ours-sgd-mkl'):.2f} | "
            f"{ratio(mb, 'gemm', 'gemm-mkl'):.2f} |"
            for mb in a.minibatch]
    phases = list(next(iter(parts.values())))
    bhead = "| phase | " + " | ".join(f"minibatch {mb}: ms (share)" for mb in a.minibatch) + " |\n|---|" + \
        "---|" * len(a.minibatch)
    brows = [f"| {ph} | " + " | ".join(f"{parts[mb][ph] * 1e3:.1f} ({parts[mb][ph] / parts[mb]['total']:.0%})"
                                       for mb in a.minibatch) + " |" for ph in phases]
    try:
        import torch
        tv = torch.__version__
    except ImportError:
        tv = "not installed"
    info = (f"network {a.dims} sigmoid, float32; {a.threads} threads (OPENBLAS/OMP/MKL_NUM_THREADS, "
            f"torch.set_num_threads); every contender in its own process, in turn, {a.rounds} rounds of "
            f"{a.steps} timed steps; figures are medians over rounds of per-round ratios. "
            f"{platform.machine()} {os.cpu_count()} cores, python {platform.python_version()}, numpy {np.__version__}, "
            f"torch {tv}")
    cmd = "python bench/fair_step.py " + " ".join(sys.argv[1:])
    text = (f"# Training step, measured fairly\n\nCommand: `{cmd}`\n\n{info}.\n\n" + "\n".join([head] + rows) +
            "\n\nOur SGD step by phase (one process with timers around each phase; the timers add a little):\n\n" +
            "\n".join([bhead] + brows) + "\n")
    print(text)
    with open(a.out, "w") as f:
        f.write(text)
    if a.json:
        rows_json = [{"minibatch": mb, "sgd_fps": fps(mb, "ours-sgd"), "ngsgd_fps": fps(mb, "ours-ngsgd"),
                      "torch_fps": fps(mb, "torch"), "gemm_fps": fps(mb, "gemm"),
                      "ours_vs_torch": ratio(mb, "torch", "ours-sgd"), "gemm_fraction": ratio(mb, "gemm", "ours-sgd"),
                      "ng_overhead": ratio(mb, "ours-ngsgd", "ours-sgd") - 1,
                      "vs_matmul_updates": ratio(mb, "ours-sgd-matmul", "ours-sgd"),
                      "vs_malloc_defaults": ratio(mb, "ours-sgd-malloc", "ours-sgd"),
                      "ngsgd_vs_malloc_defaults": ratio(mb, "ours-ngsgd-malloc", "ours-ngsgd"),
                      "ours_vs_torch_same_process": ratio(mb, "torch+numpy", "ours-sgd"),
                      "ours_mkl_vs_torch": ratio(mb, "torch", "ours-sgd-mkl"), "mkl_gemm_speedup": ratio(mb, "gemm", "gemm-mkl"),
                      "breakdown_s": parts[mb],
                      "times_s": times[mb]} for mb in a.minibatch]
        with open(a.json, "w") as f:
            json.dump({"info": info, "rows": rows_json}, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
