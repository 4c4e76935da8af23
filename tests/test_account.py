"""The time account of a step and of a recipe (nnetavg.account, nnet-report --timeline): hand-made
timelines and job logs, every figure checked against its arithmetic."""

import pytest

from nnetavg.account import account_table, experiment_account, read_timeline, recipe_account
from nnetavg.errors import NnetavgError


def job_log(path, elapsed, seconds, step_seconds=None):
    extra = f" seconds={seconds}" + (f" step-seconds={step_seconds}" if step_seconds is not None else "")
    path.write_text("# nnet-train-simple ...\n# started-unix=100.0\n"
                    "LOG (nnet-train-simple rank 0/1 10:00:00) progress frames-done=2560 cross-entropy=2.0\n"
                    "LOG (nnet-train-simple rank 0/1 10:00:01) done minibatches=10 learn-rate=0.01 frames=2560 "
                    f"cross-entropy=1.5 frame-accuracy=0.5 frames-per-sec={2560 / seconds}{extra}\n"
                    f"# elapsed-seconds={elapsed}\n# Accounting: time=2 threads=1\n")


def make_step(tmp, t0=1000.0):
    log = tmp / "log"
    log.mkdir(parents=True)
    # iteration 0: two jobs, 4 + 6 s in the launcher, 3 + 5 s in their passes, 2 + 4 s in the steps
    job_log(log / "train.0.1.log", 4.0, 3.0, 2.0)
    job_log(log / "train.0.2.log", 6.0, 5.0, 4.0)
    # iteration 1: an old log without step-seconds: the whole pass counts as steps
    job_log(log / "train.1.1.log", 5.0, 4.0)
    (log / "timeline").write_text(
        f"cv 0 {t0 + 0.5} {t0 + 1.5}\n"
        f"schedule 0 {t0 + 1.5} {t0 + 1.75}\n"
        f"train 0 {t0 + 2} {t0 + 12}\n"           # 10 s: steps 10 * 6/10, reading 10 * 2/10, start 10 * 2/10
        f"averaging 0 {t0 + 12} {t0 + 13}\n"
        f"cv 1 {t0 + 13} {t0 + 14}\n"
        f"train 1 {t0 + 14} {t0 + 19}\n"          # 5 s: steps 5 * 4/5, start 5 * 1/5
        f"mystery 1 {t0 + 19} {t0 + 19.5}\n"       # an unknown phase: unaccounted
        f"final - {t0 + 19.5} {t0 + 21}\n"
        f"wall - {t0} {t0 + 22}\n")
    return tmp


def test_experiment_account_splits_the_jobs_phase_by_their_own_figures(tmp_path):
    acc = experiment_account(str(make_step(tmp_path / "dnn")))
    expect = {"wall": 22.0, "steps": 6.0 + 4.0, "reading": 2.0, "start": 2.0 + 1.0, "averaging": 1.0,
              "schedule": 0.25, "cv": 2.0, "final": 1.5, "setup": 0.0}
    expect["unaccounted"] = 22.0 - sum(v for k, v in expect.items() if k != "wall")
    assert list(acc) == list(expect)
    for k, v in expect.items():
        assert acc[k] == pytest.approx(v, abs=1e-9), k
    assert expect["unaccounted"] == pytest.approx(0.5 + 0.5 + 0.25 + 1.0)   # 0-0.5, the unknown, gaps 1.75-2, 21-22
    assert experiment_account(str(tmp_path)) is None    # no timeline: no account


def test_a_cv_pass_inside_the_averaging_counts_as_cv(tmp_path):
    """nnet-average --cv-log: the CV log that started inside an averaging phase moves its seconds
    (at most to the phase's end) from averaging to CV; one that started elsewhere moves nothing."""
    d = make_step(tmp_path / "dnn")
    base = experiment_account(str(d))
    (d / "log" / "compute_prob_cv.1.log").write_text(   # the CV of model 1, run by averaging 0 (1012-1013)
        "# nnet-compute-prob (in nnet-average) ...\n# started-unix=1012.4\n#\n"
        "cross-entropy=1.0 frame-accuracy=0.5 frames=100\n# elapsed-seconds=0.5\n")
    acc = experiment_account(str(d))
    assert acc["averaging"] == pytest.approx(base["averaging"] - 0.5)
    assert acc["cv"] == pytest.approx(base["cv"] + 0.5) and acc["unaccounted"] == pytest.approx(base["unaccounted"])
    (d / "log" / "compute_prob_cv.1.log").write_text(   # longer than what is left of the phase: capped
        "# x\n# started-unix=1012.8\n#\ncross-entropy=1.0 frame-accuracy=0.5 frames=100\n# elapsed-seconds=3\n")
    assert experiment_account(str(d))["cv"] == pytest.approx(base["cv"] + 0.2)
    (d / "log" / "compute_prob_cv.1.log").write_text(   # its own phase (cv 1 at 1013-1014): nothing moves
        "# x\n# started-unix=1013.0\n#\ncross-entropy=1.0 frame-accuracy=0.5 frames=100\n# elapsed-seconds=1\n")
    assert experiment_account(str(d))["averaging"] == pytest.approx(base["averaging"])


def test_a_resumed_step_counts_every_run(tmp_path):
    d = make_step(tmp_path / "dnn")
    with open(d / "log" / "timeline", "a") as f:
        f.write("cv 2 2000 2001\nwall - 1999.5 2001.5\n")
    acc = experiment_account(str(d))
    assert acc["wall"] == pytest.approx(24.0) and acc["cv"] == pytest.approx(3.0)


def test_recipe_account_replaces_training_stages_by_their_accounts(tmp_path):
    dnn = make_step(tmp_path / "dnn", t0=1000.0)
    tl = tmp_path / "timeline"
    tl.write_text("stage 0 990 995 synthetic corpus\n"
                  "stage 4 995 1023 train\n"             # holds dnn's step (1000-1022)
                  "stage 6 1023 1024 evaluate on the CV speakers\n"
                  "wall - 990 1024.5\n")
    acc = recipe_account(str(tl), [str(dnn)])
    assert "stage 4" not in acc and acc["stage 0"] == 5 and acc["stage 6"] == 1
    dnn_acc = experiment_account(str(dnn))
    phases = ("steps", "reading", "start", "averaging", "schedule", "cv", "final", "setup")
    assert all(acc[k] == pytest.approx(dnn_acc[k]) for k in phases)
    # unaccounted: dnn's own, stage 4's time outside the step (6 s), after the last stage (0.5 s)
    assert acc["unaccounted"] == pytest.approx(dnn_acc["unaccounted"] + 6.0 + 0.5)
    assert acc["wall"] == 34.5
    table = account_table(acc, {"stage 0": "stage 0: synthetic corpus"})
    assert "| stage 0: synthetic corpus | 5.0 | 14.5% |" in table and table.endswith("| **wall time** | 34.5 | 100% |\n")
    with pytest.raises(NnetavgError, match="no timeline in .*nope"):
        recipe_account(str(tl), [str(dnn), str(tmp_path / "nope")])
    (tmp_path / "running").write_text("stage 0 990 995 x\n")
    with pytest.raises(NnetavgError, match="no 'wall' line"):
        recipe_account(str(tmp_path / "running"), [str(dnn)])


def test_a_bad_timeline_line_names_the_file_and_line(tmp_path):
    (tmp_path / "timeline").write_text("cv 0 1 2\ncv 1 two 3\n")
    with pytest.raises(NnetavgError, match=r"timeline:2: not 'PHASE ITER START END': 'cv 1 two 3'"):
        read_timeline(str(tmp_path / "timeline"))
