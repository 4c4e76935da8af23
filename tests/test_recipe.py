"""The synthetic recipe end to end (tiny preset), as a user runs it, including resuming."""

import os
import re
import shutil
import subprocess

import pytest

from tests.conftest import REPO

RECIPE = os.path.join(REPO, "egs", "synth", "s5")


def command_env():
    return dict(os.environ, PATH=os.path.dirname(os.path.realpath(shutil.which("nnet-init"))) + ":" + os.environ["PATH"])


def run_recipe(workdir, *args):
    return subprocess.run(["bash", "run.sh", *args], cwd=workdir, capture_output=True, text=True, env=command_env())


def tiny_egs(recipe_copy):
    """Makes sure the copy has the tiny corpus, its egs and initial models (the end-to-end test
    makes them when it runs first); returns the environment for running steps."""
    if not (recipe_copy / "egs" / "info" / "num_archives").exists():
        p = run_recipe(recipe_copy, "--preset", "tiny", "--stop-stage", "3")
        assert p.returncode == 0, p.stdout + p.stderr
    return command_env()


@pytest.fixture(scope="module")
def recipe_copy(tmp_path_factory):
    """A copy of the recipe directory (scripts only), so runs do not write into the checkout."""
    work = tmp_path_factory.mktemp("synth")
    # keep ../../.. pointing at the repository: path.sh finds .venv there
    root = work / "egs" / "synth" / "s5"
    root.parent.mkdir(parents=True)
    shutil.copytree(RECIPE, root, symlinks=False, ignore=shutil.ignore_patterns("data", "egs", "exp"))
    for name in (".venv",):
        if os.path.exists(os.path.join(REPO, name)):
            os.symlink(os.path.join(REPO, name), work / name)
    return root


def check_report(recipe_copy, stdout):
    """Stage 7's report read the real logs: its figures are the run's, its PNGs are real images."""
    from nnetavg.experiment import read_experiment
    from nnetavg.plots import plot_scaling, speedups

    report = recipe_copy / "exp" / "report"
    summary = (report / "summary.md").read_text()
    for png in ("curves.png", "learning_rate.png", "time_dnn.png", "time_linear.png"):
        data = (report / png).read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 10000, png
        assert f"]({png})" in summary
    exp = read_experiment(str(recipe_copy / "exp" / "dnn"))
    assert exp.kind == "files" and exp.num_jobs == 4 and len(exp.iterations) == 4
    final = re.search(r"dnn/final.nnet .*final CV cross-entropy=(\S+) frame-accuracy=(\S+)", stdout)
    assert exp.final.cv_cross_entropy == pytest.approx(float(final.group(1)), rel=1e-5)
    assert exp.final.cv_frame_accuracy == pytest.approx(float(final.group(2)), rel=1e-5)
    assert f"{100 * exp.final.cv_frame_accuracy:.2f}%" in summary
    assert all(len(it.jobs) == 4 and it.compute_seconds > 0 for it in exp.iterations)
    lrs = [it.learn_rate for it in exp.iterations]
    assert lrs == sorted(lrs, reverse=True) and lrs[0] > lrs[-1]  # the exponential schedule, per job
    # the same logs as a "1-job" run: speed-up of the 4-job one is the ratio of their frames/s
    single = read_experiment(str(recipe_copy / "exp" / "linear"))
    single.num_jobs = 1
    (n, s, _), = [p for p in speedups([single, exp]) if p[0] == 4]
    assert s == pytest.approx(exp.frames_per_second / single.frames_per_second)
    assert plot_scaling([single, exp], str(report / "scaling.png"))
    assert (report / "scaling.png").read_bytes()[:4] == b"\x89PNG"


@pytest.mark.slow
def test_tiny_recipe_end_to_end_and_resume(recipe_copy):
    args = ["--preset", "tiny", "--num-iters", "4", "--hidden-dim", "64", "--hidden-layers", "2"]
    p = run_recipe(recipe_copy, *args)
    assert p.returncode == 0, p.stdout + p.stderr
    acc = {m: float(re.search(rf"run.sh: {m}: CV .*frame-accuracy=([0-9.]+)", p.stdout).group(1)) for m in ("dnn", "linear")}
    assert acc["dnn"] > 3 * (1 / 24)  # well above chance (24 pdfs)
    exp = recipe_copy / "exp" / "dnn"
    for f in ("final.nnet", "final.feature_transform", "ali_train_pdf.counts", "4.nnet", "log/train.3.4.log"):
        assert (exp / f).exists(), f
    assert not (exp / "3.1.nnet").exists()  # job models removed after averaging
    assert (recipe_copy / "data" / "train" / "cmvn.scp").exists()
    log = (exp / "log" / "train.0.1.log").read_text()
    assert log.startswith("# nnet-train-simple") and "# Ended (code 0)" in log
    check_report(recipe_copy, p.stdout)
    # the final model's figure is on the CV utterances it was not chosen on (the rest of the CV set)
    m = re.search(r"run.sh: dnn: CV \(the (\d+) utterances not used to choose the final model\) .*frames=(\d+)", p.stdout)
    fit = (exp / "combine_fit_utts").read_text().split()
    unseen = (exp / "cv_unseen.scp").read_text().splitlines()
    cv = (recipe_copy / "egs" / "cv" / "feats.scp").read_text().splitlines()
    assert m and int(m.group(1)) == len(unseen) == len(cv) - len(fit) and not set(fit) & {u.split()[0] for u in unseen}
    # the recipe's wall time, per stage, from its own clock
    t = re.search(r"run.sh: wall time (\d+)m(\d+)s \(Stage 0 \d+ s, .*Stage 7 \d+ s\)", p.stdout)
    assert t and (recipe_copy / "exp" / "wall_time").read_text().startswith(f"{t.group(1)}m{t.group(2)}s (Stage 0")
    # ... and where it went: the stages' timeline adds up to the wall time, the account of it (the
    # training stages split by phase) leaves little unaccounted
    a = re.search(r"training steps ([0-9.]+)% of it, accounted for ([0-9.]+)%", p.stdout)
    assert a and 0 < float(a.group(1)) < 100 and float(a.group(2)) >= 90, p.stdout[-3000:]
    lines = [ln.split() for ln in (recipe_copy / "exp" / "timeline").read_text().splitlines()]
    wall = sum(float(ln[3]) - float(ln[2]) for ln in lines if ln[0] == "wall")
    stages = sum(float(ln[3]) - float(ln[2]) for ln in lines if ln[0] == "stage")
    assert [ln[1] for ln in lines if ln[0] == "stage"] == [str(i) for i in range(8)] and abs(wall - stages) < 0.05
    rows = re.findall(r"^\| ([^|]+) \| ([0-9.]+) \| [0-9.]+% \|$", (recipe_copy / "exp" / "account.md").read_text(), re.M)
    assert sum(float(v) for k, v in rows if "wall time" not in k) == pytest.approx(wall, abs=0.2)

    # A run killed after iteration 2: the last iterations are recomputed, earlier ones are not.
    final_before = (exp / "final.nnet").read_bytes()
    for f in ("3.nnet", "4.nnet", "final.nnet"):
        (exp / f).unlink()
    mtime_2 = os.path.getmtime(exp / "2.nnet")
    p = run_recipe(recipe_copy, *args, "--stage", "4", "--linear-baseline", "false")
    assert p.returncode == 0, p.stdout + p.stderr
    assert os.path.getmtime(exp / "2.nnet") == mtime_2
    assert "iteration 3 of 4" in p.stdout and "iteration 2 of 4" not in p.stdout
    assert (exp / "final.nnet").read_bytes() == final_before  # same seeds: bitwise the same model


@pytest.mark.slow
def test_ngsgd_keep_state_through_train_parallel(recipe_copy):
    """Natural gradient with the Fisher state kept per job across iterations (uses the egs of the
    end-to-end test above when it ran first; makes them otherwise)."""
    env = tiny_egs(recipe_copy)
    p = subprocess.run(["bash", "steps/train_parallel.sh", "--num-iters", "2", "--optimizer", "ngsgd", "--ng-state",
                        "keep", "egs", "exp/dnn/0.nnet", "exp/ng"], cwd=recipe_copy, capture_output=True, text=True,
                       env=env)
    assert p.returncode == 0, p.stdout + p.stderr
    ng = recipe_copy / "exp" / "ng"
    assert sorted(f.name for f in (ng / "ng").iterdir()) == [f"2.{j}.npz" for j in range(1, 5)]
    assert "--ng-state-in=" in (ng / "log" / "train.1.3.log").read_text()
    assert (ng / "final.nnet").exists()
    acc = float(re.search(r"final CV .*frame-accuracy=([0-9.]+)", p.stdout).group(1))
    assert acc > 2 / 24


@pytest.mark.slow
def test_job_count_ramp_through_train_parallel(recipe_copy):
    """Kaldi nnet3's --num-jobs-initial/--num-jobs-final: 2 epochs of 4 archives with a 1 -> 4 ramp
    is 3 iterations of 1, 3 and 4 jobs (8 archives in all), the archives taken in turn, the job
    rate = effective rate x jobs of the iteration; NG-SGD state is handed to the new jobs."""
    env = tiny_egs(recipe_copy)
    p = subprocess.run(["bash", "steps/train_parallel.sh", "--num-iters", "2", "--num-jobs-initial", "1",
                        "--num-jobs-final", "4", "--initial-learning-rate", "0.004", "--final-learning-rate", "0.004",
                        "--optimizer", "ngsgd", "--max-change", "0.5", "egs", "exp/dnn/0.nnet", "exp/ramp"],
                       cwd=recipe_copy, capture_output=True, text=True, env=env)
    assert p.returncode == 0, p.stdout + p.stderr
    assert "job-count ramp 1 -> 4 over 3 iterations (2 epochs of 4 archives)" in p.stdout
    jobs = [int(j) for j in re.findall(r"iteration \d of 3: .* jobs=(\d+) ", p.stdout, re.M)]
    lrs = [float(v) for v in re.findall(r"iteration \d of 3: job-learning-rate=(\S+) ", p.stdout)]
    assert jobs == [1, 3, 4] and lrs == pytest.approx([0.004, 0.012, 0.016])
    ramp = recipe_copy / "exp" / "ramp"
    read = {(x, j): os.path.basename(os.path.realpath(ramp / "arch" / f"feats.{x}.{j}.scp"))
            for x, n in enumerate(jobs) for j in range(1, n + 1)}
    assert [read[(0, 1)], read[(1, 1)], read[(1, 3)], read[(2, 1)], read[(2, 4)]] == \
        ["feats.1.scp", "feats.2.scp", "feats.4.scp", "feats.1.scp", "feats.4.scp"]
    log = (ramp / "log" / "train.1.3.log").read_text()
    assert "scp:exp/ramp/arch/feats.1.3.scp" in log and "--ng-state-in=" in log and "--max-change=0.5" in log
    assert "max-change limited-fraction-model=" in log
    assert not (ramp / "log" / "train.0.2.log").exists() and (ramp / "log" / "train.2.4.log").exists()
    acc = float(re.search(r"final CV .*frame-accuracy=([0-9.]+)", p.stdout).group(1))
    assert acc > 2 / 24


@pytest.mark.slow
def test_train_mpi_step(recipe_copy):
    """steps/train_mpi.sh with the recipe's tiny egs: 4 ranks under the MPICH wheel's mpiexec."""
    env = tiny_egs(recipe_copy)
    p = subprocess.run(["bash", "steps/train_mpi.sh", "--num-epochs", "2", "--mixing", "ring", "--average-every", "5",
                        "egs", "exp/dnn/0.nnet", "exp/mpi"], cwd=recipe_copy, capture_output=True, text=True, env=env)
    assert p.returncode == 0, p.stdout + p.stderr
    assert "4 ranks, ring mixing every 5 minibatches" in p.stdout
    assert re.search(r"epoch 2/2 .*cv-frame-accuracy=0\.\d+", p.stdout)
    log = (recipe_copy / "exp" / "mpi" / "log" / "train_mpi.log").read_text()
    assert all(f"rank {r}/4" in log for r in range(4))
    # plain SGD with the rate x 4: nnet3's limits, the binary's defaults (the step passes none)
    assert "--max-change" not in log.splitlines()[0] and "--scale-ng-limit" not in log.splitlines()[0]
    assert "rank 0/4" in log and "max-change 0.75, max-param-change 2 (defaults: plain SGD with the rate x ranks)" in log
    assert (recipe_copy / "exp" / "mpi" / "final.nnet").exists()
    from nnetavg.experiment import read_experiment
    exp = read_experiment(str(recipe_copy / "exp" / "mpi"))
    last = [ln for ln in log.splitlines() if " epoch 2/2 " in ln and "rank 0/4" in ln][0]
    assert exp.kind == "mpi" and exp.num_jobs == 4 and len(exp.iterations) == 2
    assert exp.final.cv_frame_accuracy == pytest.approx(float(re.search(r"cv-frame-accuracy=(\S+)", last).group(1)))
    assert exp.final.mix_seconds > 0 and exp.final.compute_seconds > 0
    again = subprocess.run(["bash", "steps/train_mpi.sh", "egs", "exp/dnn/0.nnet", "exp/mpi"], cwd=recipe_copy,
                           capture_output=True, text=True, env=env)
    assert again.returncode == 0 and "exists, not retraining" in again.stdout


@pytest.mark.slow
def test_pretrain_dbn_step_on_two_ranks_then_init(recipe_copy):
    """steps/pretrain_dbn.sh (RBMs averaged over 2 MPI ranks) and nnet-init --dbn on the tiny egs."""
    env = tiny_egs(recipe_copy)
    # two ranks over all the archives (more archives than ranks: each rank gets its share of every one)
    archives = sorted((recipe_copy / "egs").glob("feats.*.scp"))
    assert len(archives) > 2
    p = subprocess.run(["bash", "steps/pretrain_dbn.sh", "--nn-depth", "2", "--hid-dim", "32", "--nj", "2",
                        "--average-every", "5", "egs", "exp/dbn2"], cwd=recipe_copy, capture_output=True, text=True,
                       env=env)
    assert p.returncode == 0, p.stdout + p.stderr
    assert "layer 1/2: Gaussian-Bernoulli RBM 440 -> 32" in p.stdout
    assert "layer 2/2: Bernoulli-Bernoulli RBM 32 -> 32" in p.stdout
    from nnetavg.io.nnet1 import read_nnet
    dbn = read_nnet(str(recipe_copy / "exp" / "dbn2" / "2.dbn"))
    assert [c.marker for c in dbn.components] == ["<AffineTransform>", "<Sigmoid>"] * 2
    assert "rank 1/2" in (recipe_copy / "exp" / "dbn2" / "log" / "rbm.1.log").read_text()
    utts = lambda path: [line.split()[0] for line in open(path)]  # noqa: E731
    ranks = utts(recipe_copy / "exp" / "dbn2" / "train.1.scp") + utts(recipe_copy / "exp" / "dbn2" / "train.2.scp")
    assert sorted(ranks) == sorted(u for a in archives for u in utts(a))
    out = recipe_copy / "exp" / "dbn2" / "0.nnet"
    subprocess.run(["nnet-init", "--dbn", str(recipe_copy / "exp" / "dbn2" / "2.dbn"), "--hidden-layers", "0",
                    "--output-dim", "24", str(out)], check=True, capture_output=True, env=env)
    net = read_nnet(str(out))
    assert [c.marker for c in net.components][-2:] == ["<AffineTransform>", "<Softmax>"]
    assert (net.input_dim, net.output_dim) == (440, 24)


@pytest.mark.slow
def test_newbob_through_train_parallel(recipe_copy):
    """--lr-schedule newbob: decisions logged, state resumable, final = the best accepted model."""
    env = tiny_egs(recipe_copy)
    args = ["bash", "steps/train_parallel.sh", "--num-iters", "4", "--lr-schedule", "newbob",
            "--initial-learning-rate", "0.02", "egs", "exp/dnn/0.nnet", "exp/nb"]
    p = subprocess.run(args, cwd=recipe_copy, capture_output=True, text=True, env=env)
    assert p.returncode == 0, p.stdout + p.stderr
    import json
    state = json.loads((recipe_copy / "exp" / "nb" / "newbob.json").read_text())
    assert 1 <= state["iterations"] <= 4 and state["history"][0]["learn_rate"] == 0.02
    assert re.search(r"iteration 1 of 4: job-learning-rate=0.08 CV .* (accepted|rejected), next-learning-rate=", p.stdout)
    best = state["best_iter"]
    assert f"(= {best}.nnet)" in p.stdout
    again = subprocess.run(args, cwd=recipe_copy, capture_output=True, text=True, env=env)
    assert again.returncode == 0 and "iteration 1 of" not in again.stdout  # nothing retrained
    assert (recipe_copy / "exp" / "nb" / "final.nnet").read_bytes() == \
        (recipe_copy / "exp" / "nb" / f"{best}.nnet").read_bytes() or best == 0


@pytest.mark.slow
def test_final_model_combine_and_best_cv(recipe_copy):
    """train_parallel.sh ends by combining the last models on CV frames (default) or by keeping
    the iteration with the best CV cross-entropy; final_model says which, the log gives the CV."""
    env = tiny_egs(recipe_copy)
    base = ["bash", "steps/train_parallel.sh", "--num-iters", "4", "--initial-learning-rate", "0.03"]
    p = subprocess.run([*base, "egs", "exp/dnn/0.nnet", "exp/comb"], cwd=recipe_copy, capture_output=True,
                       text=True, env=env)
    assert p.returncode == 0, p.stdout + p.stderr
    exp = recipe_copy / "exp" / "comb"
    assert (exp / "final_model").read_text().startswith("combination of 3-4.nnet (")
    m = re.search(r"last iteration CV cross-entropy=(\S+) .*final CV cross-entropy=(\S+)", p.stdout)
    assert m and float(m.group(2)) <= float(m.group(1)) + 0.02, p.stdout  # fitted on 20k of the CV frames
    from nnetavg.experiment import read_experiment
    e = read_experiment(str(exp))
    assert e.final.cv_cross_entropy == pytest.approx(float(m.group(2)), rel=1e-5)
    from nnetavg.plots import summary_markdown
    row = summary_markdown([e], [], str(exp)).splitlines()[2]
    assert "| combination of 3-4.nnet (" in row and f"{100 * e.iterations[-1].cv_frame_accuracy:.2f}%" in row
    import shutil
    shutil.copytree(exp, recipe_copy / "exp" / "best", ignore=shutil.ignore_patterns("final*", "combine.log"))
    p = subprocess.run([*base, "--final-model", "best-cv", "egs", "exp/dnn/0.nnet", "exp/best"], cwd=recipe_copy,
                       capture_output=True, text=True, env=env)
    assert p.returncode == 0 and "iteration 1 of" not in p.stdout, p.stdout + p.stderr  # nothing retrained
    ces = {i: float(re.search(r"cross-entropy=(\S+)", (exp / "log" / f"compute_prob_cv.{i}.log").read_text()).group(1))
           for i in range(1, 5)}
    best = min(ces, key=ces.get)
    assert (recipe_copy / "exp/best/final_model").read_text().startswith(f"{best}.nnet (best CV")
    assert (recipe_copy / "exp/best/final.nnet").read_bytes() == (exp / f"{best}.nnet").read_bytes()


@pytest.mark.slow
def test_train_asgd_step(recipe_copy):
    """steps/train_asgd.sh on the tiny egs: 1 server + 4 workers, the per-chunk search."""
    env = tiny_egs(recipe_copy)
    p = subprocess.run(["bash", "steps/train_asgd.sh", "--lr-schedule", "search", "--chunk-size", "2000",
                        "--cv-check-every", "20", "egs", "exp/dnn/0.nnet", "exp/asgd"], cwd=recipe_copy,
                       capture_output=True, text=True, env=env)
    assert p.returncode == 0, p.stdout + p.stderr
    assert "1 server + 4 workers, search from 0.008" in p.stdout
    m = re.search(r"gradients-applied=(\d+) gradients-sent=(\d+)", p.stdout)
    assert m and m.group(1) == m.group(2)
    assert re.search(r"final CV cross-entropy=\S+ frame-accuracy=0\.\d+", p.stdout)
    log = (recipe_copy / "exp" / "asgd" / "log" / "train_asgd.log").read_text()
    assert "chunk 1: learn-rate=" in log and all(f"rank {r}/5" in log for r in range(5))


@pytest.mark.slow
def test_train_asgd_hand_decay_follows_the_data_size(recipe_copy):
    """ASGD-hand with --final-learning-rate: the per-update decay comes from the egs' frame count so
    the last update runs at about the final rate (a fixed 0.999 ends near 0 on a big corpus); a
    decay that would starve the end of the pass is warned about."""
    env = tiny_egs(recipe_copy)
    p = subprocess.run(["bash", "steps/train_asgd.sh", "--final-learning-rate", "0.0008", "--cv-check-every", "20",
                        "--cv-check-frames", "500", "egs", "exp/dnn/0.nnet", "exp/asgd_hand"], cwd=recipe_copy,
                       capture_output=True, text=True, env=env)
    assert p.returncode == 0, p.stdout + p.stderr
    m = re.search(r"(\d+) frames = (\d+) updates: decay (\S+) per update takes the rate from 0.008 to 0.0008", p.stdout)
    assert m, p.stdout
    frames, updates, decay = int(m.group(1)), int(m.group(2)), float(m.group(3))
    assert updates == frames // 256 and 0.008 * decay ** updates == pytest.approx(0.0008, rel=1e-4)
    last = float(re.search(r"last-learn-rate=(\S+)", p.stdout).group(1))
    applied = int(re.search(r"gradients-applied=(\d+)", p.stdout).group(1))
    assert last == pytest.approx(0.008 * decay ** (applied - 1), rel=1e-4) and 0.0005 < last < 0.0013
    log = (recipe_copy / "exp" / "asgd_hand" / "log" / "train_asgd.log").read_text()
    assert "CV checks on the first 500 frames" in log
    p = subprocess.run(["bash", "steps/train_asgd.sh", "--lr-decay", "0.5", "--cv-check-every", "0", "egs",
                        "exp/dnn/0.nnet", "exp/asgd_starved"], cwd=recipe_copy, capture_output=True, text=True, env=env)
    assert p.returncode == 0 and "below 1/1000 of the start: the end of the data is not learnt" in p.stderr, p.stderr


def test_epoch_schedule_option_and_its_old_spelling(recipe_copy):
    """Between iterations the schedule is --epoch-schedule (--lr-schedule means "within a pass" in
    every trainer); the old spelling still works, with a warning."""
    env = command_env()
    for opt in ("--epoch-schedule", "--lr-schedule"):
        for step in ("steps/train_parallel.sh", "steps/train_mpi.sh"):
            p = subprocess.run(["bash", step, opt, "bogus", "egs", "exp/dnn/0.nnet", "exp/x"], cwd=recipe_copy,
                               capture_output=True, text=True, env=env)
            assert p.returncode != 0
            assert ("--lr-schedule is now --epoch-schedule" in p.stderr) == (opt == "--lr-schedule"), p.stderr
