"""``run.pl``: run a command, or an array of commands ``JOB=1:N``, on this machine.

Kaldi's interface and log format (``egs/wsj/s5/utils/run.pl``)::

    run.pl [--max-jobs-run K] [--num-threads N] [--gpu G] [--mem M] [JOB=1:N] LOG command ...

* Every occurrence of the job variable in the log name and in the command is replaced by the task
  number; an array job whose log name lacks the variable is an error.
* Arguments without whitespace are passed as they are (so ``\\|`` reaches bash as a pipe), others
  are quoted, single quotes when they contain a double quote.
* Each log starts with ``# command`` and ``# Started at ...`` and ends with
  ``# elapsed-seconds=S.SSS`` (for nnet-report), ``# Accounting: time=S threads=N`` and ``# Ended (code RC) at ..., elapsed time S seconds``.
* At most ``--max-jobs-run`` tasks run at once (default: the number of CPUs); the exit status is
  non-zero when any task failed, with ``run.pl: K / N failed, log is in LOG``.
* ``--num-threads N`` sets ``OMP_NUM_THREADS`` / ``OPENBLAS_NUM_THREADS`` / ``MKL_NUM_THREADS``
  to N in each task (default 1), so parallel jobs do not oversubscribe the cores; ``--gpu`` and
  ``--mem`` are accepted and ignored, as Kaldi's run.pl does.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import os
import re
import subprocess
import time

from nnetavg.errors import NnetavgError


@dataclasses.dataclass
class JobSpec:
    var: str | None
    start: int
    end: int
    log: str
    command: str

    def expand(self, task: int) -> tuple[str, str]:
        if self.var is None:
            return self.log, self.command
        pat = re.compile(re.escape(self.var))
        return pat.sub(str(task), self.log), pat.sub(str(task), self.command)


def quote_args(args: list[str]) -> str:
    out = []
    for a in args:
        if re.fullmatch(r"\S+", a):
            out.append(a)
        elif '"' in a:
            out.append("'" + a + "'")
        else:
            out.append('"' + a + '"')
    return " ".join(out)


_QUEUE_OPTS_WITH_VALUE = {"--max-jobs-run", "-tc", "--num-threads", "--gpu", "--mem", "--time", "--config",
                          "-q", "-l", "--partition"}


def parse_args(argv: list[str]) -> tuple[dict[str, str], JobSpec]:
    opts: dict[str, str] = {}
    i = 0
    while i < len(argv) and argv[i].startswith("-"):
        a = argv[i]
        if "=" in a and a.split("=", 1)[0] in _QUEUE_OPTS_WITH_VALUE:
            k, v = a.split("=", 1)
            opts[k] = v
            i += 1
        elif a == "-pe" and i + 2 < len(argv):   # SGE "-pe smp N"
            opts["--num-threads"] = argv[i + 2]
            i += 3
        elif a in _QUEUE_OPTS_WITH_VALUE and i + 1 < len(argv):
            opts[a] = argv[i + 1]
            i += 2
        else:
            raise NnetavgError(f"run.pl: unknown option {a}")
    if "-tc" in opts:
        opts["--max-jobs-run"] = opts.pop("-tc")
    rest = argv[i:]
    var, start, end = None, 1, 1
    if rest:
        m = re.fullmatch(r"([A-Za-z_]\w*)=(\d+)(?::(\d+))?", rest[0])
        if m:
            var, start = m.group(1), int(m.group(2))
            end = int(m.group(3)) if m.group(3) else start
            rest = rest[1:]
            if start < 1 or end < start:
                raise NnetavgError(f"run.pl: invalid job range {var}={start}:{end}")
    if len(rest) < 2:
        raise NnetavgError("usage: run.pl [options] [JOB=1:N] LOG command [args...]")
    log, cmd = rest[0], quote_args(rest[1:])
    if var is not None and end > start and var not in log:
        raise NnetavgError(f"run.pl: array job {var}={start}:{end} but the log name {log} does not contain {var}")
    return opts, JobSpec(var, start, end, log, cmd)


def _run_one(spec: JobSpec, task: int, threads: int) -> tuple[int, int, str]:
    log, cmd = spec.expand(task)
    os.makedirs(os.path.dirname(os.path.abspath(log)), exist_ok=True)
    env = dict(os.environ)
    for v in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        env[v] = str(threads)
    t0 = time.time()
    with open(log, "w", encoding="utf-8") as f:
        f.write(f"# {cmd} \n# Started at {time.ctime(t0)}\n#\n")
        f.flush()
        proc = subprocess.run(["bash", "-c", cmd], stdout=f, stderr=subprocess.STDOUT, env=env)
        seconds = time.time() - t0
        elapsed = int(round(seconds))
        rc = proc.returncode if proc.returncode >= 0 else 128 - proc.returncode
        f.write(f"# elapsed-seconds={seconds:.3f}\n"
                f"# Accounting: time={elapsed} threads={threads}\n"
                f"# Ended (code {rc}) at {time.ctime()}, elapsed time {elapsed} seconds\n")
    return task, rc, log


def run(argv: list[str]) -> int:
    opts, spec = parse_args(argv)
    threads = int(opts.get("--num-threads", 1))
    max_jobs = int(opts.get("--max-jobs-run", 0)) or (os.cpu_count() or 1)
    tasks = list(range(spec.start, spec.end + 1))
    failed: list[tuple[int, int, str]] = []
    with concurrent.futures.ThreadPoolExecutor(max_workers=max(1, min(max_jobs, len(tasks)))) as pool:
        for task, rc, log in pool.map(lambda t: _run_one(spec, t, threads), tasks):
            if rc != 0:
                failed.append((task, rc, log))
    if failed:
        if spec.var is None or len(tasks) == 1:
            print(f"run.pl: job failed with status {failed[0][1]}, log is in {failed[0][2]}", flush=True)
        else:
            logs = spec.log.replace(spec.var, "*")
            names = ", ".join(f"{spec.var}={t} (code {rc}, {log})" for t, rc, log in failed[:5])
            print(f"run.pl: {len(failed)} / {len(tasks)} failed, log is in {logs}: {names}", flush=True)
        return 1
    return 0
