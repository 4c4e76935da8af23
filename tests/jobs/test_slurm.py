"""slurm.pl and the recipes on a real one-node SLURM started by the tests (tests/slurm_cluster.py):
array jobs and logs, a job that fails once and succeeds on retry, preemption by a signal and
requeue with a bitwise-identical result, kill -9 of a training job, and the synthetic recipe with
file averaging and with MPI under srun."""

import os
import re
import shutil
import signal
import subprocess
import time

import pytest

from tests.conftest import BIN_DIR, REPO, make_labelled_data, run_cmd
from tests.slurm_cluster import LocalSlurm

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def slurm(tmp_path_factory):
    cluster = LocalSlurm(str(tmp_path_factory.mktemp("slurm")))
    if not cluster.start():
        pytest.skip(cluster.reason)
    yield dict(cluster.env, PATH=BIN_DIR + os.pathsep + cluster.env["PATH"])
    cluster.stop()


def slurm_pl(env, cwd, *args, check=True):
    p = subprocess.run(["slurm.pl", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=300)
    if check and p.returncode != 0:
        raise AssertionError(f"slurm.pl {args} failed:\n{p.stdout}\n{p.stderr}")
    return p


def test_array_job_retry_and_failure(slurm, tmp_path):
    slurm_pl(slurm, tmp_path, "JOB=1:3", "log/hello.JOB.log", "echo", "task", "JOB", "array", "$SLURM_ARRAY_TASK_ID")
    for j in (1, 2, 3):
        text = (tmp_path / f"log/hello.{j}.log").read_text()
        assert text.startswith(f"# echo task {j} array $SLURM_ARRAY_TASK_ID") and f"task {j} array {j}" in text
        assert "# Ended (code 0)" in text and "elapsed-seconds=" in text
    # fails the first time only
    cmd = "if [ -f marker ]; then echo second try; else touch marker; exit 3; fi"
    p = slurm_pl(slurm, tmp_path, "--retries", "1", "log/flaky.log", "bash", "-c", cmd)
    assert "failed with status 3; retry 1/1" in p.stdout
    assert "second try" in (tmp_path / "log/flaky.log").read_text()
    assert "# Ended (code 3)" in (tmp_path / "log/flaky.log.try1").read_text()
    # an array where one task always fails: named, with its log
    p = slurm_pl(slurm, tmp_path, "JOB=1:2", "log/bad.JOB.log", "test", "JOB", "-eq", "1", check=False)
    assert p.returncode == 1 and "1 / 2 failed" in p.stdout and "JOB=2 (code 1" in p.stdout


def test_config_file_options(slurm, tmp_path):
    conf = tmp_path / "slurm.conf"
    conf.write_text("command sbatch --export=ALL\noption mem=* --mem=$0\noption num_threads=* --cpus-per-task=$0\n"
                    "default num_threads=1\noption num_threads=1 --cpus-per-task=1\n")
    slurm_pl(slurm, tmp_path, "--config", str(conf), "--mem", "100M", "--num-threads", "2", "log/c.log",
             "bash", "-c", "echo threads=$OPENBLAS_NUM_THREADS cpus=$SLURM_CPUS_PER_TASK")
    assert "threads=2 cpus=2" in (tmp_path / "log/c.log").read_text()
    p = slurm_pl(slurm, tmp_path, "--config", str(conf), "--gpu", "1", "log/d.log", "true", check=False)
    assert p.returncode == 1 and "gpu=1 is not in the configuration" in p.stderr


def job_ids(name, env):
    out = subprocess.run(["squeue", "-h", "-n", name, "-o", "%i"], env=env, capture_output=True, text=True).stdout
    return out.split()


def test_preempted_training_job_is_requeued_and_resumes_bitwise(slurm, tmp_path):
    feats, ali = make_labelled_data(tmp_path, num_utts=400, feat_dim=8, num_pdfs=6)
    run_cmd(["nnet-init", "--input-dim", "8", "--output-dim", "6", "--hidden-layers", "2", "--hidden-dim", "64",
             f"{tmp_path}/0.nnet"])
    train = ["nnet-train-ngsgd", "--minibatch-size", "16", "--randomizer-size", "4096", "--report-period", "800",
             f"{tmp_path}/0.nnet", f"scp:{feats}", f"ark:{ali}"]
    run_cmd([*train, f"{tmp_path}/ref.nnet"])
    proc = subprocess.Popen(["slurm.pl", "log/train.log", *train[:1], "--checkpoint", f"{tmp_path}/ck.npz",
                             *train[1:], f"{tmp_path}/out.nnet"], cwd=tmp_path, env=slurm, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    log = tmp_path / "log/train.log"
    deadline = time.time() + 120
    while time.time() < deadline and not (log.exists() and "progress" in log.read_text()):
        time.sleep(0.1)
    ids = job_ids("train", slurm)
    assert ids, "the job is not in the queue"
    subprocess.run(["scancel", "--full", "--signal=USR1", ids[0]], env=slurm, check=True)
    out, _ = proc.communicate(timeout=300)
    assert proc.returncode == 0, out
    assert "preempted (exit 75); requeued (1/5)" in out
    text = log.read_text()
    assert "resuming from" in text and "# Ended (code 0)" in text
    assert (tmp_path / "ref.nnet").read_bytes() == (tmp_path / "out.nnet").read_bytes()


def recipe_under_slurm(tmp_path, train_cmd, mpi_cmd):
    work = tmp_path / "egs" / "synth" / "s5"
    work.parent.mkdir(parents=True)
    shutil.copytree(os.path.join(REPO, "egs", "synth", "s5"), work, symlinks=False,
                    ignore=shutil.ignore_patterns("data", "egs", "exp"))
    os.symlink(os.path.join(REPO, ".venv"), tmp_path / ".venv")
    (work / "cmd.sh").write_text(f'export train_cmd="{train_cmd}"\nexport cuda_cmd="{train_cmd}"\n'
                                 f'export mpi_cmd="{mpi_cmd}"\n')
    return work


def run_recipe(work, env, *args):
    return subprocess.run(["bash", "run.sh", "--preset", "tiny", "--num-iters", "3", "--hidden-dim", "32",
                           "--hidden-layers", "1", "--linear-baseline", "false", *args],
                          cwd=work, env=env, capture_output=True, text=True, timeout=600)


def test_synth_recipe_under_slurm_files_and_mpi_and_kill_9(slurm, tmp_path):
    work = recipe_under_slurm(tmp_path, "slurm.pl --retries 1", "srun --mpi=pmi2 --overcommit")
    p = run_recipe(work, slurm, "--stop-stage", "6")
    assert p.returncode == 0, p.stdout[-3000:] + p.stderr[-3000:]
    assert re.search(r"run.sh: dnn: CV .*frame-accuracy=0\.[1-9]", p.stdout), p.stdout[-2000:]
    train_log = (work / "exp/dnn/log/train.0.1.log").read_text()
    assert "(SLURM job " in train_log and "# Ended (code 0)" in train_log
    reference = (work / "exp/dnn/final.nnet").read_bytes()

    # kill -9 of one training job in iteration 2: slurm.pl retries it; the model is the same
    shutil.rmtree(work / "exp")
    proc = subprocess.Popen(["bash", "run.sh", "--preset", "tiny", "--num-iters", "3", "--hidden-dim", "32",
                             "--hidden-layers", "1", "--linear-baseline", "false", "--stage", "3", "--stop-stage", "4"],
                            cwd=work, env=slurm, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    log = work / "exp/dnn/log/train.1.2.log"
    deadline = time.time() + 300
    killed = False
    while time.time() < deadline and not killed:
        job = re.search(r"\(SLURM job (\d+)\)", log.read_text()) if log.exists() else None
        if job and "nnet-train-simple" in log.read_text():
            # the processes of that SLURM job (our own submission), as SLURM lists them
            listed = subprocess.run(["scontrol", "listpids", job.group(1)], env=slurm, capture_output=True, text=True)
            for pid in [int(f.split()[0]) for f in listed.stdout.splitlines()[1:] if f.split()[0].isdigit()]:
                try:
                    argv = open(f"/proc/{pid}/cmdline", "rb").read().split(b"\0")
                except OSError:
                    continue
                if b"bash" not in argv[0] and any(a.endswith(b"nnet-train-simple") for a in argv[:2]):
                    os.kill(pid, signal.SIGKILL)
                    killed = True
        time.sleep(0.05)
    out, _ = proc.communicate(timeout=600)
    assert killed and proc.returncode == 0, out
    assert "retry 1/1" in out
    assert (work / "exp/dnn/log/train.1.2.log.try1").exists()
    assert (work / "exp/dnn/final.nnet").read_bytes() == reference

    # MPI under srun --mpi=pmi2 (MPICH wheel), 4 ranks on the one node
    p = subprocess.run(["bash", "steps/train_mpi.sh", "--num-epochs", "2", "--mpi-cmd", "srun --mpi=pmi2 --overcommit",
                        "egs", "exp/dnn/0.nnet", "exp/mpi"], cwd=work, env=dict(slurm, PATH=f"{work}/local:" + slurm["PATH"]),
                       capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stdout + p.stderr
    mpi_log = (work / "exp/mpi/log/train_mpi.log").read_text()
    assert "rank 3/4" in mpi_log and "epoch 2/2" in mpi_log
