"""Run under mpiexec: block momentum (BMUF) against its closed form on a toy problem.

Every rank's "minibatch" moves its model by a fixed, rank-specific step s_r (a linear problem),
so a block of K minibatches from w changes rank r's model to w + K s_r, the all-reduced average to
w + K s_bar, and the filter's global model follows, in closed form (D(0) = 0):

    D(t) = eta D(t-1) + zeta (w_avg(t) - w(t-1)) = eta D(t-1) + zeta K s_bar,  w_g(t) = w_g(t-1) + D(t),
    ranks start the next block from w_g(t) + eta D(t) (Nesterov) or w_g(t) (classical).

Checked for both variants over several blocks, through PeriodicMixer (the trainer's hook), and the
filter's state round trip (a resumed filter continues identically)."""

import sys

import numpy as np

from nnetavg.parallel.comm import Communicator, PeriodicMixer


class Net:  # what PeriodicMixer needs of a network: the flat buffer
    def __init__(self, params):
        self.params = params


def expected(w0, s_bar, K, blocks, eta, zeta, nesterov):
    wg, d = w0.astype(np.float64), np.zeros_like(w0, dtype=np.float64)
    start = wg.copy()
    for _ in range(blocks):
        avg = start + K * s_bar           # every rank started the block from the same model
        d = eta * d + zeta * (avg - start)
        wg = wg + d
        start = wg + eta * d if nesterov else wg.copy()
    return wg, start


def main() -> int:
    comm = Communicator()
    N, r = comm.size, comm.rank
    n, K, blocks = 257, 3, 5
    steps = np.stack([np.sin(np.arange(n) * (k + 1)) * 0.01 * (k + 1) for k in range(N)])
    w0 = np.linspace(-1, 1, n)
    for nesterov in (True, False):
        for eta, zeta in ((0.0, 1.0), (-1.0, 1.0), (0.5, 0.7)):
            net = Net(w0.astype(np.float64).copy())
            mixer = PeriodicMixer(comm, "bmuf", K, block_momentum=eta, block_learning_rate=zeta, nesterov=nesterov)
            mixer.start(net.params)
            if eta == -1.0:  # -1 means the default, 1 - 1/N; 0 means no block momentum
                assert abs(mixer.block.eta - (1 - 1 / N)) < 1e-12
            assert mixer.block.eta == (1 - 1 / N if eta == -1.0 else eta)
            for m in range(1, K * blocks + 1):
                net.params += steps[r]
                mixer(m, net)
            wg, start = expected(w0, steps.mean(axis=0), K, blocks, mixer.block.eta, zeta, nesterov)
            np.testing.assert_allclose(net.params, start, rtol=1e-10, atol=1e-12)
            np.testing.assert_allclose(mixer.block.global_, wg, rtol=1e-10, atol=1e-12)
            if eta == 0.0:  # no momentum, zeta 1: plain model averaging
                np.testing.assert_allclose(net.params, w0 + blocks * K * steps.mean(axis=0), rtol=1e-10)
            # resume: a fresh mixer loaded with the state continues exactly
            saved, p_saved = mixer.state(), net.params.copy()
            for m in range(K * blocks + 1, K * (blocks + 1) + 1):
                net.params += steps[r]
                mixer(m, net)
            other = Net(p_saved)
            m2 = PeriodicMixer(comm, "bmuf", K, block_momentum=mixer.block.eta or 0.5, block_learning_rate=zeta,
                               nesterov=nesterov)
            m2.start(other.params)
            m2.block.eta = mixer.block.eta
            m2.load_state(saved)
            for m in range(K * blocks + 1, K * (blocks + 1) + 1):
                other.params += steps[r]
                m2(m, other)
            np.testing.assert_array_equal(other.params, net.params)
            # end of an epoch: the global model, the same on every rank
            net.params += steps[r]
            mixer.end_epoch(net.params)
            np.testing.assert_array_equal(net.params, mixer.block.global_)
            # the next epoch starts from the look-ahead point (Nesterov), and its first block is
            # filtered from there
            wg_e, d_e, e = mixer.block.global_.copy(), mixer.block.delta.copy(), mixer.block.eta
            mixer.start_epoch(net.params)
            start = wg_e + e * d_e if nesterov else wg_e
            np.testing.assert_allclose(net.params, start, rtol=1e-12, atol=1e-15)
            for m in range(1, K + 1):
                net.params += steps[r]
                mixer(m, net)
            d = e * d_e + zeta * K * steps.mean(axis=0)
            np.testing.assert_allclose(mixer.block.global_, wg_e + d, rtol=1e-10, atol=1e-12)
            np.testing.assert_allclose(net.params, wg_e + d + (e * d if nesterov else 0), rtol=1e-10, atol=1e-12)
    print(f"rank {r} of {N}: bmuf OK", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
