"""Small Kaldi programs that Kaldi's nnet1 scripts call: cuda-gpu-available (train.sh,
pretrain_dbn.sh), add-deltas (the feature pipelines with --delta-opts), sum-matrices
(make_priors.sh)."""

import logging
import socket
import sys

import click
import numpy as np

from nnetavg.bin._common import binary_option, fail, kaldi_command
from nnetavg.io.tables import MATRIX, SequentialReader, TableWriter, read_single, write_single

log = logging.getLogger("nnetavg.bin")


@kaldi_command(help="""Tell whether a CUDA GPU can compute here (through CuPy, as nnetavg's
--use-gpu does): exit status 0 after a small computation on the device, 1 without a usable GPU
(the reason is printed), as Kaldi's cuda-gpu-available; Kaldi's steps/nnet/train.sh stops on 1
unless --skip-cuda-check true.

\b
Usage:  cuda-gpu-available
e.g.:   cuda-gpu-available && echo 'train with --use-gpu yes'""", kaldi_prefix=True)
def cuda_gpu_available(verbose):
    from nnetavg import backend
    log.info("### IS CUDA GPU AVAILABLE? '%s' ###", socket.gethostname())
    cupy, why = backend._try_cupy()
    if cupy is None:
        sys.stderr.write(f"### NO CUDA GPU FOR COMPUTATION: {why} ###\n")
        sys.exit(1)
    x = cupy.random.standard_normal((100, 100), dtype=cupy.float32)
    e = cupy.exp(x - x.max(axis=1, keepdims=True))
    ok = bool(cupy.allclose((e / e.sum(axis=1, keepdims=True)).sum(axis=1), 1.0, atol=1e-4))
    name = cupy.cuda.runtime.getDeviceProperties(cupy.cuda.Device().id)["name"]
    name = name.decode() if isinstance(name, bytes) else name
    sys.stderr.write(f"### A CUDA GPU FOR COMPUTATION: {name} ###\n### softmax test on the device: "
                     f"{'OK' if ok else 'WRONG RESULT'}\n")
    sys.exit(0 if ok else 1)


@kaldi_command(help="""Append delta and delta-delta features (Kaldi's add-deltas: regression over
--delta-window frames each side, --delta-order orders; edges repeat the first/last frame).

\b
Usage:  add-deltas [options] FEATS_RSPECIFIER FEATS_WSPECIFIER
e.g.:   add-deltas scp:data/train/feats.scp ark:-""", kaldi_prefix=True)
@click.option("--delta-order", type=int, default=2, show_default=True, help="Order of the deltas")
@click.option("--delta-window", type=int, default=2, show_default=True, help="Frames each side of the regression")
@click.argument("feats_rspecifier")
@click.argument("feats_wspecifier")
def add_deltas_main(delta_order, delta_window, feats_rspecifier, feats_wspecifier, verbose):
    from nnetavg.asr.features import add_deltas
    if delta_order < 0 or delta_window < 1:
        fail(f"--delta-order={delta_order} --delta-window={delta_window}: need order >= 0 and window >= 1")
    n = 0
    with TableWriter(feats_wspecifier, MATRIX) as w:
        for utt, x in SequentialReader(feats_rspecifier, MATRIX):
            w.write(utt, add_deltas(x, delta_order, delta_window) if delta_order else x)
            n += 1
    log.info("Added deltas to %d utterances.", n)


@kaldi_command(help="""Sum matrices of the same size, e.g. the per-job CMVN stats of
steps/nnet/make_priors.sh (Kaldi's sum-matrices).

\b
Usage:  sum-matrices [options] MATRIX_OUT MATRIX_IN1 [MATRIX_IN2 ...]
e.g.:   sum-matrices --binary=false exp/dnn/prior_cmvn_stats exp/dnn/*.prior_cmvn_stats""", kaldi_prefix=True)
@binary_option
@click.argument("matrix_out")
@click.argument("matrices_in", nargs=-1, required=True)
def sum_matrices(binary, matrix_out, matrices_in, verbose):
    total = None
    for path in matrices_in:
        m = np.asarray(read_single(path, MATRIX), dtype=np.float64)
        if total is not None and m.shape != total.shape:
            fail(f"{path}: a {m.shape[0]}x{m.shape[1]} matrix, the first was {total.shape[0]}x{total.shape[1]}")
        total = m if total is None else total + m
    write_single(matrix_out, total, MATRIX, binary)
    log.info("Summed %d matrices of %d x %d.", len(matrices_in), total.shape[0], total.shape[1])
