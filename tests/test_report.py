"""Reading figures back from real logs of a tiny training run."""

import pytest

from nnetavg.errors import NnetavgError
from nnetavg.report import figures, parse_line, summarise
from tests.conftest import make_labelled_data, run_cmd


def test_parse_line():
    line = "LOG (nnet-train-mpi rank 1/4 03:10:00) epoch 2/3 learn-rate=0.02 cv-frame-accuracy=0.75 name=abc"
    assert parse_line(line) == {"learn-rate": 0.02, "cv-frame-accuracy": 0.75}


def test_figures_from_a_real_training_log(tmp_path):
    feats, ali = make_labelled_data(tmp_path, num_utts=20)
    run_cmd(["nnet-init", "--input-dim=6", "--output-dim=5", "--hidden-layers=1", "--hidden-dim=8", f"{tmp_path}/0.nnet"])
    logs = []
    for it in (1, 2):
        p = run_cmd(["nnet-train-simple", "--minibatch-size=16", "--report-period=200", f"{tmp_path}/{it - 1}.nnet",
                     f"scp:{feats}", f"ark:{ali}", f"{tmp_path}/{it}.nnet"])
        (tmp_path / f"train.{it}.log").write_text(p.stderr)
        logs.append(str(tmp_path / f"train.{it}.log"))
    rows = figures(logs, grep=") done ", rank=0)
    assert len(rows) == 2 and all(0 < r["frame-accuracy"] <= 1 for r in rows)
    last, total, best, ratio = summarise(rows, ["cross-entropy"], ["frames"], ["frame-accuracy"], ["frames/frames"])
    assert last == rows[1]["cross-entropy"] and total == rows[0]["frames"] + rows[1]["frames"]
    assert best == max(r["frame-accuracy"] for r in rows) and ratio == 1.0
    assert figures(logs, grep=") done ", rank=3) == []
    assert len(figures(logs, grep="progress")) >= 2
    out = run_cmd(["nnet-log-figures", "--grep=) done ", "--last=frames", "--max=frame-accuracy", *logs]).stdout
    assert out.strip() == f"{rows[1]['frames']:.6g} | {best:.6g}"
    with pytest.raises(NnetavgError, match="no figure nope"):
        summarise(rows, ["nope"])
