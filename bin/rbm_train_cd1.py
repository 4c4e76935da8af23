"""Train an RBM with CD-1 on frame-shuffled features (nnet1's rbm-train-cd1-frmshuff), on one
process or on N MPI ranks that average the RBM every K minibatches.

\b
Usage:  rbm-train-cd1 [options] RBM_IN FEATS_RSPECIFIER RBM_OUT
        mpiexec -n N rbm-train-cd1 --mpi=true [options] RBM_IN FEATS_RSPECIFIER(JOB) RBM_OUT
e.g.:   rbm-train-cd1 --learn-rate=0.01 --num-iters=2 --feature-transform=exp/dbn/final.feature_transform \\
          exp/dbn/1.rbm.init scp:exp/dbn/train.scp exp/dbn/1.rbm
\b
--feature-transform may be the feature transform followed by the DBN trained so far. With
--mpi=true the token JOB in FEATS_RSPECIFIER becomes rank + 1, the ranks' RBMs are averaged
(all-reduce) every --average-every minibatches and exactly at the end, and rank 0 writes RBM_OUT.
"""

import contextlib
import logging

import click

from nnetavg import log as nlog
from nnetavg.backend import device_xp
from nnetavg.bin._common import (KALDI_BOOL, binary_option, dataclass_options, fail, feature_transform_option,
                                 kaldi_binary, kaldi_command, pick, use_gpu_option)
from nnetavg.io.nnet1 import read_nnet, write_nnet
from nnetavg.io.tables import job_substitute
from nnetavg.log import kv
from nnetavg.rbm import RbmTrainer, RbmTrainOptions

log = logging.getLogger("nnetavg.bin")


@kaldi_command(help=__doc__, tune_malloc=True)
@use_gpu_option
@binary_option
@dataclass_options(RbmTrainOptions)
@feature_transform_option()
@click.option("--mpi", type=KALDI_BOOL, default=False, show_default=True, help="Train on MPI ranks (under mpiexec)")
@click.option("--average-every", type=int, default=10, show_default=True, help="With --mpi: average every K minibatches")
@click.argument("rbm_in")
@click.argument("feats_rspecifier")
@click.argument("rbm_out")
def main(use_gpu, binary, feature_transform, mpi, average_every, rbm_in, feats_rspecifier, rbm_out, verbose, **kw):
    opts = pick(RbmTrainOptions, kw)
    comm = mixer = None
    rank, size = 0, 1
    if mpi:
        from nnetavg.parallel.comm import Communicator, PeriodicMixer
        comm = Communicator()
        rank, size = comm.rank, comm.size
        nlog.setup(click.get_current_context().info_name, verbose, rank, size)
    with (comm.abort_on_failure() if comm is not None else contextlib.nullcontext()):
        net = read_nnet(rbm_in, xp=device_xp())
        transform = read_nnet(feature_transform) if feature_transform else None
        feats = job_substitute(feats_rspecifier, rank + 1) if mpi else feats_rspecifier
        if comm is not None:
            mixer = PeriodicMixer(comm, "allreduce", average_every)
            comm.bcast_array(net.params)
        trainer = RbmTrainer(net, opts, after_minibatch=mixer)
        counts: dict = {}
        frames, curve = 0, []
        for it in range(opts.num_iters):
            f, mse = trainer.train_pass(feats, transform, counts, seed_offset=1000 * rank + it)
            frames += f
            if mixer is not None:
                mixer.drain(net)
                comm.allreduce_mean(net.params)
                tot = comm.allreduce_sum([f, f * mse])
                mse = tot[1] / max(tot[0], 1)
            log.info("iteration %d/%d %s", it + 1, opts.num_iters, kv(reconstruction_mse=mse, frames=f))
            curve.append(mse)
        if frames == 0:
            fail(f"no frames to train on in {feats}")
        if rank == 0:
            write_nnet(net, rbm_out, binary=binary)
        log.info("AvgLoss: %.6g (Mse)\nprogress: [ %s ]", curve[-1], " ".join(f"{m:.6g}" for m in curve))
        log.info("done %s %s", kv(frames=frames, explosions=trainer.explosions),
                 " ".join(f"{k}={v}" for k, v in sorted(counts.items())))
        if comm is not None:
            comm.barrier()


kaldi_main = kaldi_binary(main, "rbm-train-cd1-frmshuff", """Kaldi's rbm-train-cd1-frmshuff: CD-1 training of an RBM on
frame-shuffled features (this is rbm-train-cd1 with Kaldi's log prefix; --mpi=true works too).

\b
Usage:  rbm-train-cd1-frmshuff [options] RBM_IN FEATS_RSPECIFIER RBM_OUT
e.g.:   rbm-train-cd1-frmshuff --learn-rate=0.01 --l2-penalty=0.0002 --num-iters=2 \\
          --feature-transform=final.feature_transform 1.rbm.init scp:train.scp 1.rbm
""")
