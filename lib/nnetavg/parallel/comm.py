"""The one wrapper around MPI (mpi4py): the communicator and the mixing patterns.

With one process everything is a no-op, so the same trainer runs with and without ``mpiexec``.
All mixing works on one flat contiguous parameter buffer (:attr:`Network.params`), so a mix is
one collective (or one Sendrecv) with no packing copies.

Mixing patterns, for N ranks with parameter vectors x_i (round t counts mixes, from 0):

* **all-reduce**: ``x_i <- (1/N) sum_j x_j`` (in-place ``MPI_Allreduce`` then a scale). Exact.
* **butterfly** (Zhao & Canny 2013): partner ``p = i XOR 2^(t mod log2 N)``;
  ``x_i <- (x_i + x_p) / 2`` with one ``Sendrecv`` of the whole model. ``log2 N`` consecutive
  rounds without local updates give the exact mean (recursive doubling). N must be a power of two
  (an error otherwise: use all-reduce or ring).
* **ring**: send to the right neighbour ``i+1``, receive from the left ``i-1`` (one ``Sendrecv``);
  ``x_i <- (x_i + x_{i-1}) / 2``. One message of S bytes per rank and round; consensus is slow
  (O(N^2) rounds, literature.md section 3.2) but each round is as cheap as a butterfly round. With
  N = 2 it is the pair average.
* **bmuf** (block momentum, Chen & Huo 2016): an all-reduce, then the block-momentum filter of
  :mod:`nnetavg.parallel.bmuf` on the average (applied by :class:`PeriodicMixer`, which holds the
  filter's state).

CuPy buffers are staged through a host buffer unless ``cuda_aware`` is set (then mpi4py hands
device pointers to a CUDA-aware MPI directly).

Point-to-point messages (the parameter server of :mod:`nnetavg.parallel.server`): :meth:`send`,
:meth:`recv`, :meth:`probe` and :meth:`isend`, with device arrays staged through host buffers as
for mixing, and :data:`ANY` for any source or tag. No other module touches mpi4py or names an
MPI constant.

Failures: :meth:`Communicator.abort` ends every rank (``MPI_Abort``), so one rank's exception never
leaves the others waiting in a collective; :meth:`Communicator.abort_on_failure` is the one place
that turns an exception on any rank into that (used by every MPI command).
"""

from __future__ import annotations

import contextlib
import logging
import math
import sys
import time

import numpy as np

from nnetavg.backend import get_array_module, to_numpy
from nnetavg.errors import NnetavgError
from nnetavg.parallel.bmuf import BlockMomentum, default_block_momentum

log = logging.getLogger(__name__)

MIXING_CHOICES = ("allreduce", "butterfly", "ring", "bmuf")
ANY = -1   # any source / any tag in recv and probe


class Communicator:
    def __init__(self, cuda_aware: bool = False):
        from mpi4py import MPI  # noqa: PLC0415  (the only import of mpi4py in nnetavg)
        self.MPI = MPI
        self.comm = MPI.COMM_WORLD
        self.size = self.comm.Get_size()
        self.rank = self.comm.Get_rank()
        self.cuda_aware = cuda_aware
        self.seconds = 0.0        # time spent in mixing and collectives
        self.mixes = 0
        self._recv = None
        self._host = None

    # ------------------------------------------------------------------ small collectives
    def allreduce_sum(self, values) -> np.ndarray:
        a = np.asarray(values, dtype=np.float64).reshape(-1).copy()
        if self.size > 1:
            self.comm.Allreduce(self.MPI.IN_PLACE, a, op=self.MPI.SUM)
        return a

    def bcast_array(self, buf, root: int = 0) -> None:
        if self.size > 1:
            host = self._stage_out(buf)
            self.comm.Bcast(host, root=root)
            self._stage_in(buf, host)

    def barrier(self) -> None:
        if self.size > 1:
            self.comm.Barrier()

    def abort(self, code: int = 1) -> None:
        """Ends every rank. The caller has printed its error; a short pause first lets the MPI
        launcher forward that output before the job is torn down (otherwise it can be lost when
        several ranks abort at once)."""
        if self.size > 1:
            sys.stdout.flush()
            sys.stderr.flush()
            time.sleep(0.5)
            self.comm.Abort(code)

    @contextlib.contextmanager
    def abort_on_failure(self, preempted_exit: int | None = None):
        """Around a command's work: an exception on any rank is logged with the rank and ends
        every rank (exit 1); a ``SystemExit`` with status 0 or ``preempted_exit`` passes, and with
        a single process every exception passes (the command reports it as any command does)."""
        try:
            yield
        except BaseException as exc:
            if self.size == 1 or (isinstance(exc, SystemExit) and exc.code in (0, None, preempted_exit)):
                raise
            if isinstance(exc, SystemExit):
                msg = f"exit status {exc.code}"
            else:
                msg = str(exc) if isinstance(exc, NnetavgError) else f"{exc.__class__.__name__}: {exc}"
            log.error("rank %d failed: %s", self.rank, msg)
            if not isinstance(exc, (NnetavgError, SystemExit, KeyboardInterrupt)):
                import traceback  # noqa: PLC0415
                traceback.print_exc()
            sys.stderr.flush()
            self.abort(1)
            sys.exit(1)

    # ------------------------------------------------------------------ point to point
    def _mpi_any(self, value: int, kind: str) -> int:
        if value != ANY:
            return value
        return self.MPI.ANY_SOURCE if kind == "source" else self.MPI.ANY_TAG

    def send(self, buf, dest: int, tag: int) -> None:
        """Blocking send of an array (device arrays are staged through the host)."""
        self.comm.Send(self._stage_out(buf), dest=dest, tag=tag)

    def isend(self, buf, dest: int, tag: int):
        """Non-blocking send of a host array; returns a handle with ``free()`` (the message is sent
        even when nobody waits for it)."""
        req = self.comm.Isend(np.ascontiguousarray(buf), dest=dest, tag=tag)
        return _Request(req)

    def recv(self, buf, source: int = ANY, tag: int = ANY) -> tuple[int, int]:
        """Receives into ``buf`` (a message no larger than it); returns (source, tag)."""
        status = self.MPI.Status()
        host = buf if isinstance(buf, np.ndarray) or self.cuda_aware else self._host_like(buf)
        self.comm.Recv(host, source=self._mpi_any(source, "source"), tag=self._mpi_any(tag, "tag"), status=status)
        self._stage_in(buf, host)
        return status.Get_source(), status.Get_tag()

    def probe(self, source: int = ANY, tag: int = ANY) -> tuple[int, int, int]:
        """Waits for a message; returns (source, tag, size in bytes) without receiving it."""
        status = self.MPI.Status()
        self.comm.Probe(source=self._mpi_any(source, "source"), tag=self._mpi_any(tag, "tag"), status=status)
        return status.Get_source(), status.Get_tag(), status.Get_count(self.MPI.BYTE)

    def discard(self, source: int, tag: int, nbytes: int) -> None:
        """Receives and drops a probed message of ``nbytes`` bytes."""
        self.comm.Recv([np.empty(max(nbytes, 1), np.uint8), nbytes, self.MPI.BYTE], source=source, tag=tag)

    def _host_like(self, buf):
        if self._host is None or self._host.shape != buf.shape or self._host.dtype != buf.dtype:
            self._host = np.empty(buf.shape, dtype=buf.dtype)
        return self._host

    # ------------------------------------------------------------------ device staging
    def _stage_out(self, buf):
        if isinstance(buf, np.ndarray) or self.cuda_aware:
            return buf
        host = self._host_like(buf)
        host[...] = to_numpy(buf)
        return host

    def _stage_in(self, buf, host) -> None:
        if host is not buf:
            buf[...] = get_array_module(buf).asarray(host)

    def _recv_buffer(self, host):
        xp = get_array_module(host)
        if self._recv is None or self._recv.shape != host.shape or get_array_module(self._recv) is not xp:
            self._recv = xp.empty_like(host)
        return self._recv

    # ------------------------------------------------------------------ mixing
    def check_mixing(self, method: str) -> None:
        if method not in MIXING_CHOICES:
            raise NnetavgError(f"--mixing must be one of {'|'.join(MIXING_CHOICES)}, not {method!r}")
        if method == "butterfly" and self.size & (self.size - 1):
            raise NnetavgError(f"butterfly mixing needs a power-of-two number of ranks, not {self.size}; "
                               f"use --mixing allreduce or ring")

    def allreduce_mean(self, buf) -> None:
        if self.size == 1:
            return
        host = self._stage_out(buf)
        self.comm.Allreduce(self.MPI.IN_PLACE, host, op=self.MPI.SUM)
        host *= host.dtype.type(1.0 / self.size)
        self._stage_in(buf, host)

    def butterfly(self, buf, round_: int) -> None:
        if self.size == 1:
            return
        stages = int(math.log2(self.size))
        partner = self.rank ^ (1 << (round_ % stages))
        self._pair_mix(buf, dest=partner, source=partner)

    def ring(self, buf) -> None:
        if self.size == 1:
            return
        self._pair_mix(buf, dest=(self.rank + 1) % self.size, source=(self.rank - 1) % self.size)

    def _pair_mix(self, buf, dest: int, source: int) -> None:
        host = self._stage_out(buf)
        recv = self._recv_buffer(host)
        self.comm.Sendrecv(host, dest=dest, sendtag=7, recvbuf=recv, source=source, recvtag=7)
        host += recv
        host *= host.dtype.type(0.5)
        self._stage_in(buf, host)

    def mix(self, buf, method: str) -> None:
        """One mixing round of ``method`` on ``buf`` (in place); counts rounds and time."""
        if self.size == 1:
            return
        t0 = time.perf_counter()
        if method == "allreduce":
            self.allreduce_mean(buf)
        elif method == "butterfly":
            self.butterfly(buf, self.mixes)
        elif method == "ring":
            self.ring(buf)
        else:
            raise NnetavgError(f"unknown mixing method {method!r}")
        self.mixes += 1
        self.seconds += time.perf_counter() - t0


class _Request:
    def __init__(self, req):
        self._req = req

    def free(self) -> None:
        self._req.Free()


class PeriodicMixer:
    """The trainer's after-minibatch hook (seam 3): mixes every ``every`` local minibatches.

    Ranks may hold different numbers of minibatches, so every mix is preceded by a one-number
    all-reduce of "still training" flags; a rank whose data has ended keeps taking part in the
    mixes (:meth:`drain`) until every rank has ended, so no collective is left unmatched.
    """

    def __init__(self, comm: Communicator, method: str, every: int, stop_requested=None,
                 block_momentum: float = -1.0, block_learning_rate: float = 1.0, nesterov: bool = True):
        comm.check_mixing(method)
        if every < 1:
            raise NnetavgError(f"--average-every must be at least 1, not {every}")
        self.comm, self.method, self.every = comm, method, every
        self._collective = "allreduce" if method == "bmuf" else method
        eta = default_block_momentum(comm.size) if block_momentum < 0 else block_momentum   # -1: the default
        self._bmuf_args = (eta, block_learning_rate, nesterov)
        self.block: BlockMomentum | None = None  # the BMUF filter, made by start()
        # Preemption: a rank's request (e.g. SIGTERM) travels with the "still training" flags, so
        # all ranks agree to stop after the same mix (no collective is left unmatched).
        self.stop_requested = stop_requested or (lambda: False)
        self.stop_agreed = False

    def start(self, params, reset_momentum: bool = False) -> None:
        """Every rank holds ``params`` (the same model): the block filter starts from it."""
        if self.method != "bmuf":
            return
        if self.block is None:
            self.block = BlockMomentum(params, *self._bmuf_args)
            log.info("block momentum: eta=%g zeta=%g %s", self.block.eta, self.block.zeta,
                     "Nesterov" if self.block.nesterov else "classical")
        else:
            self.block.start(params)
            if reset_momentum:
                self.block.delta[...] = 0

    def state(self) -> dict:
        return self.block.state() if self.block is not None else {}

    def load_state(self, state: dict) -> None:
        if self.block is not None:
            self.block.load_state(state)

    def _mix(self, buf) -> None:
        self.comm.mix(buf, self._collective)
        if self.block is not None:
            t0 = time.perf_counter()
            self.block(buf)
            self.comm.seconds += time.perf_counter() - t0

    def start_epoch(self, buf) -> None:
        """Before an epoch's pass (every rank holds the global model, as :meth:`end_epoch` left
        it): with Nesterov block momentum the ranks start from the look-ahead point, as after
        every block, so the filter's first block of the epoch is measured from where it started."""
        if self.block is not None and self.block.nesterov and self.block.eta:
            buf += buf.dtype.type(self.block.eta) * self.block.delta

    def end_epoch(self, buf) -> None:
        """After every rank's pass (and :meth:`drain`): all ranks get the same model, the exact
        average (BMUF: the last, partial block through the filter, then the global model)."""
        if self.block is None:
            self.comm.allreduce_mean(buf)
            return
        self._mix(buf)
        self.block.finish(buf)

    def _round(self, buf, active: bool) -> int:
        t0 = time.perf_counter()
        n_active, n_stop = self.comm.allreduce_sum([1.0 if active else 0.0, 1.0 if self.stop_requested() else 0.0])
        self.comm.seconds += time.perf_counter() - t0
        if n_active:
            self._mix(buf)
        if n_stop:
            self.stop_agreed = True
        return int(n_active)

    def __call__(self, minibatch: int, nnet) -> None:
        if self.comm.size == 1:
            self.stop_agreed = self.stop_agreed or bool(self.stop_requested())
        elif minibatch % self.every == 0:
            self._round(nnet.params, True)

    def drain(self, nnet) -> None:
        """After this rank's data: join the others' mixes until all are done (or all agreed to stop)."""
        if self.comm.size == 1:
            self.stop_agreed = self.stop_agreed or bool(self.stop_requested())
            return
        while self._round(nnet.params, False) and not self.stop_agreed:
            pass
