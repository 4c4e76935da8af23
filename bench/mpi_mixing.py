#!/usr/bin/env python3
"""Cost of mixing over MPI against compute, for the 440-6x2048-8806 DNN, measured in one run.

Usage:  mpiexec -n 2 .venv/bin/python bench/mpi_mixing.py [--dims 440-6x2048-8806] [--minibatch 1024]
e.g.:   mpiexec -n 2 .venv/bin/python bench/mpi_mixing.py --repeats 5

Measures, with every rank holding the whole model in one flat float32 buffer:
* raw Sendrecv bandwidth (whole buffer to the partner, bytes/s per rank);
* in-place Allreduce + scale (all-reduce mixing), one butterfly round, one ring round;
* the per-minibatch SGD step time of one rank (its BLAS threads as set, e.g. OPENBLAS_NUM_THREADS=1);
then the fraction of wall time spent mixing when mixing every K = 10 and 20 minibatches, and a
projection of the speed-up at 4..32 ranks:  S(N) = N K t_step / (K t_step + t_allreduce(N)),
t_allreduce(N) = 2 (N-1)/N bytes / bandwidth (ring all-reduce), from the measured bandwidth, for
the measured CPU step time and for an assumed GPU step time (--gpu-step-ms), next to the papers'
9.3x at 16 and 17x at 32 GPUs (Su, Chen & Xu 2015). Rank 0 prints the tables and writes
bench/RESULTS-mpi.md.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))

from nnetavg.nnet.network import Network  # noqa: E402
from nnetavg.nnet.proto import init_from_proto, make_proto  # noqa: E402
from nnetavg.parallel.comm import Communicator  # noqa: E402
from nnetavg.train.optim import SGD  # noqa: E402
from nnetavg.train.trainer import Trainer, TrainOptions  # noqa: E402
from nnetavg.allocator import keep_freed_memory  # noqa: E402

keep_freed_memory()   # as the training commands do at their entry (NNETAVG_MALLOC=default: off)

PAPER = {16: 9.3, 32: 17.0}


def timed(comm, fn, repeats):
    out = []
    for _ in range(repeats):
        comm.barrier()
        t0 = time.perf_counter()
        fn()
        comm.barrier()
        out.append(time.perf_counter() - t0)
    return float(np.median(out))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--dims", default="440-6x2048-8806")
    ap.add_argument("--minibatch", type=int, default=1024)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--gpu-step-ms", type=float, default=80.0,
                    help="assumed per-minibatch compute time of one GPU for the projection")
    ap.add_argument("--out", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "RESULTS-mpi.md"))
    ap.add_argument("--json", default="", help="also write the figures to this JSON file (rank 0)")
    a = ap.parse_args()
    comm = Communicator()
    if comm.size < 2:
        print("run under mpiexec -n 2 (or more)", file=sys.stderr)
        return 2
    inp, rest = a.dims.split("-", 1)
    hid, out = rest.rsplit("-", 1)
    layers, width = (int(v) for v in hid.split("x"))
    net = Network(init_from_proto(make_proto(int(inp), int(out), layers, width), seed=1))
    buf = net.params
    nbytes = buf.nbytes
    partner = comm.rank ^ 1 if comm.size % 2 == 0 else (comm.rank + 1) % comm.size
    recv = np.empty_like(buf)

    t_sendrecv = timed(comm, lambda: comm.comm.Sendrecv(buf, dest=partner, recvbuf=recv, source=partner), a.repeats)
    t_allreduce = timed(comm, lambda: comm.mix(buf, "allreduce"), a.repeats)
    t_butterfly = timed(comm, lambda: comm.mix(buf, "butterfly"), a.repeats) if comm.size & (comm.size - 1) == 0 else float("nan")
    t_ring = timed(comm, lambda: comm.mix(buf, "ring"), a.repeats)

    rng = np.random.default_rng(comm.rank)
    x = rng.standard_normal((a.minibatch, net.input_dim)).astype(np.float32)
    t = rng.integers(0, net.output_dim, a.minibatch).astype(np.int32)
    tr = Trainer(net, SGD(net), TrainOptions(learn_rate=1e-6, minibatch_size=a.minibatch))
    tr.step(x, t)
    t_step = timed(comm, lambda: tr.step(x, t), a.repeats)

    bw = nbytes / t_sendrecv
    ar_bw = 2 * (comm.size - 1) / comm.size * nbytes / t_allreduce  # bus bandwidth of the all-reduce
    if comm.rank != 0:
        return 0
    threads = os.environ.get("OPENBLAS_NUM_THREADS", "default")
    lines = ["# MPI mixing against compute\n",
             f"Command: `mpiexec -n {comm.size} python bench/mpi_mixing.py {' '.join(sys.argv[1:])}`\n",
             f"{a.dims} sigmoid DNN, {net.num_params:,} parameters = {nbytes / 2**20:.0f} MiB float32; {comm.size} ranks "
             f"on {os.cpu_count()} cores ({platform.machine()}), OPENBLAS_NUM_THREADS={threads}, MPICH wheel; "
             f"medians of {a.repeats}.\n",
             "| operation | ms | GB/s |", "|---|---|---|",
             f"| Sendrecv of the whole model (raw) | {t_sendrecv * 1e3:.1f} | {bw / 1e9:.2f} |",
             f"| all-reduce mix (Allreduce + scale) | {t_allreduce * 1e3:.1f} | {ar_bw / 1e9:.2f} (bus: 2(N-1)/N bytes / t) |",
             f"| butterfly mix (one round) | {t_butterfly * 1e3:.1f} | {nbytes / t_butterfly / 1e9:.2f} |",
             f"| ring mix (one round) | {t_ring * 1e3:.1f} | {nbytes / t_ring / 1e9:.2f} |",
             f"| SGD step, minibatch {a.minibatch}, one rank | {t_step * 1e3:.1f} | |",
             f"\nAll-reduce bus bandwidth / raw Sendrecv bandwidth: {ar_bw / bw:.2f}.\n",
             "| mixing every K minibatches | all-reduce | butterfly | ring |", "|---|---|---|---|"]
    fractions = {}
    for K in (10, 20):
        fr = [tm / (K * t_step + tm) for tm in (t_allreduce, t_butterfly, t_ring)]
        fractions[K] = dict(zip(("allreduce", "butterfly", "ring"), fr))
        lines.append(f"| K = {K}: fraction of wall time mixing | {fr[0]:.2%} | {fr[1]:.2%} | {fr[2]:.2%} |")
    if a.json:
        import json
        with open(a.json, "w") as f:
            json.dump({"ranks": comm.size, "step_ms": t_step * 1e3, "allreduce_ms": t_allreduce * 1e3,
                       "sendrecv_gbps": bw / 1e9, "allreduce_bus_gbps": ar_bw / 1e9,
                       "mix_fraction": {str(k): v for k, v in fractions.items()}}, f)
    lines += ["\nProjected speed-up with ring all-reduce every K = 10 minibatches, from the measured bandwidth:\n",
              f"| ranks | CPU step {t_step * 1e3:.0f} ms | assumed GPU step {a.gpu_step_ms:.0f} ms | paper (GPUs) |",
              "|---|---|---|---|"]
    for n in (4, 8, 16, 32):
        t_ar = 2 * (n - 1) / n * nbytes / bw
        s_cpu = n * 10 * t_step / (10 * t_step + t_ar)
        g = a.gpu_step_ms / 1e3
        s_gpu = n * 10 * g / (10 * g + t_ar)
        lines.append(f"| {n} | {s_cpu:.1f}x | {s_gpu:.1f}x | {PAPER.get(n, '') and str(PAPER[n]) + 'x'} |")
    text = "\n".join(lines) + "\n"
    print(text)
    with open(a.out, "w") as f:
        f.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
