"""Average nnet1 models of the same topology (the parameters' weighted mean).

\b
Usage:  nnet-average [options] MODEL1 ... MODELN MODEL_OUT
e.g.:   nnet-average exp/dnn/1.1.nnet exp/dnn/1.2.nnet exp/dnn/1.3.nnet exp/dnn/1.4.nnet exp/dnn/1.nnet
        nnet-average --cv-feats=scp:egs/cv/feats.scp --cv-ali=ark:egs/cv/ali.ark \\
          --feature-transform=exp/dnn/final.feature_transform --cv-log=exp/dnn/log/compute_prob_cv.2.log \\
          exp/dnn/1.1.nnet exp/dnn/1.2.nnet exp/dnn/2.nnet
\b
Models are read one at a time (memory: about two models). --weights=w1:...:wN are normalised
to sum to 1. A model with a NaN parameter or another topology is an error naming the file.
With --job-logs=PATTERN (JOB standing for 1..N, one log per input model, in order) only the
successful jobs' models are averaged, as nnet-successful-models chooses them (a missing model, no
finite objective in its log, or a cross-entropy worse than the best job's by more than
--max-gap: left out with a warning; none left: an error).
With --cv-feats, --cv-ali and --cv-log the averaged model is also evaluated on the CV data, in
this process (one start and no second read of the model: what steps/train_parallel.sh does each
iteration); --cv-log gets what `run.pl LOG nnet-compute-prob ...` would write: the launcher log
with the line cross-entropy=... frame-accuracy=... frames=..., written when complete.
"""

import logging
import os
import time

import click

from nnetavg.backend import device_xp
from nnetavg.bin._common import (binary_option, cv_figures, fail, feature_transform_option, kaldi_command,
                                 length_tolerance_option, use_gpu_option)
from nnetavg.fileutil import atomic_output
from nnetavg.io.nnet1 import write_nnet
from nnetavg.io.tables import job_substitute
from nnetavg.jobs.local import log_footer, log_header
from nnetavg.parallel.averaging import average_model_files, successful_models

log = logging.getLogger("nnetavg.bin")


@kaldi_command(help=__doc__)
@binary_option
@click.option("--weights", type=str, default="", help="Colon-separated weights, one per model")
@click.option("--job-logs", type=str, default="", help="Training logs of the models (JOB = 1..N): average the successful jobs' only")
@click.option("--max-gap", type=float, default=1.0, show_default=True,
              help="With --job-logs: largest cross-entropy (nats/frame) above the best job's that is still averaged")
@click.option("--cv-feats", type=str, default="", help="CV features (rspecifier): also evaluate MODEL_OUT")
@click.option("--cv-ali", type=str, default="", help="CV pdf alignments (rspecifier)")
@click.option("--cv-log", type=str, default="", help="Where the CV figures go (a launcher log, as nnet-compute-prob's)")
@feature_transform_option("nnet1 network applied to each CV utterance first")
@length_tolerance_option
@use_gpu_option
@click.argument("models", nargs=-1, required=True)
def main(binary, weights, job_logs, max_gap, cv_feats, cv_ali, cv_log, feature_transform, length_tolerance, use_gpu,
         models, verbose):
    if len(models) < 2:
        raise click.UsageError("need at least one input model and MODEL_OUT")
    if bool(cv_feats) + bool(cv_ali) + bool(cv_log) not in (0, 3):
        raise click.UsageError("--cv-feats, --cv-ali and --cv-log go together")
    ins, out = list(models[:-1]), models[-1]
    w = None
    if weights:
        try:
            w = [float(x) for x in weights.split(":")]
        except ValueError:
            fail(f"--weights={weights}: expected numbers separated by ':'")
    if job_logs:
        if w is not None:
            raise click.UsageError("--weights and --job-logs do not go together")
        logs = [job_substitute(job_logs, j) for j in range(1, len(ins) + 1)]
        ins = [ins[i] for i in successful_models(logs, ins, max_gap)]
    nnet = average_model_files(ins, w)
    write_nnet(nnet, out, binary=binary)
    log.info("averaged %d models into %s", len(ins), out)
    if cv_feats:
        t0 = time.time()
        line, data = cv_figures(nnet.to(device_xp()), cv_feats, cv_ali, feature_transform, length_tolerance)
        log.info("CV of %s: %s (data %s) cv-seconds=%.3f", out, line, data, time.time() - t0)
        command = " ".join(["nnet-compute-prob (in nnet-average)", f"--feature-transform={feature_transform}",
                            out, cv_feats, cv_ali])
        text = (log_header(command, t0) + f"data {data}\n{line}\n"
                + log_footer(time.time() - t0, int(os.environ.get("OPENBLAS_NUM_THREADS", "0") or 0) or 1, 0))
        with atomic_output(cv_log) as f:
            f.write(text.encode())
