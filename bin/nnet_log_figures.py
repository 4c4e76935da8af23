"""Print figures read back from nnetavg logs (their key=value pairs), for tables and scripts.

\b
Usage:  nnet-log-figures [options] LOG [LOG ...]
e.g.:   nnet-log-figures --grep=epoch --rank=0 --last=cv-frame-accuracy --ratio=mix-seconds/seconds \\
          exp/mpi/log/train_mpi.log
        nnet-log-figures --max=frame-accuracy exp/dnn/log/compute_prob_cv.*.log
\b
Prints the selected values in the order --last, --sum, --max, --ratio, separated by --sep.
"""

import click

from nnetavg.bin._common import kaldi_command
from nnetavg.report import figures, summarise


def _keys(s: str) -> list[str]:
    return [k for k in s.split(",") if k]


@kaldi_command(help=__doc__)
@click.option("--grep", type=str, default="", help="Only lines containing this text")
@click.option("--rank", type=int, default=None, help="Only lines logged by this rank")
@click.option("--last", type=str, default="", help="Comma-separated keys: their last value")
@click.option("--sum", "total", type=str, default="", help="Comma-separated keys: the sum of their values")
@click.option("--max", "maximum", type=str, default="", help="Comma-separated keys: their largest value")
@click.option("--ratio", type=str, default="", help="Comma-separated a/b: sum of a over sum of b")
@click.option("--sep", type=str, default=" | ", show_default=True)
@click.argument("logs", nargs=-1, required=True)
def main(grep, rank, last, total, maximum, ratio, sep, logs, verbose):
    rows = figures(list(logs), grep, rank)
    vals = summarise(rows, _keys(last), _keys(total), _keys(maximum), _keys(ratio))
    click.echo(sep.join(f"{v:.6g}" for v in vals))
