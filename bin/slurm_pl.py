"""slurm.pl: run a command or an array of commands as SLURM jobs, Kaldi's interface.

Usage:  slurm.pl [--config conf/slurm.conf] [--gpu G] [--mem M] [--num-threads N] [--time T] [--partition P]
                 [--max-jobs-run K] [--retries R] [--max-requeues Q] [JOB=1:N] LOG command ...
e.g.:   slurm.pl --config conf/slurm.conf --mem 4G JOB=1:4 exp/dnn/log/train.1.JOB.log nnet-train-simple ...
"""

from nnetavg.bin.run_pl import launcher_main
from nnetavg.jobs.slurm import run


def main(argv=None) -> None:
    launcher_main(run, __doc__, "slurm.pl", argv)
