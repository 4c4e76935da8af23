"""``slurm.pl``: run a command or an array of commands ``JOB=1:N`` as SLURM jobs, with the
interface of Kaldi's ``egs/wsj/s5/utils/parallel/slurm.pl``::

    slurm.pl [--config conf/slurm.conf] [--gpu G] [--mem M] [--num-threads N] [--time T]
             [--partition P] [--max-jobs-run K] [--retries R] [--max-requeues Q] [JOB=1:N] LOG command ...

* One ``sbatch --wait`` per submission: an array job (``--array=1-N%K``) for ``JOB=1:N``, a plain
  job otherwise; it returns when every task has ended. The environment is exported
  (``--export=ALL``: PATH with the project's commands, the recipe's variables).
* Each task writes LOG exactly as run.pl does (``# command``, ``# Started at``, the output,
  ``# elapsed-seconds``, ``# Accounting``, ``# Ended (code RC)``) and its exit code to a file in
  ``LOGDIR/q/``, where the generated scripts and SLURM's own output also go. A task killed
  without writing its code (node failure, ``kill -9`` of the task's shell) counts as failed.
* Signals SLURM sends before preempting or at a time limit (SIGTERM, or what ``--signal``
  names) reach the command; the task shell outlives them and records the command's exit code, so a
  trainer that checkpointed and exited with 75 is requeued (``--max-requeues``, default from the
  config, 5), and failures are retried (``--retries``).
* ``conf/slurm.conf`` uses Kaldi's format: ``command sbatch ...`` (the submit command and fixed
  options), ``option NAME=* ARGS`` (``$0`` is replaced by the value), ``option NAME=VALUE ARGS``
  (an exact value), ``default NAME=VALUE``. The built-in configuration below is used without one.
"""

from __future__ import annotations

import os
import shlex
import subprocess

from nnetavg.errors import NnetavgError
from nnetavg.jobs.spec import JobSpec, parse_args, run_with_retries

DEFAULT_CONFIG = """\
command sbatch --export=ALL
option time=* --time=$0
option mem=* --mem-per-cpu=$0
option mem=0
option num_threads=* --cpus-per-task=$0
option num_threads=1 --cpus-per-task=1
option max_jobs_run=*
default gpu=0
option gpu=0
option gpu=* --gres=gpu:$0
option partition=* --partition=$0
default retries=0
default max_requeues=5
"""

_CLI_TO_NAME = {"--gpu": "gpu", "--mem": "mem", "--num-threads": "num_threads", "--time": "time",
                "--partition": "partition", "--max-jobs-run": "max_jobs_run", "--retries": "retries",
                "--max-requeues": "max_requeues"}
_NOT_SBATCH = {"max_jobs_run", "retries", "max_requeues"}  # handled by slurm.pl itself


class SlurmConfig:
    def __init__(self, text: str, source: str = "built-in configuration"):
        self.command: list[str] = []
        self.exact: dict[tuple[str, str], list[str]] = {}
        self.wild: dict[str, list[str]] = {}
        self.defaults: dict[str, str] = {}
        for n, line in enumerate(text.splitlines(), 1):
            line = line.split("#", 1)[0].strip()
            if not line:
                continue
            kind, _, rest = line.partition(" ")
            if kind == "command":
                self.command = shlex.split(rest)
            elif kind in ("option", "default"):
                head, _, args = rest.strip().partition(" ")
                if "=" not in head:
                    raise NnetavgError(f"{source}:{n}: expected NAME=VALUE after {kind}, got {head!r}")
                name, value = head.split("=", 1)
                if kind == "default":
                    self.defaults[name] = value
                elif value == "*":
                    self.wild[name] = shlex.split(args)
                else:
                    self.exact[(name, value)] = shlex.split(args)
            else:
                raise NnetavgError(f"{source}:{n}: unknown line type {kind!r} (command, option or default)")
        if not self.command:
            raise NnetavgError(f"{source}: no 'command' line (e.g. command sbatch --export=ALL)")

    @classmethod
    def load(cls, path: str | None) -> "SlurmConfig":
        if not path:
            return cls(DEFAULT_CONFIG)
        try:
            with open(path, encoding="utf-8") as f:
                return cls(f.read(), path)
        except OSError as exc:
            raise NnetavgError(f"slurm.pl: cannot read config {path}: {exc.strerror}") from None

    def sbatch_args(self, values: dict[str, str]) -> list[str]:
        args = list(self.command)
        for name, value in {**self.defaults, **values}.items():
            if name in _NOT_SBATCH:
                continue
            if (name, value) in self.exact:
                args += self.exact[(name, value)]
            elif name in self.wild:
                args += [a.replace("$0", value) for a in self.wild[name]]
            else:
                raise NnetavgError(f"slurm.pl: option {name}={value} is not in the configuration")
        return args


def _task_script(spec: JobSpec, task: int, threads: int, rc_file: str) -> str:
    log, cmd = spec.expand(task)
    log = os.path.abspath(log)
    header = f"# {cmd} "
    return f"""#!/bin/bash
# generated by slurm.pl: task {task} of {spec.log}
cd {shlex.quote(os.getcwd())}
export OMP_NUM_THREADS={threads} OPENBLAS_NUM_THREADS={threads} MKL_NUM_THREADS={threads}
log={shlex.quote(log)}
mkdir -p "$(dirname "$log")"
rm -f {shlex.quote(rc_file)}
start=$(date +%s.%N)
{{ printf '%s\\n' {shlex.quote(header)}; echo "# Started at $(date) on $(hostname) (SLURM job ${{SLURM_JOB_ID:-?}})"; echo "# started-unix=$start"; echo '#'; }} > "$log"
bash -c {shlex.quote(cmd)} >> "$log" 2>&1 &
pid=$!
trap 'echo "# slurm.pl: task shell got SIGTERM" >> "$log"' TERM   # set after the fork: the command keeps
trap 'echo "# slurm.pl: task shell got SIGUSR1" >> "$log"' USR1   # its own handlers; we outlive signals
while :; do
  wait $pid; rc=$?
  kill -0 $pid 2>/dev/null || break
done
end=$(date +%s.%N)
secs=$(awk -v a=$start -v b=$end 'BEGIN {{ printf "%.3f", b - a }}')
{{ echo "# elapsed-seconds=$secs"; echo "# Accounting: time=${{secs%.*}} threads={threads}"; echo "# Ended (code $rc) at $(date), elapsed time ${{secs%.*}} seconds"; }} >> "$log"
echo $rc > {shlex.quote(rc_file)}.tmp && mv {shlex.quote(rc_file)}.tmp {shlex.quote(rc_file)}
exit $rc
"""


def run(argv: list[str]) -> int:
    opts, spec = parse_args(argv, "slurm.pl")
    config = SlurmConfig.load(opts.pop("--config", None))
    values = {_CLI_TO_NAME[k]: v for k, v in opts.items() if k in _CLI_TO_NAME}
    unknown = [k for k in opts if k not in _CLI_TO_NAME]
    if unknown:
        raise NnetavgError(f"slurm.pl: option {unknown[0]} is not supported")
    merged = {**config.defaults, **values}
    threads = int(merged.get("num_threads", 1))
    max_jobs = int(merged.get("max_jobs_run", 0) or 0)
    qdir = os.path.join(os.path.dirname(os.path.abspath(spec.log)) or ".", "q")
    os.makedirs(qdir, exist_ok=True)
    base = os.path.basename(spec.log).replace(spec.var or "\0", "X").removesuffix(".log")
    sbatch = config.sbatch_args(values)

    def rc_file(task: int) -> str:
        return os.path.join(qdir, f"{base}.{task}.rc")

    def run_batch(tasks: list[int]) -> dict[int, int]:
        for t in tasks:
            path = os.path.join(qdir, f"{base}.{t}.sh")
            with open(path, "w") as f:
                f.write(_task_script(spec, t, threads, rc_file(t)))
        array = spec.var is not None
        launcher = os.path.join(qdir, f"{base}.sh")
        with open(launcher, "w") as f:
            task_ref = "$SLURM_ARRAY_TASK_ID" if array else str(tasks[0])
            f.write(f"#!/bin/bash\nexec bash {shlex.quote(qdir)}/{base}.{task_ref}.sh\n")
        args = [*sbatch, "--wait", "--job-name", base,
                "--output", os.path.join(qdir, f"{base}.%a.out" if array else f"{base}.out")]
        if array:
            args += ["--array", ",".join(map(str, tasks)) + (f"%{max_jobs}" if max_jobs else "")]
        proc = subprocess.run([*args, launcher], capture_output=True, text=True)
        if "Submitted batch job" not in proc.stdout:
            raise NnetavgError(f"slurm.pl: {' '.join(args[:2])} ... failed: {proc.stderr.strip() or proc.stdout.strip()}")
        codes = {}
        for t in tasks:
            try:
                with open(rc_file(t)) as f:
                    codes[t] = int(f.read().strip())
            except (OSError, ValueError):
                codes[t] = 1  # killed before it could record its code
        return codes

    return run_with_retries(spec, run_batch, int(merged.get("retries", 0)), int(merged.get("max_requeues", 0)),
                            "slurm.pl")
