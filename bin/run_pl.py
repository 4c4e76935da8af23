"""run.pl: run a command or an array of commands on this machine, Kaldi's interface.

Usage:  run.pl [--max-jobs-run K] [--num-threads N] [--gpu G] [--mem M] [--retries R] [--max-requeues Q]
               [JOB=1:N] LOG command ...
e.g.:   run.pl JOB=1:4 exp/dnn/log/train.1.JOB.log nnet-train-simple ... exp/dnn/1.JOB.nnet
"""

import sys

from nnetavg.errors import NnetavgError
from nnetavg.jobs.local import run


def launcher_main(run_fn, doc: str, prog: str, argv=None) -> None:
    """The shared main of run.pl and slurm.pl (Kaldi's launchers parse their own options)."""
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0] in ("-h", "--help"):
        print(doc.strip())
        sys.exit(0 if argv else 1)
    try:
        sys.exit(run_fn(argv))
    except NnetavgError as exc:
        print(f"ERROR ({prog}) {exc}", file=sys.stderr)
        sys.exit(1)


def main(argv=None) -> None:
    launcher_main(run, __doc__, "run.pl", argv)
