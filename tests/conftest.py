"""Shared fixtures: the array-module fixture over numpy and CuPy, command runners, tiny data."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

BIN_DIR = os.path.dirname(sys.executable)
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# The console commands live beside the interpreter running the tests (the project's .venv).
os.environ["PATH"] = BIN_DIR + os.pathsep + os.environ.get("PATH", "")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")


def _cupy_or_reason():
    try:
        import cupy
    except Exception as exc:  # not installed, or a broken CUDA install
        return None, f"CuPy not importable ({exc.__class__.__name__})"
    try:
        if not cupy.is_available():
            return None, "CuPy installed but no usable GPU"
        cupy.zeros(1)
    except Exception as exc:
        return None, f"CuPy cannot use a GPU ({exc.__class__.__name__})"
    return cupy, ""


@pytest.fixture(params=["numpy", "cupy"])
def xp(request):
    """The array module under test: numpy always; CuPy shown as SKIPPED when no GPU is usable."""
    if request.param == "numpy":
        return np
    cupy, reason = _cupy_or_reason()
    if cupy is None:
        pytest.skip(reason)
    return cupy


def run_cmd(args, check=True, input=None, cwd=None, env=None):
    """Runs a command as a real process; returns CompletedProcess with text stdout/stderr."""
    proc = subprocess.run(args, capture_output=True, text=True, input=input, cwd=cwd, env=env)
    if check and proc.returncode != 0:
        raise AssertionError(f"{args} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    return proc


def make_labelled_data(tmp_path, num_utts=30, feat_dim=6, num_pdfs=5, seed=0, name="d", centers_seed=0):
    """Noisy features around per-class centres (classes in runs of 4 frames), written as ark+scp,
    with pdf alignments as an archive. Returns (feats_scp, ali_ark)."""
    from nnetavg.io.tables import INT_VECTOR, MATRIX, TableWriter
    centers = np.random.default_rng(centers_seed).standard_normal((num_pdfs, feat_dim)) * 2.0
    rng = np.random.default_rng(seed)
    d = tmp_path / name
    d.mkdir(exist_ok=True)
    with TableWriter(f"ark,scp:{d}/feats.ark,{d}/feats.scp", MATRIX) as fw, \
            TableWriter(f"ark:{d}/ali.ark", INT_VECTOR) as aw:
        for u in range(num_utts):
            T = int(rng.integers(40, 80))
            seg = np.repeat(rng.integers(0, num_pdfs, T // 4 + 1), 4)[:T]
            x = centers[seg] + 0.8 * rng.standard_normal((T, feat_dim))
            fw.write(f"utt{u:03d}", x.astype(np.float32))
            aw.write(f"utt{u:03d}", seg.astype(np.int32))
    return str(d / "feats.scp"), str(d / "ali.ark")


def descendant_pids(root: int, pattern: str) -> list[int]:
    """Pids of the descendants of ``root`` (a process this test started) whose command line
    contains ``pattern``: children found with ``pgrep -P`` level by level (MPICH's proxies start
    the ranks in sessions of their own, so a session does not hold them). The suite's rule: a test
    signals or reads only processes it started; it never matches a pattern machine-wide
    (``tests/test_sandbox.py`` checks the rule)."""
    found, frontier = [], [root]
    while frontier:
        children = []
        for pid in frontier:
            out = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout.split()
            children += [int(c) for c in out]
        found += children
        frontier = children
    matching = []
    for pid in found:
        try:
            cmdline = open(f"/proc/{pid}/cmdline", "rb").read().replace(b"\0", b" ").decode(errors="replace")
        except OSError:      # it ended meanwhile
            continue
        if pattern in cmdline:
            matching.append(pid)
    return matching
