"""Averaged SGD: an average of the parameter iterates, kept beside the model (You & Xu, 003 section 2.3).

Two phases, on the flat parameter buffer theta_t after every minibatch t:

1. running average (exponential forgetting, eta = 0.01)::

       avg <- (1 - eta) avg + eta theta_t                                              (1)

2. once the average is better than the current model on the CV set, the plain Polyak-Juditsky
   average of the iterates from then on (the running average counts as the first)::

       avg <- avg + (theta_t - avg) / k,    k = 2, 3, ...                              (2)

The model written out is the average. The running phase forgets the poor early iterates; the
Polyak phase reaches the asymptotically optimal average once SGD hovers around a minimum.
:meth:`IterateAverager.__call__` is a trainer after-minibatch hook; :meth:`swap` exchanges the
model's parameters with the average (for CV evaluation or writing) without copies of the model.
"""

from __future__ import annotations

import logging

import numpy as np

log = logging.getLogger(__name__)


class IterateAverager:
    """``min_updates``: no switch to the Polyak phase before that many minibatches (a plateau near
    chance level can make the running average look better than the current model: on the big
    synthetic corpus the switch came after 600 of 11800 updates, and the Polyak average of
    everything after it was 1.78 CV cross-entropy against the last iterate's 1.65)."""

    def __init__(self, nnet, eta: float = 0.01, min_updates: int = 0):
        if not 0 < eta <= 1:
            raise ValueError("eta must be in (0, 1]")
        self.nnet = nnet
        self.eta = float(eta)
        self.min_updates = int(min_updates)
        self.avg = nnet.params.copy()
        self.polyak = False
        self.count = 1          # iterates in the Polyak average (the running average counts as one)
        self.updates = 0

    def __call__(self, minibatch: int, nnet) -> None:
        theta = nnet.params
        if self.polyak:
            self.count += 1
            self.avg += (theta - self.avg) * (1.0 / self.count)                        # (2)
        else:
            self.avg *= 1.0 - self.eta                                                  # (1)
            self.avg += self.eta * theta
        self.updates += 1

    def consider_switch(self, cv_loss_average: float, cv_loss_current: float) -> bool:
        """Switches to the Polyak phase when the average has the lower CV loss; returns whether
        the averager is (now) in that phase."""
        if not self.polyak and self.updates >= self.min_updates and cv_loss_average < cv_loss_current:
            self.polyak = True
            self.count = 1
            log.info("averaged SGD: the average (CV loss %.6g) beats the current model (%.6g) after %d "
                     "minibatches; plain Polyak averaging from now on", cv_loss_average, cv_loss_current,
                     self.updates)
        return self.polyak

    def state(self) -> dict:
        return {"avg": self.avg.copy(), "polyak": np.array(self.polyak), "count": np.array(self.count),
                "updates": np.array(self.updates)}

    def load_state(self, state: dict) -> None:
        self.avg[...] = self.nnet.xp.asarray(state["avg"])
        self.polyak, self.count, self.updates = bool(state["polyak"]), int(state["count"]), int(state["updates"])

    def swap(self) -> None:
        """Exchanges the model's parameters and the average (call again to swap back)."""
        tmp = self.nnet.params.copy()
        self.nnet.params[...] = self.avg
        self.avg[...] = tmp
