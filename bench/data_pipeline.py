#!/usr/bin/env python3
"""Data pipeline throughput: reading a feature archive, CMVN, splicing (the feature transform)
and frame shuffling into minibatches -- exactly the path a training pass takes
(nnetavg.data.utterances.labelled_utterances + FrameRandomizer) -- without any training.

Usage:  .venv/bin/python bench/data_pipeline.py [--utts 400] [--frames 300] [--dim 40] [--json FILE]

Prints frames/s of the pipeline. The suite (bench/suite.py) divides it into the training step's
frames/s to get the stall fraction: the share of a pass the arithmetic waits for data, since the
pipeline runs in the same thread before each randomizer fill.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))

from nnetavg.data.randomizer import FrameRandomizer  # noqa: E402
from nnetavg.data.utterances import DataStats, labelled_utterances  # noqa: E402
from nnetavg.io.tables import INT_VECTOR, MATRIX, TableWriter  # noqa: E402
from nnetavg.nnet.components import AddShift, Rescale, Splice  # noqa: E402
from nnetavg.nnet.network import Network  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--utts", type=int, default=400)
    ap.add_argument("--frames", type=int, default=300)
    ap.add_argument("--dim", type=int, default=40)
    ap.add_argument("--splice", type=int, default=5)
    ap.add_argument("--minibatch", type=int, default=256)
    ap.add_argument("--num-pdfs", type=int, default=8806)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--json", default="")
    ap.add_argument("--workdir", default=None, help="Where the temporary archives go (default: the system temp dir)")
    a = ap.parse_args()
    rng = np.random.default_rng(0)
    ctx = 2 * a.splice + 1
    with tempfile.TemporaryDirectory(dir=a.workdir) as d:
        with TableWriter(f"ark,scp:{d}/feats.ark,{d}/feats.scp", MATRIX) as fw, TableWriter(f"ark:{d}/ali.ark", INT_VECTOR) as aw:
            for u in range(a.utts):
                fw.write(f"utt{u:05d}", rng.standard_normal((a.frames, a.dim)).astype(np.float32))
                aw.write(f"utt{u:05d}", rng.integers(0, a.num_pdfs, a.frames).astype(np.int32))
        shift, scale = AddShift(ctx * a.dim, ctx * a.dim), Rescale(ctx * a.dim, ctx * a.dim)
        shift.init = {"shift": np.zeros(ctx * a.dim, np.float32)}
        scale.init = {"scale": np.ones(ctx * a.dim, np.float32)}
        transform = Network([Splice(a.dim, ctx * a.dim, list(range(-a.splice, a.splice + 1))), shift, scale])
        times = []
        for _ in range(a.repeats):
            t0 = time.perf_counter()
            rand = FrameRandomizer(32768, a.minibatch, 777)
            n = 0
            for _, x, t in labelled_utterances(f"scp:{d}/feats.scp", f"ark:{d}/ali.ark", a.num_pdfs, ctx * a.dim,
                                               transform, DataStats()):
                rand.add(x, t)
                if rand.full():
                    n += sum(xb.shape[0] for xb, _ in rand.minibatches())
            n += sum(xb.shape[0] for xb, _ in rand.minibatches(final=True))
            times.append(time.perf_counter() - t0)
    fps = n / float(np.median(times))
    print(f"data pipeline: {a.utts} utterances x {a.frames} frames x {a.dim} dims, splice +-{a.splice}, "
          f"shuffled into minibatches of {a.minibatch}: {fps:,.0f} frames/s (median of {a.repeats})")
    if a.json:
        with open(a.json, "w") as f:
            json.dump({"frames_per_sec": fps, "frames": n, "input_dim": ctx * a.dim}, f)
    return 0


if __name__ == "__main__":
    sys.exit(main())
