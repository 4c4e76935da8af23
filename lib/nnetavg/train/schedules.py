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


def default_change_limits(optimizer: str, num_jobs: int, rate_scaled: bool) -> tuple[float, float]:
    """(max-change, max-param-change) when the user sets none: nnet3's 0.75 per component and 2.0
    for the model when plain SGD takes steps N times larger (rate x N jobs or ranks, N > 1), which
    otherwise diverge; none (0, 0) for one job, an unscaled rate, or NG-SGD, whose own
    max-change-per-sample bounds each step. The one place this rule lives: nnet-train-mpi applies
    it, steps/train_parallel.sh asks ``nnet-learning-rate --change-limits-for``."""
    if optimizer == "sgd" and num_jobs > 1 and rate_scaled:
        return 0.75, 2.0
    return 0.0, 0.0


class NewbobSchedule:
    """nnet1's "newbob" learning-rate control (``steps/nnet/train_scheduler.sh``), one decision
    per iteration (epoch) from the CV loss of the model it produced:

    1. ``loss_prev = loss``; **accept** the new model if ``cv_loss < loss`` (or while
       ``iteration <= keep_lr_iters`` or ``<= min_iters``): ``loss = cv_loss`` and it becomes the
       model to continue from; otherwise **reject** it (training continues from the best model; the
       relative improvement is then 0);
    2. no halving logic while ``iteration <= keep_lr_iters``;
    3. ``rel_impr = (loss_prev - loss) / loss_prev``; when already halving and
       ``rel_impr < end_halving_impr`` (0.001): **stop** (unless ``iteration <= min_iters``, in
       which case this iteration neither stops nor halves);
    4. ``rel_impr < start_halving_impr`` (0.01) starts halving; while halving the rate is
       multiplied by ``halving_factor`` (0.5) after every iteration;
    5. stop after ``max_iters`` iterations (20).

    The state is a plain dict (saved as JSON beside the models), so a killed run resumes.
    """

    def __init__(self, learn_rate: float, halving_factor: float = 0.5, start_halving_impr: float = 0.01,
                 end_halving_impr: float = 0.001, min_iters: int = 0, max_iters: int = 20, keep_lr_iters: int = 0):
        self.halving_factor = halving_factor
        self.start_halving_impr = start_halving_impr
        self.end_halving_impr = end_halving_impr
        self.min_iters, self.max_iters, self.keep_lr_iters = min_iters, max_iters, keep_lr_iters
        self.state = {"learn_rate": float(learn_rate), "loss": None, "best_iter": 0, "halving": False,
                      "iterations": 0, "stop": False, "history": []}

    def start(self, initial_cv_loss: float) -> None:
        self.state["loss"] = float(initial_cv_loss)

    def learning_rate(self, minibatch: int = 0, frames_seen: int = 0) -> float:
        return self.state["learn_rate"]

    def after_iteration(self, iteration: int, cv_loss: float) -> bool:
        """Records the CV loss of the model of ``iteration`` (1-based); returns whether it was
        accepted. Updates the rate, the best model and the stop flag."""
        s = self.state
        if s["loss"] is None:
            raise ValueError("call start() with the initial model's CV loss first")
        if iteration != s["iterations"] + 1:
            raise ValueError(f"iteration {iteration} after {s['iterations']}")
        loss_prev = s["loss"]
        accepted = (cv_loss < s["loss"]) or iteration <= self.keep_lr_iters or iteration <= self.min_iters
        if accepted:
            s["loss"] = float(cv_loss)
            s["best_iter"] = iteration
        s["history"].append({"iteration": iteration, "cv_loss": float(cv_loss), "accepted": accepted,
                             "learn_rate": s["learn_rate"]})
        s["iterations"] = iteration
        if iteration > self.keep_lr_iters:
            rel_impr = (loss_prev - s["loss"]) / loss_prev if loss_prev else 0.0
            if s["halving"] and rel_impr < self.end_halving_impr:
                if iteration > self.min_iters:
                    s["stop"] = True   # nnet1 stops here, before halving again
                return accepted        # (below min_iters nnet1 skips the halving too)
            if rel_impr < self.start_halving_impr:
                s["halving"] = True
            if s["halving"]:
                s["learn_rate"] *= self.halving_factor
        if iteration >= self.max_iters:
            s["stop"] = True
        return accepted


class MinibatchDecay:
    """"ASGD-hand" of You & Xu (003): ``lr_t = lr_0 * decay^t`` for minibatch t (0.999 in the paper)."""

    def __init__(self, learn_rate: float, decay: float = 0.999):
        if not 0 < decay <= 1:
            raise ValueError("the per-minibatch decay must be in (0, 1]")
        self.rate, self.decay = float(learn_rate), float(decay)

    def learning_rate(self, minibatch: int, frames_seen: int) -> float:
        return self.rate * self.decay ** minibatch


class XuRate:
    """Xu's averaged-SGD rate (literature.md section 3.3): ``lr_t = lr_0 (1 + a lr_0 t)^-c`` for
    minibatch t, c = 3/4 for averaged SGD, a about the smallest Hessian eigenvalue (L2 strength)."""

    def __init__(self, learn_rate: float, a: float = 1.0, c: float = 0.75):
        if a < 0 or c < 0:
            raise ValueError("a and c must be non-negative")
        self.rate, self.a, self.c = float(learn_rate), float(a), float(c)

    def learning_rate(self, minibatch: int, frames_seen: int) -> float:
        return self.rate * (1.0 + self.a * self.rate * minibatch) ** -self.c


def make_schedule(name: str, learn_rate: float, decay: float = 0.999, xu_a: float = 1.0, xu_c: float = 0.75):
    """The per-minibatch schedule of one training pass, by name (``--lr-schedule``)."""
    if name == "constant":
        return ConstantRate(learn_rate)
    if name == "minibatch-decay":
        return MinibatchDecay(learn_rate, decay)
    if name == "xu":
        return XuRate(learn_rate, xu_a, xu_c)
    raise ValueError(f"--lr-schedule must be constant, minibatch-decay or xu, not {name!r}")
