"""Print the per-job learning rate of one iteration of parallel training.

\b
Usage:  nnet-learning-rate [options] ITER NUM_ITERS
e.g.:   nnet-learning-rate --initial=0.008 --final=0.0008 --num-jobs=4 3 10
        nnet-learning-rate --initial=0.008 --final=0.0008 --num-jobs=4 0:9 10   (a line per iteration)
\b
Exponential decay of the effective rate (Kaldi nnet2): initial * exp(iter * ln(final/initial)
/ num_iters), final on the last iteration; multiplied by --num-jobs unless
--scale-by-jobs=false (averaging N models trained at rate r moves them about as one at r/N).
With --change-limits-for=sgd|ngsgd, the line also gives the default max-change and
max-param-change for that optimizer at that rate (0.75 and 2 for plain SGD when the rate is
multiplied by more than one job, else 0 0; nnetavg.train.schedules.default_change_limits).
"""

import click

from nnetavg.bin._common import KALDI_BOOL, kaldi_command
from nnetavg.train.schedules import default_change_limits, effective_to_job_rate, exponential_rate


@kaldi_command(help=__doc__)
@click.option("--initial", type=float, required=True, help="Effective learning rate of the first iteration")
@click.option("--final", type=float, required=True, help="Effective learning rate of the last iteration")
@click.option("--num-jobs", type=int, default=1, show_default=True)
@click.option("--scale-by-jobs", type=KALDI_BOOL, default=True, show_default=True)
@click.option("--change-limits-for", type=click.Choice(["", "sgd", "ngsgd"]), default="",
              help="Also print the default max-change and max-param-change for this optimizer")
@click.argument("iteration", type=str, metavar="ITER|FIRST:LAST")
@click.argument("num_iters", type=int)
def main(initial, final, num_jobs, scale_by_jobs, change_limits_for, iteration, num_iters, verbose):
    try:
        first, _, last = iteration.partition(":")
        iterations = range(int(first), int(last or first) + 1)
    except ValueError:
        raise click.UsageError(f"ITER must be a number or FIRST:LAST, not {iteration!r}") from None
    for it in iterations:
        try:
            eff = exponential_rate(initial, final, it, num_iters)
        except ValueError as exc:
            raise click.UsageError(str(exc)) from None
        line = f"{effective_to_job_rate(eff, num_jobs, scale_by_jobs):.8g}"
        if change_limits_for:
            line += " %g %g" % default_change_limits(change_limits_for, num_jobs, scale_by_jobs)
        click.echo(line)
