"""Exact resume and preemption of a training pass.

A checkpoint holds everything a pass needs to go on as if it had never stopped: the parameters,
the optimizer's state (momentum buffers, natural-gradient Fisher estimates), the trainer's
counters (minibatches and frames, which drive the learning-rate schedules), the objective sums of
the pass so far, and the data position: the number of minibatches of this pass already trained
on. Data order is a pure function of the randomizer seed, so on resume the pass reads and
shuffles the same frames again and skips that many minibatches without computing (I/O only); the
rest of the pass then sees exactly the minibatches, in the same order, that an uninterrupted run
would, and on the CPU with fixed seeds ends with the bitwise same model.

Files are ``.npz`` written atomically (temporary file + rename). Preemption: the signals named in
``--preempt-signals`` (SLURM sends SIGTERM before killing a job, or what ``sbatch --signal``
names) set a flag; the trainer finishes the current minibatch, writes the checkpoint and the
command exits with :data:`PREEMPTED_EXIT` (75, EX_TEMPFAIL), which run.pl and slurm.pl resubmit
(up to ``--max-requeues`` times) without counting it as a failure.
"""

from __future__ import annotations

import logging
import os
import signal

import numpy as np

from nnetavg.backend import to_numpy
from nnetavg.errors import NnetavgError
from nnetavg.fileutil import atomic_output

log = logging.getLogger(__name__)

PREEMPTED_EXIT = 75


class Preempted(Exception):
    """Raised by the trainer after the minibatch during which a preemption signal arrived."""

    def __init__(self, minibatches_in_pass: int, stats):
        super().__init__(f"preempted after minibatch {minibatches_in_pass} of the pass")
        self.minibatches_in_pass = minibatches_in_pass
        self.stats = stats


class PreemptionFlag:
    """Set by any of ``signals`` (names like ``SIGTERM,SIGUSR1``; empty: none)."""

    def __init__(self, signals: str = "SIGTERM,SIGUSR1"):
        self.requested = False
        self.signal_name = ""
        for name in [s.strip() for s in signals.split(",") if s.strip()]:
            try:
                signum = getattr(signal, name if name.startswith("SIG") else "SIG" + name)
            except AttributeError:
                raise NnetavgError(f"--preempt-signals: unknown signal {name!r}") from None
            signal.signal(signum, self._handler)

    def _handler(self, signum, frame):
        self.requested = True
        self.signal_name = signal.Signals(signum).name

    def __call__(self) -> bool:
        return self.requested


def optimizer_state(optimizer) -> dict[str, np.ndarray]:
    return prefixed("opt.", optimizer.state() if hasattr(optimizer, "state") else {})


def write_npz(path: str, arrays: dict) -> None:
    """``arrays`` as an .npz file, written atomically (temporary file + rename)."""
    with atomic_output(path) as f:
        np.savez(f, **arrays)


def load_checkpoint(path: str, what: str = "checkpoint") -> dict[str, np.ndarray]:
    """An .npz file (a checkpoint, or a state like the Fisher estimates) as a dict of arrays."""
    try:
        with np.load(path, allow_pickle=False) as z:
            return {k: z[k] for k in z.files}
    except (OSError, ValueError, EOFError) as exc:
        raise NnetavgError(f"cannot read {what} {path}: {exc}") from None


def substate(state: dict, prefix: str) -> dict:
    """The entries of ``state`` under ``prefix`` (e.g. ``"opt."``), with the prefix removed."""
    return {k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)}


def prefixed(prefix: str, state: dict) -> dict:
    """``state`` with every key under ``prefix``, as host arrays (the inverse of :func:`substate`)."""
    return {f"{prefix}{k}": to_numpy(v) for k, v in state.items()}


def checkpoint_arrays(nnet, optimizer, trainer=None, pass_stats=None, minibatches_in_pass: int = 0) -> dict:
    """Parameters and optimizer state; with ``trainer``, also its counters and the position and
    objective sums of the pass in progress (:meth:`~nnetavg.train.trainer.Trainer.state_dict`)."""
    if trainer is not None:
        return trainer.state_dict(pass_stats, minibatches_in_pass)
    return {"params": to_numpy(nnet.params), **optimizer_state(optimizer)}


def save_checkpoint(path: str, trainer, pass_stats, minibatches_in_pass: int) -> None:
    write_npz(path, trainer.state_dict(pass_stats, minibatches_in_pass))


def restore_position(trainer, ckpt: dict) -> int:
    """The trainer's counters and the pass's objective sums from the checkpoint; returns the
    minibatches of the pass to skip."""
    return trainer.load_state_dict(ckpt, params_and_optimizer=False)


def restore(trainer, ckpt: dict, path: str = "checkpoint") -> int:
    """Puts the whole checkpoint (parameters, optimizer state, position) into ``trainer``; returns
    the minibatches of the pass to skip."""
    return trainer.load_state_dict(ckpt, path=path)


def remove(path: str) -> None:
    try:
        os.remove(path)
    except FileNotFoundError:
        pass
