"""``run.pl``: run a command, or an array of commands ``JOB=1:N``, on this machine.

Kaldi's interface and log format (``egs/wsj/s5/utils/run.pl``)::

    run.pl [--max-jobs-run K] [--num-threads N] [--gpu G] [--mem M] [JOB=1:N] LOG command ...

* Every occurrence of the job variable in the log name and in the command is replaced by the task
  number; an array job whose log name lacks the variable is an error.
* Arguments without whitespace are passed as they are (so ``\\|`` reaches bash as a pipe), others
  are quoted, single quotes when they contain a double quote.
* Each log starts with ``# command`` and ``# Started at ...`` and ends with
  ``# elapsed-seconds=S.SSS`` (for nnet-report, with the ``# started-unix=T`` line after the start), ``# Accounting: time=S threads=N`` and ``# Ended (code RC) at ..., elapsed time S seconds``.
* At most ``--max-jobs-run`` tasks run at once (default: the number of CPUs); the exit status is
  non-zero when any task failed, with ``run.pl: K / N failed, log is in LOG``.
* ``--retries R`` and ``--max-requeues Q``: see :mod:`nnetavg.jobs.spec`.
* ``--num-threads N`` sets ``OMP_NUM_THREADS`` / ``OPENBLAS_NUM_THREADS`` / ``MKL_NUM_THREADS``
  to N in each task, so parallel jobs do not oversubscribe the cores. Without it the CPUs are
  shared among the tasks that run at once (at least 1 each): an array of 4 jobs on 2 CPUs gets 1
  thread per job, a single task (a CV pass, an average, nnet-combine) gets both CPUs instead of
  leaving one idle. ``--gpu`` and ``--mem`` are accepted and ignored, as Kaldi's run.pl does.
"""

from __future__ import annotations

import concurrent.futures
import os
import subprocess
import time

from nnetavg.jobs.spec import JobSpec, parse_args, run_with_retries


def log_header(cmd: str, t0: float) -> str:
    """The first lines of a launcher log (Kaldi's, with ``started-unix``)."""
    return f"# {cmd} \n# Started at {time.ctime(t0)}\n# started-unix={t0:.3f}\n#\n"


def log_footer(seconds: float, threads: int, rc: int) -> str:
    """The last lines of a launcher log (Kaldi's, with ``elapsed-seconds``)."""
    elapsed = int(round(seconds))
    return (f"# elapsed-seconds={seconds:.3f}\n# Accounting: time={elapsed} threads={threads}\n"
            f"# Ended (code {rc}) at {time.ctime()}, elapsed time {elapsed} seconds\n")


def _run_one(spec: JobSpec, task: int, threads: int) -> tuple[int, int, str]:
    log, cmd = spec.expand(task)
    os.makedirs(os.path.dirname(os.path.abspath(log)), exist_ok=True)
    env = dict(os.environ)
    for v in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        env[v] = str(threads)
    t0 = time.time()
    with open(log, "w", encoding="utf-8") as f:
        f.write(log_header(cmd, t0))
        f.flush()
        proc = subprocess.run(["bash", "-c", cmd], stdout=f, stderr=subprocess.STDOUT, env=env)
        rc = proc.returncode if proc.returncode >= 0 else 128 - proc.returncode
        f.write(log_footer(time.time() - t0, threads, rc))
    return task, rc, log


def run(argv: list[str]) -> int:
    opts, spec = parse_args(argv, "run.pl")
    cpus = os.cpu_count() or 1
    max_jobs = int(opts.get("--max-jobs-run", 0)) or cpus

    def run_batch(tasks: list[int]) -> dict[int, int]:
        at_once = max(1, min(max_jobs, len(tasks)))
        threads = int(opts.get("--num-threads", 0)) or max(1, cpus // at_once)
        with concurrent.futures.ThreadPoolExecutor(max_workers=at_once) as pool:
            return {task: rc for task, rc, _ in pool.map(lambda t: _run_one(spec, t, threads), tasks)}

    return run_with_retries(spec, run_batch, int(opts.get("--retries", 0)), int(opts.get("--max-requeues", 0)),
                            "run.pl")
