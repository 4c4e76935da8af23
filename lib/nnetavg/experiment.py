"""An experiment directory read back from its logs: what each iteration (or epoch) did, per job
and for the averaged model, and where its time went.

Two layouts, both written by the steps:

* file averaging (``steps/train_parallel.sh``): ``log/train.ITER.JOB.log`` (each job's ``done``
  line: frames, cross-entropy, frame accuracy, frames/s, learning rate; run.pl's
  ``elapsed-seconds``), ``log/average.ITER.log`` (the averaging job) and
  ``log/compute_prob_cv.ITER.log`` (CV of the averaged model ITER; 0 is the initial model);
* MPI (``steps/train_mpi.sh``): ``log/train_mpi.log``, one ``epoch`` line per epoch from each
  rank with the same figures plus ``seconds`` and ``mix-seconds``.

Time of an iteration: the jobs' phase (first start to last end, from the launchers'
``started-unix`` and ``elapsed-seconds`` lines), split into compute (the share of the jobs' time
spent in their training loops) and the rest (I/O, process start, queueing), plus mixing (the
averaging job, or the time spent in MPI mixing) and the CV pass; so a plot shows what the
arithmetic waits for.
"""

from __future__ import annotations

import glob
import os
import re
import time
from dataclasses import dataclass, field, replace

from nnetavg.errors import NnetavgError
from nnetavg.report import parse_line

_RANKS = re.compile(r"\(\S+ rank (\d+)/(\d+) ")


@dataclass
class JobFigures:
    frames: int
    cross_entropy: float
    frame_accuracy: float
    compute_seconds: float
    wall_seconds: float


@dataclass
class Iteration:
    index: int                      # 1-based; the model it produces
    frames_seen: int                # cumulative training frames, all jobs together
    learn_rate: float
    cv_cross_entropy: float
    cv_frame_accuracy: float
    jobs: list[JobFigures] = field(default_factory=list)
    compute_seconds: float = 0.0
    mix_seconds: float = 0.0
    other_seconds: float = 0.0

    @property
    def wall_seconds(self) -> float:
        return self.compute_seconds + self.mix_seconds + self.other_seconds

    @property
    def train_cross_entropy(self) -> float:
        f = sum(j.frames for j in self.jobs)
        return sum(j.cross_entropy * j.frames for j in self.jobs) / max(f, 1)

    @property
    def train_frame_accuracy(self) -> float:
        f = sum(j.frames for j in self.jobs)
        return sum(j.frame_accuracy * j.frames for j in self.jobs) / max(f, 1)


@dataclass
class Experiment:
    name: str
    path: str
    kind: str                       # "files" or "mpi"
    num_jobs: int
    initial_cv: tuple[float, float] | None
    iterations: list[Iteration]
    trainer: str = ""               # the training command (nnet-train-simple, -ngsgd, -mpi)
    mixing: str = ""                # MPI: allreduce | butterfly | ring | bmuf (from the log)
    optimizer: str = ""             # sgd | ngsgd (from the command line in the log)
    final_model: tuple[float, float, str] | None = None   # CV of final.nnet when it is not the last
                                    # iteration's model (combination, best CV): (xent, acc, what)

    @property
    def frames(self) -> int:
        return self.iterations[-1].frames_seen if self.iterations else 0

    @property
    def wall_seconds(self) -> float:
        return sum(it.wall_seconds for it in self.iterations)

    @property
    def frames_per_second(self) -> float:
        return self.frames / max(self.wall_seconds, 1e-9)

    @property
    def mix_fraction(self) -> float:
        return sum(it.mix_seconds for it in self.iterations) / max(self.wall_seconds, 1e-9)

    @property
    def final(self) -> Iteration:
        """The last iteration, with the CV figures of final.nnet when training ended by choosing
        another model (steps/train_parallel.sh --final-model combine|best-cv)."""
        last = self.iterations[-1]
        if self.final_model is None:
            return last
        return replace(last, cv_cross_entropy=self.final_model[0], cv_frame_accuracy=self.final_model[1])


def _lines(path: str) -> list[str]:
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            return f.readlines()
    except OSError as exc:
        raise NnetavgError(f"cannot read log {path}: {exc.strerror}") from None


class LauncherLog:
    """One launcher log (run.pl / slurm.pl format), read once."""

    def __init__(self, path: str):
        self.lines = _lines(path)

    def last_figures(self, marker: str) -> dict[str, float]:
        for line in reversed(self.lines):
            if marker in line:
                return parse_line(line)
        return {}

    def elapsed(self) -> float:
        """Seconds the job took: ``elapsed-seconds`` (ours), else Kaldi's whole seconds."""
        for line in reversed(self.lines):
            if line.startswith("# elapsed-seconds="):
                return float(line.split("=", 1)[1])
        for line in reversed(self.lines):
            m = re.match(r"# Accounting: time=(\d+)", line)
            if m:
                return float(m.group(1))
        return 0.0

    def started(self) -> float | None:
        """When the job started: ``started-unix`` (ours), else Kaldi's ``# Started at`` (whole seconds)."""
        head = self.lines[:6]
        for line in head:
            if line.startswith("# started-unix="):
                return float(line.split("=", 1)[1])
        for line in head:
            m = re.match(r"# Started at (\w{3} \w{3} +\d+ \d\d:\d\d:\d\d \d{4})", line)
            if m:
                try:
                    return time.mktime(time.strptime(m.group(1), "%a %b %d %H:%M:%S %Y"))
                except ValueError:
                    return None
        return None

    def cv(self) -> tuple[float, float] | None:
        f = self.last_figures("frame-accuracy=")
        if "cross-entropy" not in f:
            return None
        return f["cross-entropy"], f["frame-accuracy"]


def _read_files_layout(name: str, path: str) -> Experiment:
    logdir = os.path.join(path, "log")
    iters = sorted({int(m.group(1)) for f in glob.glob(os.path.join(logdir, "train.*.*.log"))
                    if (m := re.search(r"train\.(\d+)\.\d+\.log$", f))})
    cv0 = os.path.join(logdir, "compute_prob_cv.0.log")
    initial = LauncherLog(cv0).cv() if os.path.exists(cv0) else None
    out, seen, num_jobs = [], 0, 0
    for i in iters:
        cv_log = os.path.join(logdir, f"compute_prob_cv.{i + 1}.log")
        job_logs = sorted(glob.glob(os.path.join(logdir, f"train.{i}.*.log")),
                          key=lambda p: int(p.rsplit(".", 2)[1]))
        jobs, starts, lr = [], [], float("nan")
        for jl in map(LauncherLog, job_logs):
            f = jl.last_figures(" done ")
            if "frames" not in f:
                break  # a job of an unfinished iteration
            lr = f.get("learn-rate", lr)
            jobs.append(JobFigures(int(f["frames"]), f["cross-entropy"], f["frame-accuracy"],
                                   f["frames"] / max(f.get("frames-per-sec", 0.0), 1e-9), jl.elapsed()))
            starts.append(jl.started())
        cv_log = LauncherLog(cv_log) if os.path.exists(cv_log) else None
        cv = cv_log.cv() if cv_log else None
        if not jobs or len(jobs) < len(job_logs) or cv is None:
            break
        num_jobs = max(num_jobs, len(jobs))
        seen += sum(j.frames for j in jobs)
        avg_log = os.path.join(logdir, f"average.{i}.log")
        mix = LauncherLog(avg_log).elapsed() if os.path.exists(avg_log) else 0.0
        # The jobs' phase of the iteration: from the first start to the last end when the logs say
        # when they started (jobs may queue: more jobs than slots), else the slowest job.
        if all(t is not None for t in starts):
            span = max(t + j.wall_seconds for t, j in zip(starts, jobs)) - min(starts)
        else:
            span = max(j.wall_seconds for j in jobs)
        busy = sum(j.compute_seconds for j in jobs) / max(sum(j.wall_seconds for j in jobs), 1e-9)
        compute = span * min(1.0, busy)
        out.append(Iteration(i + 1, seen, lr, cv[0], cv[1], jobs, compute, mix, span - compute + cv_log.elapsed()))
    first = sorted(glob.glob(os.path.join(logdir, "train.0.*.log")))
    command = _lines(first[0])[0].lstrip("# ") if first else ""
    trainer = command.split(" ", 1)[0]
    m = re.search(r"--optimizer[= ](\w+)", command)
    optimizer = m.group(1) if m else ("ngsgd" if trainer == "nnet-train-ngsgd" else "sgd")
    final_model = None
    final_log = os.path.join(logdir, "compute_prob_cv.final.log")
    if out and os.path.exists(final_log) and (cv := LauncherLog(final_log).cv()) is not None:
        what_file = os.path.join(path, "final_model")
        what = "".join(_lines(what_file)).strip() if os.path.exists(what_file) else ""
        final_model = (cv[0], cv[1], what)
    return Experiment(name, path, "files", num_jobs, initial, out, trainer, optimizer=optimizer,
                      final_model=final_model)


def _read_mpi_layout(name: str, path: str) -> Experiment:
    by_epoch: dict[int, list[dict]] = {}
    size = 1
    mixing = optimizer = ""
    for line in _lines(os.path.join(path, "log", "train_mpi.log")):
        if not mixing and (mm := re.search(r"; mixing=(\w+) every \d+ minibatches", line)):
            mixing = mm.group(1)
        if not optimizer and line.startswith("nnet-train-mpi ") and (mo := re.search(r"--optimizer[= ](\w+)", line)):
            optimizer = mo.group(1)
        m = re.search(r" epoch (\d+)/\d+ ", line)
        r = _RANKS.search(line)
        if not m or not r:
            continue
        size = int(r.group(2))
        f = parse_line(line)
        f["rank"] = int(r.group(1))
        ranks = by_epoch.setdefault(int(m.group(1)), [])
        ranks[:] = [g for g in ranks if g["rank"] != f["rank"]] + [f]  # a rerun's line replaces the earlier one
    out, seen = [], 0
    for epoch in sorted(by_epoch):
        ranks = by_epoch[epoch]
        r0 = min(ranks, key=lambda f: f["rank"])
        jobs = [JobFigures(int(f["local-frames"]), r0["train-cross-entropy"], r0["train-frame-accuracy"],
                           f["seconds"] - f["mix-seconds"], f["seconds"]) for f in ranks]
        wall = max(f["seconds"] for f in ranks)
        mix = max(f["mix-seconds"] for f in ranks)
        seen += int(r0["train-frames"])
        out.append(Iteration(epoch, seen, r0["learn-rate"], r0["cv-cross-entropy"], r0["cv-frame-accuracy"], jobs,
                             wall - mix, mix, 0.0))
    return Experiment(name, path, "mpi", size, None, out, "nnet-train-mpi", mixing, optimizer or "sgd")


def read_experiment(path: str, name: str | None = None) -> Experiment:
    """The experiment in ``path`` (an exp dir of train_parallel.sh or train_mpi.sh)."""
    name = name or os.path.basename(os.path.normpath(path))
    if os.path.exists(os.path.join(path, "log", "train_mpi.log")):
        exp = _read_mpi_layout(name, path)
    elif glob.glob(os.path.join(path, "log", "train.*.*.log")):
        exp = _read_files_layout(name, path)
    else:
        raise NnetavgError(f"{path}: no training logs (log/train.ITER.JOB.log or log/train_mpi.log)")
    if not exp.iterations:
        raise NnetavgError(f"{path}: no finished iteration in the logs")
    return exp
