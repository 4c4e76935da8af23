"""Read experiment directories' logs and draw the training report: PNG plots (CV objective and
frame accuracy against frames seen, per job and averaged; learning rate; time per iteration split
into compute, mixing and I/O; speed-up and scaling factor against the number of jobs beside the
paper's points) and a markdown summary linking them. With --results, the generated block of a
recipe's RESULTS.md is rewritten from the same logs.

\b
Usage:  nnet-report [options] EXP_DIR [EXP_DIR ...]
e.g.:   nnet-report --out exp/report exp/dnn exp/linear
        nnet-report --out exp/report --results RESULTS.md exp/scaling/nj*
        nnet-report --timeline exp/timeline --account-only exp/dnn exp/linear

With --timeline (a recipe's stage timeline), also prints where the recipe's wall time went: its
stages, the training stages split into training steps, data reading, process start, averaging,
CV and the final model (from each experiment's log/timeline and its jobs' logs), and what is
unaccounted; the same table goes to OUT/account.md.
"""

import logging
import os
import shlex
import sys

import click

from nnetavg.account import account_table, recipe_account, stage_names
from nnetavg.bin._common import kaldi_command
from nnetavg.experiment import read_experiment
from nnetavg.plots import update_results, write_report

log = logging.getLogger("nnetavg.bin")


@kaldi_command(help=__doc__)
@click.option("--out", "out_dir", default="report", show_default=True, help="Directory for the PNGs and summary.md")
@click.option("--results", default="", help="RESULTS.md whose generated block is rewritten from the logs")
@click.option("--timeline", default="", help="A recipe's stage timeline (EXP/timeline): print the account of its wall time")
@click.option("--account-only", is_flag=True, help="Only the account of --timeline: no plots, no summary")
@click.argument("exp_dirs", nargs=-1, required=True)
def main(out_dir, results, timeline, account_only, exp_dirs, verbose):
    if timeline:
        acc = recipe_account(timeline, list(exp_dirs))
        table = account_table(acc, stage_names(timeline))
        os.makedirs(out_dir, exist_ok=True)
        with open(os.path.join(out_dir, "account.md"), "w") as f:
            f.write(f"# Where the wall time went\n\nFrom {timeline} and the logs of {', '.join(exp_dirs)}.\n\n{table}")
        click.echo(table, nl=False)
        wall = acc["wall"]
        log.info("recipe-account wall-seconds=%.1f steps-share=%.4f accounted-share=%.4f", wall,
                 acc["steps"] / wall, 1.0 - acc["unaccounted"] / wall)
        if account_only:
            return
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
