"""Print the models of an iteration's jobs that may be averaged (Kaldi's "successful models"):
leaves out, with a warning, jobs that failed (no model), whose log has no finite objective, or
whose cross-entropy is worse than the best job's by more than --max-gap. Fails when none is left.

\b
Usage:  nnet-successful-models [options] LOG_PATTERN MODEL_PATTERN NUM_JOBS
e.g.:   nnet-successful-models exp/dnn/log/train.3.JOB.log exp/dnn/3.JOB.nnet 4
\b
JOB in the patterns stands for the job number 1..NUM_JOBS. Prints one model path per line.
"""

import click

from nnetavg.bin._common import kaldi_command
from nnetavg.io.tables import job_substitute
from nnetavg.parallel.averaging import successful_models


@kaldi_command(help=__doc__)
@click.option("--max-gap", type=float, default=1.0, show_default=True,
              help="Largest cross-entropy (nats/frame) above the best job's that is still averaged")
@click.argument("log_pattern")
@click.argument("model_pattern")
@click.argument("num_jobs", type=int)
def main(max_gap, log_pattern, model_pattern, num_jobs, verbose):
    logs = [job_substitute(log_pattern, j) for j in range(1, num_jobs + 1)]
    models = [job_substitute(model_pattern, j) for j in range(1, num_jobs + 1)]
    for i in successful_models(logs, models, max_gap):
        click.echo(models[i])
