"""Learning-rate schedules (seam 4): objects the trainer asks for the rate at every minibatch.

:class:`ConstantRate` is what one ``nnet-train-simple`` run uses; between the iterations of
parallel training, :func:`exponential_rate` gives Kaldi nnet2's decay, and
:func:`effective_to_job_rate` the "learning rate x number of jobs" rule of nnet2's accel2 scripts and
nnet3: averaging N models each trained with rate eta moves the parameters about as far as one
model trained with eta / N, so the *effective* rate eta / N is what follows the schedule.
"""

from __future__ import annotations

import math


class ConstantRate:
    def __init__(self, learn_rate: float):
        self.rate = float(learn_rate)

    def learning_rate(self, minibatch: int, frames_seen: int) -> float:
        return self.rate


def exponential_rate(initial: float, final: float, iteration: int, num_iters: int) -> float:
    """Kaldi nnet2 ``train_pnorm_simple2.sh``: ``initial * exp(x * ln(final/initial) / num_iters)``
    for iteration x (0-based), and ``final`` on the last iteration."""
    if initial <= 0 or final <= 0:
        raise ValueError("learning rates must be positive")
    if num_iters < 1 or not 0 <= iteration < num_iters:
        raise ValueError(f"iteration {iteration} outside 0..{num_iters - 1}")
    if iteration + 1 >= num_iters:
        return final
    return initial * math.exp(iteration * math.log(final / initial) / num_iters)


def effective_to_job_rate(effective: float, num_jobs: int, scale_by_jobs: bool = True) -> float:
    return effective * num_jobs if scale_by_jobs else effective
