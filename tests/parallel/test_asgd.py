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
