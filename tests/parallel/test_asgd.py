"""Asynchronous SGD with a parameter server under a real mpiexec: every gradient applied once,
staleness recorded, clean shutdown, a failing worker ends the job."""

import os
import re
import subprocess
import time

import pytest

from tests.conftest import BIN_DIR, make_labelled_data, run_cmd

MPIEXEC = os.path.join(BIN_DIR, "mpiexec")
pytestmark = pytest.mark.skipif(not os.path.exists(MPIEXEC), reason="no mpiexec beside the interpreter")


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("asgd")
    for j in (1, 2, 3):
        make_labelled_data(tmp, num_utts=25, seed=j, name=f"a{j}")
    make_labelled_data(tmp, num_utts=12, seed=99, name="cv")
    run_cmd(["nnet-init", "--input-dim=6", "--output-dim=5", "--hidden-layers=1", "--hidden-dim=24", f"{tmp}/0.nnet"])
    return tmp


def asgd(n, tmp, out, *extra, timeout=120):
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1")
    args = [MPIEXEC, "-n", str(n), "nnet-train-asgd", "--minibatch-size=32", "--randomizer-size=256",
            "--learn-rate=0.01", *extra, f"{tmp}/0.nnet", f"scp:{tmp}/aJOB/feats.scp", f"ark:{tmp}/aJOB/ali.ark",
            str(out)]
    return subprocess.run(args, capture_output=True, text=True, env=env, timeout=timeout)


@pytest.mark.parametrize("ranks", [3, 4])
def test_every_gradient_applied_once(data, ranks):
    p = asgd(ranks, data, data / f"m{ranks}", f"--cv-feats=scp:{data}/cv/feats.scp", f"--cv-ali=ark:{data}/cv/ali.ark",
             "--cv-check-every=20")
    assert p.returncode == 0, p.stderr
    sent = sum(int(n) for n in re.findall(r"worker \d+ sent (\d+) gradients", p.stderr))
    m = re.search(r"server gradients-applied=(\d+) gradients-sent=(\d+) .*frame-accuracy=([0-9.]+).*"
                  r"staleness-histogram=(\S+)", p.stderr)
    assert m and int(m.group(1)) == int(m.group(2)) == sent > 0
    hist = dict(kv.split(":") for kv in m.group(4).split(","))
    assert sum(int(v) for v in hist.values()) == sent
    assert len(re.findall(r"worker \d+ sent", p.stderr)) == ranks - 1
    assert float(m.group(3)) > 0.5
    assert (data / f"m{ranks}").exists() and "writing the" in p.stderr


def test_needs_workers_and_failing_worker_ends_the_job(data):
    p = asgd(1, data, data / "none")
    assert p.returncode != 0 and "at least one worker" in p.stderr
    # worker 2 has no archive; the server and worker 1 are busy: the whole job must end quickly
    (data / "f").mkdir(exist_ok=True)
    if not (data / "f" / "1.scp").exists():
        os.symlink(data / "a1" / "feats.scp", data / "f" / "1.scp")
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1")
    t0 = time.time()
    p = subprocess.run([MPIEXEC, "-n", "3", "nnet-train-asgd", "--minibatch-size=32", f"{data}/0.nnet",
                        f"scp:{data}/f/JOB.scp", f"ark:{data}/aJOB/ali.ark", str(data / "bad")],
                       capture_output=True, text=True, env=env, timeout=60)
    assert p.returncode != 0 and time.time() - t0 < 30
    assert re.search(r"ERROR \(nnet-train-asgd rank 2/3 .*rank 2 failed: .*f/2.scp", p.stderr), p.stderr
    assert not (data / "bad").exists()


def test_adagrad_step_closed_form():
    import numpy as np
    from nnetavg.parallel.server import adagrad_step
    g = np.array([0.0, 1.0, -3.0, 1e-4], np.float64)
    np.testing.assert_allclose(adagrad_step(g.copy()), g / np.sqrt(1 + g * g), rtol=1e-12)


@pytest.mark.parametrize("schedule", ["search", "adagrad"])
def test_server_schedules(data, schedule):
    extra = [f"--lr-schedule={schedule}"]
    if schedule == "search":
        extra += ["--chunk-size=600", f"--search-feats=scp:{data}/a1/feats.scp", f"--search-ali=ark:{data}/a1/ali.ark",
                  "--search-fraction=0.5", "--learn-rate=50"]
    p = asgd(3, data, data / f"s_{schedule}", *extra)
    assert p.returncode == 0, p.stderr
    m = re.search(r"server gradients-applied=(\d+) gradients-sent=(\d+) .*frame-accuracy=([0-9.]+)", p.stderr)
    assert m and m.group(1) == m.group(2) and float(m.group(3)) > 0.5
    if schedule == "search":
        chunks = re.findall(r"chunk (\d+): learn-rate=(\S+) \(baseline (\S+), after (\S+),", p.stderr)
        assert len(chunks) >= 3 and all(float(a) < float(b) for _, _, b, a in chunks)
        assert float(chunks[0][1]) < 50  # the far too large initial rate was shrunk


def rank_pid(marker, rank):
    """The pid of MPI rank ``rank`` of the run whose command line contains ``marker`` (MPICH puts
    PMI_RANK in each rank's environment)."""
    pids = subprocess.run(["pgrep", "-f", marker], capture_output=True, text=True).stdout.split()
    for pid in pids:
        try:
            env = open(f"/proc/{pid}/environ", "rb").read().split(b"\0")
        except OSError:
            continue
        if f"PMI_RANK={rank}".encode() in env:
            return int(pid)
    raise AssertionError(f"no rank {rank} among {pids}")


def test_preempted_server_resumes_every_minibatch_applied_once(tmp_path):
    """SIGUSR1 to the server: it saves its state, stops the workers (dropping gradients in
    flight), all ranks exit 75; the rerun resumes, and across both runs each worker's minibatches
    are applied exactly once. Then a kill -9 of a worker: the rerun resumes from the last periodic
    checkpoint, with the same accounting."""
    import signal

    for j in (1, 2):
        make_labelled_data(tmp_path, num_utts=200, seed=j, name=f"a{j}")
    run_cmd(["nnet-init", "--input-dim=6", "--output-dim=5", "--hidden-layers=2", "--hidden-dim=64", f"{tmp_path}/0.nnet"])
    ref = asgd(3, tmp_path, tmp_path / "ref.nnet")
    assert ref.returncode == 0, ref.stderr
    total = int(re.search(r"server gradients-applied=(\d+)", ref.stderr).group(1))

    def interrupted(sig, who, ckpt_every):
        ck = tmp_path / f"ck.{who}.npz"
        args = [MPIEXEC, "-n", "3", "nnet-train-asgd", "--minibatch-size=32", "--randomizer-size=256",
                "--learn-rate=0.01", f"--checkpoint={ck}", f"--checkpoint-every={ckpt_every}", "--report-period=320",
                f"{tmp_path}/0.nnet", f"scp:{tmp_path}/aJOB/feats.scp", f"ark:{tmp_path}/aJOB/ali.ark",
                str(tmp_path / f"{who}.nnet")]
        env = dict(os.environ, OPENBLAS_NUM_THREADS="1")
        proc = subprocess.Popen(args, stderr=subprocess.PIPE, text=True, env=env)
        lines = []
        for line in proc.stderr:
            lines.append(line)
            if "rank 2/3" in line and "progress" in line:
                os.kill(rank_pid(f"{who}.nnet", 0 if who == "signal" else 2), sig)  # the server / a worker
                break
        lines += proc.stderr.readlines()
        return proc.wait(timeout=120), "".join(lines), args, env

    rc, text, args, env = interrupted(signal.SIGUSR1, "signal", 0)
    assert rc == 75, text
    assert "preempted: server state in" in text and (tmp_path / "ck.signal.npz").exists()
    again = subprocess.run(args, capture_output=True, text=True, env=env, timeout=120)
    assert again.returncode == 0, again.stderr
    m = re.search(r"resuming from \S+: (\d+) gradients applied", again.stderr)
    assert m and 0 < int(m.group(1)) < total
    applied = int(re.search(r"server gradients-applied=(\d+)", again.stderr).group(1))
    assert applied == total, "every minibatch of every worker applied exactly once across the two runs"
    assert not (tmp_path / "ck.signal.npz").exists()

    rc, text, args, env = interrupted(signal.SIGKILL, "kill", 5)
    assert rc != 0 and rc != 75, text
    again = subprocess.run(args, capture_output=True, text=True, env=env, timeout=120)
    assert again.returncode == 0, again.stderr
    assert "resuming from" in again.stderr
    assert int(re.search(r"server gradients-applied=(\d+)", again.stderr).group(1)) == total
