"""What run.pl and slurm.pl share: Kaldi's command line (options, ``JOB=1:N``, LOG, command),
the log file's header and footer, and resubmission of failed and preempted tasks.

* ``--retries R``: a task that fails (non-zero exit) is run again, up to R more times; the failed
  attempt's log is kept as ``LOG.tryK``.
* ``--max-requeues Q``: a task that exits with 75 (it was preempted and wrote a checkpoint, see
  :mod:`nnetavg.train.checkpoint`) is resubmitted up to Q times; this is not a failure and does
  not use up a retry.
"""

from __future__ import annotations

import dataclasses
import os
import re
from typing import Callable

from nnetavg.errors import NnetavgError

PREEMPTED_EXIT = 75  # the trainers' exit code after a preemption checkpoint (EX_TEMPFAIL)


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
                          "-q", "-l", "--partition", "--retries", "--max-requeues"}


def parse_args(argv: list[str], prog: str = "run.pl") -> tuple[dict[str, str], JobSpec]:
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
            raise NnetavgError(f"{prog}: unknown option {a}")
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
                raise NnetavgError(f"{prog}: invalid job range {var}={start}:{end}")
    if len(rest) < 2:
        raise NnetavgError(f"usage: {prog} [options] [JOB=1:N] LOG command [args...]")
    log, cmd = rest[0], quote_args(rest[1:])
    if var is not None and end > start and var not in log:
        raise NnetavgError(f"{prog}: array job {var}={start}:{end} but the log name {log} does not contain {var}")
    return opts, JobSpec(var, start, end, log, cmd)




def run_with_retries(spec: JobSpec, run_batch: Callable[[list[int]], dict[int, int]], retries: int = 0,
                     max_requeues: int = 0, prog: str = "run.pl") -> int:
    """Runs all tasks of ``spec`` through ``run_batch`` (tasks -> exit codes), resubmitting failed
    ones up to ``retries`` times and preempted ones up to ``max_requeues`` times. Returns 0 when
    every task succeeded, else 1 after naming the failed ones."""
    tasks = list(range(spec.start, spec.end + 1))
    tries = dict.fromkeys(tasks, 0)
    requeues = dict.fromkeys(tasks, 0)
    final: dict[int, int] = {}
    pending = tasks
    while pending:
        codes = run_batch(pending)
        pending = []
        for task in sorted(codes):
            rc = codes[task]
            log = spec.expand(task)[0]
            what = f"{spec.var}={task} " if spec.var else ""
            if rc == 0:
                final[task] = 0
            elif rc == PREEMPTED_EXIT and requeues[task] < max_requeues:
                requeues[task] += 1
                print(f"{prog}: {what}preempted (exit {rc}); requeued ({requeues[task]}/{max_requeues}), log is in {log}",
                      flush=True)
                pending.append(task)
            elif rc != PREEMPTED_EXIT and tries[task] < retries:
                tries[task] += 1
                if os.path.exists(log):
                    os.replace(log, f"{log}.try{tries[task]}")
                print(f"{prog}: {what}failed with status {rc}; retry {tries[task]}/{retries} "
                      f"(failed log kept as {log}.try{tries[task]})", flush=True)
                pending.append(task)
            else:
                final[task] = rc
    failed = [(t, rc, spec.expand(t)[0]) for t, rc in sorted(final.items()) if rc != 0]
    if failed:
        if spec.var is None or len(tasks) == 1:
            print(f"{prog}: job failed with status {failed[0][1]}, log is in {failed[0][2]}", flush=True)
        else:
            logs = spec.log.replace(spec.var, "*")
            names = ", ".join(f"{spec.var}={t} (code {rc}, {log})" for t, rc, log in failed[:5])
            print(f"{prog}: {len(failed)} / {len(tasks)} failed, log is in {logs}: {names}", flush=True)
        return 1
    return 0
