"""Frame-level shuffling as nnet1's ``NnetDataRandomizer``, but reproducible.

Frames of whole utterances are appended to a buffer until it holds at least ``randomizer_size``
frames; the buffer is then permuted and cut into minibatches of exactly ``minibatch_size``
frames. The frames left over (fewer than a minibatch) stay for the next fill; at the end of the
data they are dropped, as nnet1 does. Unlike nnet1 (whose ``std::random_device`` makes the order
irreproducible), the permutation comes from a numpy generator seeded with ``--randomizer-seed``.
Targets are int32 alignments or any object with numpy-style indexing and a ``concat(parts)``
static method (soft targets, :class:`nnetavg.train.targets.SoftTargets`).
"""

from __future__ import annotations

from typing import Iterator

import numpy as np


class FrameRandomizer:
    def __init__(self, randomizer_size: int, minibatch_size: int, seed: int, shuffle: bool = True):
        if minibatch_size <= 0 or randomizer_size <= 0:
            raise ValueError("minibatch and randomizer sizes must be positive")
        self.capacity = max(randomizer_size, minibatch_size)
        self.shuffle = shuffle
        self.minibatch_size = minibatch_size
        self.rng = np.random.default_rng(seed)
        self._x: list[np.ndarray] = []
        self._t: list[np.ndarray] = []
        self._frames = 0
        self.dropped = 0
        self._buf: np.ndarray | None = None   # the concatenated frames, reused from fill to fill

    def add(self, x: np.ndarray, t: np.ndarray) -> None:
        self._x.append(x)
        self._t.append(t)
        self._frames += x.shape[0]

    def full(self) -> bool:
        return self._frames >= self.capacity

    def minibatches(self, final: bool = False) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """Shuffles what is buffered and yields full minibatches; keeps or drops the rest.

        The frames are concatenated into one buffer kept from fill to fill, and each minibatch
        is gathered from it by its slice of the permutation: no shuffled copy of the whole
        buffer (tens of MB, freshly page-faulted at every fill), and each minibatch is fresh in
        the cache when the step reads it."""
        if not self._x:
            return
        x = self._concat_x()
        t = _concat(self._t) if len(self._t) > 1 else self._t[0]
        total = x.shape[0]
        # --randomize=false: minibatches in the order of the data (gathered the same way)
        order = self.rng.permutation(total) if self.shuffle else np.arange(total)
        n = (total // self.minibatch_size) * self.minibatch_size
        rest_x, rest_t = x[order[n:]], t[order[n:]]   # copies: the buffer is refilled next time
        self._x, self._t, self._frames = [], [], 0
        if final:
            self.dropped += rest_x.shape[0]
        elif rest_x.shape[0]:
            self.add(rest_x, rest_t)
        for i in range(0, n, self.minibatch_size):
            idx = order[i:i + self.minibatch_size]
            yield x[idx], t[idx]

    def _concat_x(self) -> np.ndarray:
        """The buffered frames in one array: a buffer reused from fill to fill (grown when needed)."""
        if len(self._x) == 1:
            return self._x[0]
        rows = sum(p.shape[0] for p in self._x)
        first = self._x[0]
        buf = self._buf
        if buf is None or buf.shape[0] < rows or buf.shape[1:] != first.shape[1:] or buf.dtype != first.dtype:
            buf = self._buf = np.empty((max(rows, self.capacity + self.minibatch_size),) + first.shape[1:], first.dtype)
        return np.concatenate(self._x, out=buf[:rows])


def _concat(parts: list):
    joiner = next((p for p in parts if hasattr(p, "concat")), None)
    return joiner.concat(parts) if joiner is not None else np.concatenate(parts)
