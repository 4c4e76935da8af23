"""Read experiment directories' logs and draw the training report: PNG plots (CV objective and
frame accuracy against frames seen, per job and averaged; learning rate; time per iteration split
into compute, mixing and I/O; speed-up and scaling factor against the number of jobs beside the
paper's points) and a markdown summary linking them. With --results, the generated block of a
recipe's RESULTS.md is rewritten from the same logs.

\b
Usage:  nnet-report [options] EXP_DIR [EXP_DIR ...]
e.g.:   nnet-report --out exp/report exp/dnn exp/linear
        nnet-report --out exp/report --results RESULTS.md exp/scaling/nj*
"""

import logging
import shlex
import sys

import click

from nnetavg.bin._common import kaldi_command
from nnetavg.experiment import read_experiment
from nnetavg.plots import update_results, write_report

log = logging.getLogger("nnetavg.bin")


@kaldi_command(help=__doc__)
@click.option("--out", "out_dir", default="report", show_default=True, help="Directory for the PNGs and summary.md")
@click.option("--results", default="", help="RESULTS.md whose generated block is rewritten from the logs")
@click.argument("exp_dirs", nargs=-1, required=True)
def main(out_dir, results, exp_dirs, verbose):
    exps = [read_experiment(d) for d in exp_dirs]
    names = [e.name for e in exps]
    for e in exps:  # distinct names for plots and tables: parent/name when names repeat
        if names.count(e.name) > 1:
            e.name = "_".join(e.path.rstrip("/").split("/")[-2:])
    summary, images = write_report(exps, out_dir)
    for e in exps:
        log.info("%s: jobs=%d iterations=%d frames=%d cv-frame-accuracy=%.4f wall-seconds=%.1f frames-per-sec=%.0f "
                 "mix-fraction=%.4f", e.name, e.num_jobs, len(e.iterations), e.frames, e.final.cv_frame_accuracy,
                 e.wall_seconds, e.frames_per_second, e.mix_fraction)
    if results:
        update_results(results, exps, images, "nnet-report " + " ".join(shlex.quote(a) for a in sys.argv[1:]))
        log.info("rewrote the generated block of %s", results)
    log.info("wrote %s and %d plots", summary, len(images))
