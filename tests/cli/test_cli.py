"""The commands as real processes: help, exit codes, --config, and every kind of bad input
giving one ERROR line naming the file and utterance, a non-zero exit and no output file."""

import os
import re
import time

import numpy as np
import pytest

from nnetavg.io.nnet1 import read_nnet
from nnetavg.io.tables import INT_VECTOR, MATRIX, TableWriter
from tests.conftest import make_labelled_data, run_cmd

COMMANDS = ["nnet-init", "nnet-info", "nnet-copy", "nnet-concat", "nnet-average", "nnet-train-simple", "nnet-train-ngsgd",
            "nnet-compute-prob", "nnet-learning-rate", "nnet-split-data", "nnet-copy-egs", "make-feature-transform",
            "compute-cmvn-stats", "apply-cmvn", "analyze-counts", "copy-feats", "run.pl", "nnet-train-mpi",
            "nnet-log-figures", "nnet-newbob", "nnet-train-asgd", "nnet-init-rbm", "rbm-train-cd1", "rbm-convert-to-nnet"]


@pytest.mark.parametrize("cmd", COMMANDS)
def test_help(cmd):
    p = run_cmd([cmd, "--help"])
    assert "Usage:" in p.stdout and "e.g.:" in p.stdout


def one_error_line(p, *fragments):
    assert p.returncode != 0
    assert "Traceback" not in p.stderr, p.stderr
    errors = [ln for ln in p.stderr.splitlines() if ln.startswith("ERROR")]
    assert len(errors) == 1, p.stderr
    for f in fragments:
        assert f in errors[0], errors[0]
    return errors[0]


@pytest.fixture
def setup(tmp_path):
    feats, ali = make_labelled_data(tmp_path, num_utts=24, feat_dim=4, num_pdfs=3)
    ft = str(tmp_path / "ft")
    run_cmd(["make-feature-transform", "--splice=1", f"scp:{feats}", ft])
    model = str(tmp_path / "0.nnet")
    run_cmd(["nnet-init", "--input-dim=12", "--output-dim=3", "--hidden-layers=1", "--hidden-dim=8", model])
    return tmp_path, feats, ali, ft, model


def train_args(model, feats, ali, out, ft, *extra):
    return ["nnet-train-simple", "--minibatch-size=16", "--randomizer-size=64", f"--feature-transform={ft}", *extra,
            model, f"scp:{feats}", f"ark:{ali}", out]


def test_train_evaluate_copy(setup):
    tmp, feats, ali, ft, model = setup
    p = run_cmd(train_args(model, feats, ali, str(tmp / "1.nnet"), ft))
    assert p.stderr.startswith("nnet-train-simple ")  # the command line is logged first
    assert "LOG (nnet-train-simple rank 0/1" in p.stderr and "frame-accuracy=" in p.stderr
    out = run_cmd(["nnet-compute-prob", f"--feature-transform={ft}", str(tmp / "1.nnet"), f"scp:{feats}",
                   f"ark:{ali}"]).stdout
    assert out.startswith("cross-entropy=") and "frames=" in out
    run_cmd(["nnet-copy", "--binary=false", str(tmp / "1.nnet"), str(tmp / "1.txt")])
    assert (tmp / "1.txt").read_text().startswith("<Nnet> \n<AffineTransform> 8 12 \n")
    np.testing.assert_allclose(read_nnet(str(tmp / "1.txt")).params, read_nnet(str(tmp / "1.nnet")).params, rtol=1e-6)
    assert run_cmd(["nnet-info", "--print=num-params", str(tmp / "1.nnet")]).stdout.strip() == str(12 * 8 + 8 + 8 * 3 + 3)


def test_average_with_its_cv_pass_equals_average_then_compute_prob(setup):
    """nnet-average --cv-*: the model nnet-average alone writes, and in --cv-log the line
    nnet-compute-prob prints for it, in a launcher log (start, elapsed) nnet-report reads."""
    from nnetavg.experiment import LauncherLog
    tmp, feats, ali, ft, model = setup
    run_cmd(train_args(model, feats, ali, str(tmp / "a.nnet"), ft, "--learn-rate=0.02"))
    run_cmd(train_args(model, feats, ali, str(tmp / "b.nnet"), ft, "--learn-rate=0.01"))
    ins = [str(tmp / "a.nnet"), str(tmp / "b.nnet")]
    run_cmd(["nnet-average", *ins, str(tmp / "plain.nnet")])
    t0 = time.time()
    p = run_cmd(["nnet-average", f"--feature-transform={ft}", f"--cv-feats=scp:{feats}", f"--cv-ali=ark:{ali}",
                 f"--cv-log={tmp}/log/cv.log", *ins, str(tmp / "avg.nnet")])
    assert (tmp / "avg.nnet").read_bytes() == (tmp / "plain.nnet").read_bytes()
    expect = run_cmd(["nnet-compute-prob", f"--feature-transform={ft}", str(tmp / "avg.nnet"), f"scp:{feats}",
                      f"ark:{ali}"]).stdout.strip()
    text = (tmp / "log" / "cv.log").read_text()
    assert expect in text.splitlines() and "cv-seconds=" in p.stderr
    cv = LauncherLog(str(tmp / "log" / "cv.log"))
    assert t0 - 1 <= cv.started() <= time.time() and 0 < cv.elapsed() < time.time() - t0 + 1
    assert cv.cv() == (float(expect.split()[0].split("=")[1]), float(expect.split()[1].split("=")[1]))
    bad = run_cmd(["nnet-average", f"--cv-feats=scp:{feats}", *ins, str(tmp / "x.nnet")], check=False)
    assert bad.returncode != 0 and "--cv-feats, --cv-ali and --cv-log go together" in bad.stderr


def test_config_file_and_command_line_precedence(setup):
    tmp, feats, ali, ft, model = setup
    (tmp / "train.conf").write_text("# nnet1-style options\n--learn-rate=0.5\n--minibatch-size=8\n")
    p = run_cmd(["nnet-train-simple", "--randomizer-size=64", f"--feature-transform={ft}", f"--config={tmp}/train.conf",
                 "--learn-rate=0.001", model, f"scp:{feats}", f"ark:{ali}", str(tmp / "a.nnet")])
    # what the trainer used (its summary line, not the echoed command line): the rate from the
    # command line, the minibatch size from the config file
    done = re.search(r"^LOG \(.*\) done minibatches=(\d+) learn-rate=(\S+) frames=(\d+) ", p.stderr, re.M)
    assert done and done.group(2) == "0.001", p.stderr
    assert int(done.group(1)) == int(done.group(3)) // 8, p.stderr


def test_usage_errors_are_kaldi_errors_exit_1(setup):
    """Option errors as Kaldi's ParseOptions reports them: an ERROR line and exit status 1 (click's
    'Error:' and 2 before)."""
    tmp, feats, ali, ft, model = setup
    for args in (["nnet-copy", model], ["nnet-copy", "--binary=maybe", model, str(tmp / "x")],
                 ["nnet-copy", "--no-such-option=1", model, str(tmp / "x")]):
        p = run_cmd(args, check=False)
        assert p.returncode == 1, p.stderr
        assert re.search(r"^ERROR \(nnet-copy .*\) ", p.stderr, re.M) and "Usage: nnet-copy" in p.stderr, p.stderr
    assert not (tmp / "x").exists()


def test_kaldi_option_spellings(setup):
    """--option_name, a bare boolean flag and --print-args, as Kaldi's binaries accept them."""
    tmp, feats, ali, ft, model = setup
    p = run_cmd(["nnet-copy", "--binary=false", "--print-args=false", model, str(tmp / "t.nnet")])
    assert "nnet-copy --binary" not in p.stderr
    assert (tmp / "t.nnet").read_bytes()[:1] != b"\0"
    run_cmd(["nnet-copy", "--binary", str(tmp / "t.nnet"), str(tmp / "b.nnet")])
    assert (tmp / "b.nnet").read_bytes()[:2] == b"\0B"
    p = run_cmd(train_args(model, feats, ali, str(tmp / "u.nnet"), ft, "--learn_rate=0.001", "--minibatch_size=8"))
    assert "learn-rate=0.001" in p.stderr


def test_missing_feats_entry(setup):
    tmp, feats, ali, ft, model = setup
    lines = open(feats).read().splitlines()
    key = lines[3].split()[0]
    lines[3] = f"{key} {tmp}/nowhere.ark:12"
    (tmp / "broken.scp").write_text("\n".join(lines) + "\n")
    out = tmp / "1.nnet"
    p = run_cmd(train_args(model, str(tmp / "broken.scp"), ali, str(out), ft), check=False)
    one_error_line(p, "broken.scp", key, "nowhere.ark")
    assert not out.exists()


def _write_table(tmp, name, feats=None, alis=None):
    if feats is not None:
        with TableWriter(f"ark,scp:{tmp}/{name}.ark,{tmp}/{name}.scp", MATRIX) as w:
            for k, v in feats.items():
                w.write(k, v)
    if alis is not None:
        with TableWriter(f"ark:{tmp}/{name}.ali", INT_VECTOR) as w:
            for k, v in alis.items():
                w.write(k, v)


def test_skipped_utterances_are_counted(setup):
    tmp, feats, ali, ft, model = setup
    rng = np.random.default_rng(0)
    good = {f"g{i}": rng.standard_normal((40, 4)).astype(np.float32) for i in range(6)}
    nan = rng.standard_normal((40, 4)).astype(np.float32)
    nan[5, 2] = np.inf
    feats_d = dict(good, long=rng.standard_normal((40, 4)).astype(np.float32), nan=nan,
                   nolab=rng.standard_normal((40, 4)).astype(np.float32))
    alis = {k: np.zeros(40, np.int32) for k in good} | {"long": np.zeros(52, np.int32), "nan": np.zeros(40, np.int32)}
    _write_table(tmp, "mixed", feats_d, alis)
    p = run_cmd(train_args(model, f"{tmp}/mixed.scp", f"{tmp}/mixed.ali", str(tmp / "1.nnet"), ft))
    assert "no-targets=1" in p.stderr and "length-mismatch=1" in p.stderr and "non-finite=1" in p.stderr
    assert "utterance long: 40 frames" in p.stderr and "utterance nan has NaN or Inf" in p.stderr
    assert (tmp / "1.nnet").exists()


def test_pdf_out_of_range_and_dim_mismatch(setup):
    tmp, feats, ali, ft, model = setup
    rng = np.random.default_rng(0)
    _write_table(tmp, "bigpdf", {"u1": rng.standard_normal((30, 4)).astype(np.float32)},
                 {"u1": np.full(30, 7, np.int32)})
    p = run_cmd(train_args(model, f"{tmp}/bigpdf.scp", f"{tmp}/bigpdf.ali", str(tmp / "o1"), ft), check=False)
    one_error_line(p, "bigpdf.ali", "utterance u1", "pdf id 7", "3 outputs")
    _write_table(tmp, "wide", {"w1": rng.standard_normal((30, 5)).astype(np.float32)}, {"w1": np.zeros(30, np.int32)})
    p = run_cmd(train_args(model, f"{tmp}/wide.scp", f"{tmp}/wide.ali", str(tmp / "o2"), ft), check=False)
    one_error_line(p, "wide.scp", "utterance w1", "feature dim 5", "expects 4")
    assert not (tmp / "o1").exists() and not (tmp / "o2").exists()


def test_nan_objective_keeps_last_good_model(setup):
    tmp, feats, ali, ft, model = setup
    net = read_nnet(model)
    net.params[0] = np.nan
    from nnetavg.io.nnet1 import write_nnet_to
    with open(tmp / "nan.nnet", "wb") as f:
        write_nnet_to(f, net)
    p = run_cmd(train_args(str(tmp / "nan.nnet"), feats, ali, str(tmp / "out.nnet"), ft), check=False)
    one_error_line(p, "objective became nan")
    assert not (tmp / "out.nnet").exists()


def test_corrupt_model_and_mismatched_average(setup):
    tmp, feats, ali, ft, model = setup
    data = open(model, "rb").read()
    (tmp / "trunc.nnet").write_bytes(data[: len(data) - 20])
    p = run_cmd(["nnet-info", str(tmp / "trunc.nnet")], check=False)
    one_error_line(p, "trunc.nnet", "truncated or corrupt")
    other = str(tmp / "other.nnet")
    run_cmd(["nnet-init", "--input-dim=12", "--output-dim=3", "--hidden-layers=1", "--hidden-dim=9", other])
    p = run_cmd(["nnet-average", model, other, str(tmp / "avg.nnet")], check=False)
    one_error_line(p, "other.nnet does not match", "component 1")
    assert not (tmp / "avg.nnet").exists()
    assert not [f for f in os.listdir(tmp) if f.endswith(".tmp")]  # no temp files left behind


def test_nnet_average_cli(setup):
    tmp, feats, ali, ft, model = setup
    run_cmd(["nnet-init", "--seed=5", "--input-dim=12", "--output-dim=3", "--hidden-layers=1", "--hidden-dim=8",
             str(tmp / "b.nnet")])
    run_cmd(["nnet-average", "--weights=1:3", model, str(tmp / "b.nnet"), str(tmp / "avg.nnet")])
    expect = 0.25 * read_nnet(model).params + 0.75 * read_nnet(str(tmp / "b.nnet")).params
    np.testing.assert_allclose(read_nnet(str(tmp / "avg.nnet")).params, expect, rtol=1e-6, atol=1e-7)


def test_cmvn_tools_round_trip(tmp_path):
    feats, _ = make_labelled_data(tmp_path, num_utts=6, feat_dim=3)
    keys = [ln.split()[0] for ln in open(feats)]
    (tmp_path / "utt2spk").write_text("".join(f"{k} {'A' if i < 3 else 'B'}\n" for i, k in enumerate(keys)))
    (tmp_path / "spk2utt").write_text(f"A {' '.join(keys[:3])}\nB {' '.join(keys[3:])}\n")
    run_cmd(["compute-cmvn-stats", f"--spk2utt=ark:{tmp_path}/spk2utt", f"scp:{feats}",
             f"ark,scp:{tmp_path}/cmvn.ark,{tmp_path}/cmvn.scp"])
    run_cmd(["apply-cmvn", "--norm-vars=true", f"--utt2spk=ark:{tmp_path}/utt2spk", f"scp:{tmp_path}/cmvn.scp",
             f"scp:{feats}", f"ark:{tmp_path}/norm.ark"])
    from nnetavg.io.tables import SequentialReader
    got = dict(SequentialReader(f"ark:{tmp_path}/norm.ark"))
    a = np.concatenate([got[k] for k in keys[:3]])
    np.testing.assert_allclose(a.mean(0), 0, atol=1e-4)
    np.testing.assert_allclose(a.std(0), 1, atol=1e-3)
    run_cmd(["compute-cmvn-stats", f"scp:{feats}", f"{tmp_path}/global.stats"])
    from nnetavg.io.tables import read_single
    assert read_single(f"{tmp_path}/global.stats").shape == (2, 4)


def test_ngsgd_state_out_and_in(setup):
    tmp, feats, ali, ft, model = setup
    base = ["nnet-train-ngsgd", "--minibatch-size=16", "--randomizer-size=64", f"--feature-transform={ft}"]
    run_cmd(base + [f"--ng-state-out={tmp}/s1.npz", model, f"scp:{feats}", f"ark:{ali}", str(tmp / "1.nnet")])
    with np.load(tmp / "s1.npz") as z:
        keys = set(z.files)
        assert {"0.in.W", "0.out.W", "2.in.d", "2.out.rho"} <= keys and int(z["0.in.t"]) > 10
    p = run_cmd(base + [f"--ng-state-in={tmp}/s1.npz", f"--ng-state-out={tmp}/s2.npz", str(tmp / "1.nnet"),
                        f"scp:{feats}", f"ark:{ali}", str(tmp / "2.nnet")])
    with np.load(tmp / "s1.npz") as a, np.load(tmp / "s2.npz") as b:
        assert int(b["0.in.t"]) > int(a["0.in.t"])  # the estimate continued
    assert "done" in p.stderr
    p = run_cmd(base + [f"--ng-state-in={tmp}/none.npz", model, f"scp:{feats}", f"ark:{ali}", str(tmp / "3.nnet")],
                check=False)
    one_error_line(p, "cannot read natural-gradient state", "none.npz")
    assert not (tmp / "3.nnet").exists()
    p = run_cmd(base + ["--ngsgd-variant=fancy", model, f"scp:{feats}", f"ark:{ali}", str(tmp / "4.nnet")], check=False)
    one_error_line(p, "online or simple")
