"""Exact resume of MPI training: a signal to one rank makes all ranks agree to stop after the same
mix, checkpoint and exit 75; rerun, the run ends with the bitwise same model as an uninterrupted
one. The same after kill -9 of a rank in mid-epoch (resumes from the last epoch's checkpoint)."""

import os
import signal
import subprocess

import pytest

from tests.conftest import BIN_DIR, descendant_pids, make_labelled_data, run_cmd

MPIEXEC = os.path.join(BIN_DIR, "mpiexec")
pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(not os.path.exists(MPIEXEC), reason="no mpiexec beside the interpreter")]


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    d = tmp_path_factory.mktemp("mpick")
    for j in (1, 2):
        make_labelled_data(d, num_utts=150, feat_dim=8, num_pdfs=6, seed=j, name=f"a{j}")
    run_cmd(["nnet-init", "--input-dim", "8", "--output-dim", "6", "--hidden-layers", "2", "--hidden-dim", "32",
             f"{d}/0.nnet"])
    return d


def command(d, out, mixing, extra=()):
    return [MPIEXEC, "-n", "2", os.path.join(BIN_DIR, "nnet-train-mpi"), "--world-size", "2", "--optimizer", "ngsgd",
            "--momentum", "0.3", "--mixing", mixing, "--average-every", "3", "--num-epochs", "3",
            "--minibatch-size", "32", "--randomizer-size", "2048", "--report-period", "320", "--learn-rate", "0.005",
            *extra, f"{d}/0.nnet", f"scp:{d}/aJOB/feats.scp", f"ark:{d}/aJOB/ali.ark", out]


def rank_pids(root, marker):
    """The ranks (not mpiexec) of the run this test started (``root``: its mpiexec)."""
    pids = []
    for pid in descendant_pids(root, marker):
        try:
            cmd = open(f"/proc/{pid}/cmdline", "rb").read().split(b"\0")
        except OSError:
            continue
        if any(c.endswith(b"nnet-train-mpi") for c in cmd) and not cmd[0].endswith(b"mpiexec"):
            pids.append(int(pid))
    return pids


def start_and_interrupt(args, wait_for, action):
    """Starts the run, waits until its log shows each of ``wait_for`` in turn, applies
    ``action(pids)``, returns (exit code, log)."""
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines, waiting = [], list(wait_for)
    for line in proc.stdout:
        lines.append(line)
        if waiting[0] in line:
            waiting.pop(0)
            if not waiting:
                action(rank_pids(proc.pid, args[-1]))
                break
    lines += proc.stdout.readlines()
    return proc.wait(timeout=120), "".join(lines)


@pytest.mark.parametrize("mixing", ["butterfly", "ring", "bmuf"])
def test_signal_to_one_rank_stops_all_and_resumes_bitwise(setup, mixing):
    d = setup
    ref = f"{d}/ref.{mixing}.nnet"
    run_cmd(command(d, ref, mixing), check=True)
    out, ck = f"{d}/out.{mixing}.nnet", f"{d}/ck.{mixing}"
    args = command(d, out, mixing, ["--checkpoint", ck])
    rc, text = start_and_interrupt(args, ["epoch 2/3", "progress"], lambda pids: os.kill(pids[-1], signal.SIGUSR1))
    assert rc == 75, text
    assert "preempted" in text and os.path.exists(f"{ck}/state.json") and not os.path.exists(out)
    p = run_cmd(args)
    assert "resuming from" in p.stderr and "minibatches into epoch 3" in p.stderr, p.stderr
    with open(ref, "rb") as a, open(out, "rb") as b:
        assert a.read() == b.read(), "the resumed MPI run differs from the uninterrupted one"


def test_kill_9_mid_epoch_resumes_from_last_epoch(setup):
    d = setup
    ref = f"{d}/ref.allreduce.nnet"
    run_cmd(command(d, ref, "allreduce"))
    out, ck = f"{d}/out.kill.nnet", f"{d}/ck.kill"
    args = command(d, out, "allreduce", ["--checkpoint", ck])
    def kill_after_epoch_1(pids):  # log lines of the ranks can arrive out of order: wait for the checkpoint itself
        import time
        for _ in range(200):
            if os.path.exists(f"{ck}/state.json"):
                break
            time.sleep(0.05)
        os.kill(pids[0], signal.SIGKILL)

    rc, text = start_and_interrupt(args, ["epoch 1/3", "progress"], kill_after_epoch_1)
    assert rc != 0 and not os.path.exists(out), text
    p = run_cmd(args)
    assert "resuming from" in p.stderr and "1 epochs done" in p.stderr, p.stderr
    with open(ref, "rb") as a, open(out, "rb") as b:
        assert a.read() == b.read()
