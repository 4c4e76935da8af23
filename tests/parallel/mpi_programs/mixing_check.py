"""Run under mpiexec: checks the mixing patterns against their closed forms on every rank.

Each rank's buffer is a known function of its rank, so every rank computes what it should hold."""

import sys

import numpy as np

from nnetavg.parallel.comm import Communicator


def start(rank, n=1003):  # odd size, float32, distinct per rank
    return (np.arange(n, dtype=np.float32) * 0.001 + rank ** 2 + 0.5 * rank).astype(np.float32)


def main() -> int:
    comm = Communicator()
    N, r = comm.size, comm.rank
    everyone = np.stack([start(k) for k in range(N)])

    buf = start(r)
    comm.mix(buf, "allreduce")
    np.testing.assert_allclose(buf, everyone.mean(axis=0), rtol=1e-6)

    if N & (N - 1) == 0:
        buf = start(r)
        comm.mixes = 0
        for _ in range(int(np.log2(N))):
            comm.mix(buf, "butterfly")
        np.testing.assert_allclose(buf, everyone.mean(axis=0), rtol=1e-6)  # exact after log2 N rounds
        # one round: the pair average with partner rank XOR 1
        buf = start(r)
        comm.mixes = 0
        comm.mix(buf, "butterfly")
        np.testing.assert_allclose(buf, (everyone[r] + everyone[r ^ 1]) / 2, rtol=1e-6)

    buf = start(r)
    comm.mix(buf, "ring")
    np.testing.assert_allclose(buf, (everyone[r] + everyone[(r - 1) % N]) / 2, rtol=1e-6)
    buf = start(r)
    comm.mix(buf, "ring")
    comm.mix(buf, "ring")  # two rounds: (x_r + 2 x_{r-1} + x_{r-2}) / 4
    np.testing.assert_allclose(buf, (everyone[r] + 2 * everyone[(r - 1) % N] + everyone[(r - 2) % N]) / 4, rtol=1e-6)

    total = comm.allreduce_sum([r, 1])
    assert total.tolist() == [N * (N - 1) / 2, N]
    print(f"rank {r} of {N}: mixing OK", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
