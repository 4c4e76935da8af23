"""Where a step's (or a recipe's) wall time went, read back from its timeline and its jobs' logs.

``steps/common.sh``'s ``start_timeline`` / ``timed`` make every step that uses them append lines
``PHASE ITER START END`` (Unix seconds) to ``DIR/log/timeline``, and ``wall - START END`` for the
whole run at exit (a resumed run appends again: all runs count). The recipes write their stages
the same way (``stage N START END``) into ``EXP/timeline``.

The account of an experiment (:func:`experiment_account`), in seconds:

* ``steps``: the training steps: of each iteration's jobs phase (``train``: first job started to
  last job ended, launcher included), the share the jobs spent inside ``Trainer.step``
  (``step-seconds`` of their ``done`` lines over the launcher's ``elapsed-seconds``);
* ``reading``: the rest of the jobs' training pass (reading, CMVN, splicing, shuffling);
* ``start``: the rest of the jobs phase: process start, imports, model read and write, the launcher;
* ``averaging``: choosing the successful jobs and ``nnet-average``; ``schedule``: the learning rate
  (``nnet-learning-rate``); ``cv``: the CV passes (also those nnet-average runs on the model it
  writes: the ``compute_prob_cv`` log that started inside an averaging phase moves its seconds
  from averaging to CV); ``final``: the final model (combination, copy, its CV); ``setup``:
  before the first iteration;
* ``unaccounted``: the wall time less all of the above (the shell between the phases).
"""

from __future__ import annotations

import glob
import os
from collections import OrderedDict

from nnetavg.errors import NnetavgError
from nnetavg.experiment import LauncherLog

PHASES = ("steps", "reading", "start", "averaging", "schedule", "cv", "final", "setup")
LABELS = {"steps": "training steps", "reading": "data reading (in the training pass)",
          "start": "process start, model I/O, launcher", "averaging": "averaging (nnet-average)",
          "schedule": "learning rate (nnet-learning-rate)", "cv": "CV passes",
          "final": "final model (combination, its CV)", "setup": "setup", "unaccounted": "unaccounted"}


def read_timeline(path: str) -> list[tuple[str, str, float, float, str]]:
    """``(phase, iteration, start, end, name)`` of every line of a timeline file (``name``: the
    words after END, a recipe stage's name; '' when none)."""
    out = []
    try:
        with open(path, encoding="utf-8") as f:
            for n, line in enumerate(f, 1):
                parts = line.split(None, 4)
                if not parts:
                    continue
                try:
                    phase, it, t0, t1 = parts[0], parts[1], float(parts[2]), float(parts[3])
                except (IndexError, ValueError):
                    raise NnetavgError(f"{path}:{n}: not 'PHASE ITER START END': {line.strip()!r}") from None
                out.append((phase, it, t0, t1, parts[4].strip() if len(parts) == 5 else ""))
    except OSError as exc:
        raise NnetavgError(f"cannot read timeline {path}: {exc.strerror}") from None
    return out


def stage_names(timeline: str) -> dict[str, str]:
    """``{"stage N": "stage N: its name"}`` for the named stages of a recipe's timeline."""
    return {f"stage {it}": f"stage {it}: {name}" for p, it, _, _, name in read_timeline(timeline)
            if p == "stage" and name}


def _job_split(logdir: str, iteration: str) -> tuple[float, float]:
    """(steps, reading) as fractions of the jobs' launcher time, over the jobs of one iteration."""
    elapsed = steps = passes = 0.0
    for path in glob.glob(os.path.join(logdir, f"train.{iteration}.*.log")):
        job = LauncherLog(path)
        d, el = job.last_figures(" done "), job.elapsed()
        if "frames" not in d or el <= 0:
            continue
        seconds = d.get("seconds", d["frames"] / max(d.get("frames-per-sec", 0.0), 1e-9))
        elapsed += el
        passes += min(seconds, el)
        steps += min(d.get("step-seconds", seconds), seconds, el)
    if elapsed <= 0:
        return 0.0, 0.0
    return steps / elapsed, (passes - steps) / elapsed


def _cv_inside(logdir: str, iteration: str, t0: float, t1: float) -> float:
    """Seconds of the CV pass of model ITER + 1 when its log says it ran inside [t0, t1]."""
    try:
        path = os.path.join(logdir, f"compute_prob_cv.{int(iteration) + 1}.log")
    except ValueError:
        return 0.0
    if not os.path.exists(path):
        return 0.0
    cv = LauncherLog(path)
    started = cv.started()
    if started is None or not t0 - 1e-3 <= started <= t1:
        return 0.0
    return min(cv.elapsed(), t1 - started, t1 - t0)


def _timeline_of(path: str) -> str:
    return os.path.join(path, "log", "timeline")


def _account(lines: list[tuple[str, str, float, float, str]], logdir: str) -> "OrderedDict[str, float]":
    acc = OrderedDict((k, 0.0) for k in ("wall", *PHASES, "unaccounted"))
    for phase, it, t0, t1, _ in lines:
        span = max(t1 - t0, 0.0)
        if phase == "wall":
            acc["wall"] += span
        elif phase == "train":
            f_steps, f_reading = _job_split(logdir, it)
            acc["steps"] += span * f_steps
            acc["reading"] += span * f_reading
            acc["start"] += span * (1.0 - f_steps - f_reading)
        elif phase == "averaging":
            cv = _cv_inside(logdir, it, t0, t1)
            acc["averaging"] += span - cv
            acc["cv"] += cv
        elif phase in PHASES:
            acc[phase] += span        # any other phase name stays in the unaccounted rest
    acc["unaccounted"] += acc["wall"] - sum(acc[k] for k in PHASES)
    return acc


def experiment_account(path: str) -> "OrderedDict[str, float] | None":
    """Seconds per phase of ``path``'s step (keys: ``wall``, :data:`PHASES`, ``unaccounted``), or
    None when it has no timeline (logs of a step before timelines, or not a train_parallel.sh dir)."""
    tl = _timeline_of(path)
    if not os.path.exists(tl):
        return None
    return _account(read_timeline(tl), os.path.dirname(tl))


def recipe_account(timeline: str, exp_dirs: list[str]) -> "OrderedDict[str, float]":
    """The recipe's wall time (its ``wall`` lines) split into its stages, with the stages that ran
    the experiments in ``exp_dirs`` replaced by those experiments' accounts (their phases summed;
    what a stage spent outside its step's timeline is unaccounted)."""
    lines = read_timeline(timeline)
    wall = sum(t1 - t0 for p, _, t0, t1, _ in lines if p == "wall")
    if wall <= 0:
        raise NnetavgError(f"{timeline}: no 'wall' line (the recipe has not finished)")
    missing = [d for d in exp_dirs if not os.path.exists(_timeline_of(d))]
    if missing:
        raise NnetavgError(f"no timeline in {', '.join(missing)} (log/timeline): cannot account for their time")
    exp_lines = [read_timeline(_timeline_of(d)) for d in exp_dirs]
    exps = [_account(el, os.path.join(d, "log")) for d, el in zip(exp_dirs, exp_lines)]
    # the stages that contain an experiment's step (its wall lines lie inside the stage)
    runs = [(a, b) for el in exp_lines for p, _, a, b, _ in el if p == "wall"]
    acc: OrderedDict[str, float] = OrderedDict([("wall", wall)])
    for p, it, t0, t1, _ in lines:
        if p != "stage":
            continue
        if any(t0 <= a and b <= t1 + 1e-3 for a, b in runs):
            continue   # a training stage: its experiment's phases stand for it
        acc[f"stage {it}"] = acc.get(f"stage {it}", 0.0) + (t1 - t0)
    for phase in PHASES:
        acc[phase] = sum(a[phase] for a in exps)
    acc["unaccounted"] = wall - sum(v for k, v in acc.items() if k not in ("wall", "unaccounted"))
    return acc


def account_table(acc: "OrderedDict[str, float]", stage_names: dict[str, str] | None = None) -> str:
    """A markdown table: phase, seconds, share of the wall time."""
    wall = max(acc["wall"], 1e-9)
    rows = ["| phase | seconds | share of wall time |", "|---|---|---|"]
    for k, v in acc.items():
        if k == "wall":
            continue
        label = (stage_names or {}).get(k, LABELS.get(k, k))
        rows.append(f"| {label} | {v:.1f} | {100 * v / wall:.1f}% |")
    rows.append(f"| **wall time** | {acc['wall']:.1f} | 100% |")
    return "\n".join(rows) + "\n"
