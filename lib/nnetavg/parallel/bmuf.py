"""Block momentum (BMUF: Chen & Huo, ICASSP 2016), the filter applied to the all-reduced model
after every block of K local minibatches (``--mixing bmuf``).

With N ranks, a block starts with every rank holding the same model ``w(t-1)``; each rank trains
on K of its own minibatches, then the models are averaged (one all-reduce) into ``w_avg(t)``.
Instead of taking the average as the new model, the block's change is filtered::

    G(t)     = w_avg(t) - w(t-1)                   the block's averaged model change
    D(t)     = eta * D(t-1) + zeta * G(t)          block momentum eta, block learning rate zeta
    w_g(t)   = w_g(t-1) + D(t)                     the global model
    w(t)     = w_g(t) + eta * D(t)   (Nesterov)    what every rank starts the next block from
    w(t)     = w_g(t)                (classical)

(G is measured from the model the block started from, ``w(t-1)``, which for Nesterov is the
look-ahead point, not the global model.)

Defaults: ``zeta = 1``, ``eta = 1 - 1/N``, so that a steady block change is amplified by
``zeta / (1 - eta) = N``: the ranks train with the single-job learning rate (no "rate x N"
rule), and the filter restores the N-fold step that plain averaging of N models divides away.
With N = 1, ``eta = 0`` and BMUF is plain training. The global model ``w_g`` is what is evaluated
and written at the end of an epoch (:meth:`BlockMomentum.finish`); the next epoch's first block
starts again from the look-ahead point (``PeriodicMixer.start_epoch``).

The filter's state (``w_g`` and ``D``, two copies of the flat parameter buffer) is part of every
MPI checkpoint, so a resumed run continues the same filter.
"""

from __future__ import annotations

import numpy as np

from nnetavg.backend import get_array_module, to_numpy
from nnetavg.errors import NnetavgError


def default_block_momentum(world_size: int) -> float:
    """Chen & Huo's choice eta = 1 - 1/N."""
    return 1.0 - 1.0 / max(world_size, 1)


class BlockMomentum:
    def __init__(self, params, block_momentum: float, block_learning_rate: float = 1.0, nesterov: bool = True):
        if not 0.0 <= block_momentum < 1.0:
            raise NnetavgError(f"--block-momentum must be in [0, 1), not {block_momentum}")
        if block_learning_rate <= 0:
            raise NnetavgError(f"--block-learning-rate must be positive, not {block_learning_rate}")
        self.eta, self.zeta, self.nesterov = float(block_momentum), float(block_learning_rate), bool(nesterov)
        xp = get_array_module(params)
        self.global_ = params.copy()
        self.delta = xp.zeros_like(params)

    def start(self, params) -> None:
        """A new run (or epoch) starts from ``params``: the global model; the momentum is kept."""
        self.global_[...] = params

    def __call__(self, buf) -> None:
        """``buf`` holds the all-reduced average of the ranks' models after a block; it is replaced
        by the model the next block starts from."""
        dt = buf.dtype.type
        buf -= self.global_                     # G(t) = w_avg(t) - w(t-1), in place
        if self.nesterov and self.eta:
            buf -= dt(self.eta) * self.delta    # w(t-1) was the look-ahead point w_g(t-1) + eta D(t-1)
        self.delta *= dt(self.eta)
        if self.zeta == 1.0:
            self.delta += buf
        else:
            self.delta += dt(self.zeta) * buf
        self.global_ += self.delta              # w_g(t)
        buf[...] = self.global_
        if self.nesterov and self.eta:
            buf += dt(self.eta) * self.delta

    def finish(self, buf) -> None:
        """At the end of an epoch: the model to evaluate and write is the global model."""
        buf[...] = self.global_

    def state(self) -> dict[str, np.ndarray]:
        return {"bmuf.global": np.array(to_numpy(self.global_)), "bmuf.delta": np.array(to_numpy(self.delta))}

    def load_state(self, state: dict) -> None:
        if "bmuf.global" not in state:
            raise NnetavgError("the checkpoint has no block-momentum state: it was written with another --mixing")
        xp = get_array_module(self.global_)
        self.global_[...] = xp.asarray(state["bmuf.global"])
        self.delta[...] = xp.asarray(state["bmuf.delta"])
