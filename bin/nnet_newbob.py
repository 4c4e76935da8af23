"""One newbob decision per iteration of parallel training (nnet1's train_scheduler.sh logic),
kept in a JSON state file so that steps can resume.

\b
Usage:  nnet-newbob [options] --init CV_LOG STATE_JSON
        nnet-newbob [options] ITERATION CV_LOG STATE_JSON
        nnet-newbob --show STATE_JSON
e.g.:   nnet-newbob --learn-rate=0.008 --init exp/dnn/log/compute_prob_cv.0.log exp/dnn/newbob.json
        nnet-newbob 3 exp/dnn/log/compute_prob_cv.3.log exp/dnn/newbob.json
\b
CV_LOG holds nnet-compute-prob's "cross-entropy=..." line. Prints shell assignments for the step:
accepted=true|false learn_rate=R best_iter=N iterations=N stop=true|false
"""

import json
import os

import click

from nnetavg.bin._common import fail, kaldi_command
from nnetavg.report import figures, summarise
from nnetavg.train.schedules import NewbobSchedule


def _show(nb: NewbobSchedule, accepted=None) -> str:
    s = nb.state
    parts = [] if accepted is None else [f"accepted={'true' if accepted else 'false'}"]
    parts += [f"learn_rate={s['learn_rate']:.10g}", f"best_iter={s['best_iter']}", f"iterations={s['iterations']}",
              f"stop={'true' if s['stop'] else 'false'}"]
    return " ".join(parts)


@kaldi_command(help=__doc__)
@click.option("--learn-rate", type=float, default=0.008, show_default=True, help="Initial (effective) learning rate")
@click.option("--halving-factor", type=float, default=0.5, show_default=True)
@click.option("--start-halving-impr", type=float, default=0.01, show_default=True)
@click.option("--end-halving-impr", type=float, default=0.001, show_default=True)
@click.option("--min-iters", type=int, default=0, show_default=True)
@click.option("--max-iters", type=int, default=20, show_default=True)
@click.option("--keep-lr-iters", type=int, default=0, show_default=True)
@click.option("--init", "init_log", type=str, default="", help="CV log of the initial model: start a new state")
@click.option("--show", is_flag=True, help="Only print the state")
@click.argument("args", nargs=-1, metavar="[ITERATION CV_LOG] STATE_JSON")
def main(learn_rate, halving_factor, start_halving_impr, end_halving_impr, min_iters, max_iters, keep_lr_iters,
         init_log, show, args, verbose):
    nb = NewbobSchedule(learn_rate, halving_factor, start_halving_impr, end_halving_impr, min_iters, max_iters,
                        keep_lr_iters)
    if not args:
        raise click.UsageError("STATE_JSON is required")
    state_path = args[-1]

    def cv_loss(log):
        return summarise(figures([log], grep="cross-entropy="), last=["cross-entropy"])[0]

    if init_log:
        nb.start(cv_loss(init_log))
    else:
        if not os.path.exists(state_path):
            fail(f"no newbob state {state_path}; start one with --init")
        with open(state_path, encoding="utf-8") as f:
            nb.state = json.load(f)
    accepted = None
    if not init_log and not show:
        if len(args) != 3:
            raise click.UsageError("expected ITERATION CV_LOG STATE_JSON")
        it = int(args[0])
        if it <= nb.state["iterations"]:  # already decided (a resumed step): report, do not redo
            accepted = next(h["accepted"] for h in nb.state["history"] if h["iteration"] == it)
        else:
            accepted = nb.after_iteration(it, cv_loss(args[1]))
    if init_log or accepted is not None:
        tmp = state_path + ".tmp"
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump(nb.state, f, indent=1)
        os.replace(tmp, state_path)
    click.echo(_show(nb, accepted))
