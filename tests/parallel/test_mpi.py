"""MPI mixing and training under a real mpiexec (the MPICH wheel), with 2 and 4 ranks."""

import os
import re

import numpy as np
import pytest

from nnetavg.io.nnet1 import read_nnet
from tests.conftest import BIN_DIR, make_labelled_data, run_cmd

MPIEXEC = os.path.join(BIN_DIR, "mpiexec")
HERE = os.path.dirname(os.path.abspath(__file__))
pytestmark = pytest.mark.skipif(not os.path.exists(MPIEXEC), reason="no mpiexec beside the interpreter")


def mpi(n, args, check=True, timeout=120):
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1", PYTHONPATH=os.path.dirname(os.path.dirname(HERE)))
    import subprocess
    p = subprocess.run([MPIEXEC, "-n", str(n)] + args, capture_output=True, text=True, env=env, timeout=timeout)
    if check and p.returncode != 0:
        raise AssertionError(f"mpiexec -n {n} {args} failed ({p.returncode}):\n{p.stdout}\n{p.stderr}")
    return p


@pytest.mark.parametrize("n", [2, 3, 4])
def test_mixing_patterns_match_closed_forms(n):
    import sys
    p = mpi(n, [sys.executable, os.path.join(HERE, "mpi_programs", "mixing_check.py")])
    assert sorted(re.findall(r"rank (\d+) of \d+: mixing OK", p.stdout)) == [str(i) for i in range(n)]


@pytest.mark.parametrize("n", [2, 3, 4])
def test_block_momentum_matches_closed_form(n):
    import sys
    p = mpi(n, [sys.executable, os.path.join(HERE, "mpi_programs", "bmuf_check.py")])
    assert sorted(re.findall(r"rank (\d+) of \d+: bmuf OK", p.stdout)) == [str(i) for i in range(n)]


@pytest.fixture(scope="module")
def four_archives(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("mpi")
    for j in range(1, 5):
        make_labelled_data(tmp, num_utts=25, seed=j, name=f"a{j}")
    make_labelled_data(tmp, num_utts=12, seed=99, name="cv")
    run_cmd(["nnet-init", "--input-dim=6", "--output-dim=5", "--hidden-layers=1", "--hidden-dim=24", f"{tmp}/0.nnet"])
    return tmp


def train_args(tmp, out, *extra):
    return ["nnet-train-mpi", "--minibatch-size=32", "--randomizer-size=256", "--learn-rate=0.01",
            "--final-learn-rate=0.002", "--num-epochs=3", "--average-every=2", f"--cv-feats=scp:{tmp}/cv/feats.scp",
            f"--cv-ali=ark:{tmp}/cv/ali.ark", *extra, f"{tmp}/0.nnet", f"scp:{tmp}/aJOB/feats.scp",
            f"ark:{tmp}/aJOB/ali.ark", str(out)]


@pytest.mark.slow
@pytest.mark.parametrize("mixing,optimizer", [("allreduce", "sgd"), ("butterfly", "ngsgd"), ("ring", "sgd")])
def test_four_rank_training_converges_and_ranks_agree(four_archives, mixing, optimizer):
    tmp = four_archives
    out = tmp / f"{mixing}.nnet"
    p = mpi(4, train_args(tmp, out, "--world-size=4", f"--mixing={mixing}", f"--optimizer={optimizer}"))
    epochs = re.findall(r"LOG \(nnet-train-mpi rank (\d)/4 .*epoch 3/3 .*cv-frame-accuracy=([0-9.]+).*params-sum=(\S+)",
                        p.stderr)
    assert sorted(r for r, _, _ in epochs) == ["0", "1", "2", "3"], p.stderr
    assert len({s for _, _, s in epochs}) == 1  # identical parameters on every rank after the exact average
    assert float(epochs[0][1]) > 0.8
    assert "rank 3 of 4 reads scp:" in p.stderr and "/a4/feats.scp" in p.stderr
    assert np.isclose(read_nnet(str(out)).params.astype(np.float64).sum(), float(epochs[0][2]), rtol=1e-6)


@pytest.mark.slow
@pytest.mark.parametrize("nesterov", ["true", "false"])
def test_bmuf_training_converges_at_the_single_job_rate(four_archives, nesterov):
    """BMUF over 4 ranks: the ranks keep the single-job rate (auto: not x 4), report the filter,
    agree on the parameters after every epoch, and train as well as all-reduce at rate x 4."""
    tmp = four_archives
    out = tmp / f"bmuf.{nesterov}.nnet"
    p = mpi(4, train_args(tmp, out, "--world-size=4", "--mixing=bmuf", f"--nesterov={nesterov}"))
    assert "block momentum: eta=0.75 zeta=1 " + ("Nesterov" if nesterov == "true" else "classical") in p.stderr
    epochs = re.findall(r"rank (\d)/4 .*epoch 3/3 learn-rate=(\S+) .*cv-frame-accuracy=([0-9.]+).*params-sum=(\S+)",
                        p.stderr)
    assert sorted(r for r, _, _, _ in epochs) == ["0", "1", "2", "3"], p.stderr
    assert {lr for _, lr, _, _ in epochs} == {"0.002"}  # the final rate, not x 4
    assert len({s for _, _, _, s in epochs}) == 1
    assert float(epochs[0][2]) > 0.8
    assert np.isclose(read_nnet(str(out)).params.astype(np.float64).sum(), float(epochs[0][3]), rtol=1e-6)


def test_world_size_mismatch_and_butterfly_on_three(four_archives):
    tmp = four_archives
    p = mpi(2, train_args(tmp, tmp / "x.nnet", "--world-size=4"), check=False)
    assert p.returncode != 0 and "MPI started 2 connected rank(s) but --world-size=4" in p.stderr
    p = mpi(3, train_args(tmp, tmp / "y.nnet", "--mixing=butterfly"), check=False)
    assert p.returncode != 0 and "power-of-two" in p.stderr
    assert not (tmp / "x.nnet").exists() and not (tmp / "y.nnet").exists()


def test_failing_rank_ends_the_job_quickly(four_archives):
    """Rank 2 (JOB=3) reads a features table that does not exist while the others train and wait
    for it in the next mix: the whole job must end, non-zero, within seconds."""
    tmp = four_archives
    os.makedirs(tmp / "f", exist_ok=True)
    for j in (1, 2, 4):
        if not (tmp / "f" / f"{j}.scp").exists():
            os.symlink(tmp / f"a{j}" / "feats.scp", tmp / "f" / f"{j}.scp")
    args = train_args(tmp, tmp / "z.nnet")
    args[-3] = f"scp:{tmp}/f/JOB.scp"
    p = mpi(4, args, check=False, timeout=120)   # a hang fails here
    assert p.returncode != 0
    # ended by the failure, not after training: no rank finished its epoch
    assert not re.search(r" epoch \d+/\d+ ", p.stderr), p.stderr
    assert re.search(r"ERROR \(nnet-train-mpi rank 2/4 .*rank 2 failed: .*f/3.scp", p.stderr), p.stderr
    assert not (tmp / "z.nnet").exists()


def test_newbob_between_epochs_over_mpi(four_archives):
    tmp = four_archives
    p = mpi(2, train_args(tmp, tmp / "nb.nnet", "--epoch-schedule=newbob", "--num-epochs=4"))
    epochs = re.findall(r"rank 0/2 .*epoch (\d)/4 learn-rate=(\S+)", p.stderr)
    assert len(epochs) >= 2 and epochs[0][1] == "0.02"  # 0.01 x 2 ranks
    assert (tmp / "nb.nnet").exists()
    no_cv = [a for a in train_args(tmp, tmp / "nb2.nnet", "--epoch-schedule=newbob") if not a.startswith("--cv-")]
    p = mpi(2, no_cv, check=False)
    assert p.returncode != 0 and "needs --cv-feats" in p.stderr


@pytest.mark.slow
def test_report_draws_accuracy_against_ranks_from_real_mpi_logs(four_archives, tmp_path):
    """nnet-report on MPI experiments at 1, 2 and 4 ranks: each experiment's mixing and optimizer
    are read from its log, the 1-rank run joins every mixing of its optimizer, and the plot is
    drawn."""
    from nnetavg.experiment import read_experiment
    from nnetavg.plots import accuracy_by_ranks

    tmp = four_archives
    dirs = []
    for n, mixing in ((1, "allreduce"), (2, "allreduce"), (4, "allreduce"), (2, "bmuf"), (4, "bmuf")):
        d = tmp_path / f"{mixing}_n{n}"
        (d / "log").mkdir(parents=True)
        p = mpi(n, train_args(tmp, d / "final.nnet", f"--mixing={mixing}", "--num-epochs=2"))
        (d / "log" / "train_mpi.log").write_text(p.stderr)
        dirs.append(str(d))
    exps = [read_experiment(d) for d in dirs]
    assert [(e.num_jobs, e.mixing, e.optimizer) for e in exps] == [
        (1, "allreduce", "sgd"), (2, "allreduce", "sgd"), (4, "allreduce", "sgd"), (2, "bmuf", "sgd"), (4, "bmuf", "sgd")]
    groups = accuracy_by_ranks(exps)
    assert sorted(groups) == [("sgd", "allreduce"), ("sgd", "bmuf")]
    assert [n for n, _ in groups[("sgd", "bmuf")]] == [1, 2, 4]
    assert groups[("sgd", "bmuf")][0][1] == exps[0].final.cv_frame_accuracy
    assert groups[("sgd", "allreduce")][2][1] == exps[2].final.cv_frame_accuracy
    out = tmp_path / "report"
    run_cmd(["nnet-report", "--out", str(out), *dirs])
    png = (out / "accuracy_vs_ranks.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 10000
    assert "](accuracy_vs_ranks.png)" in (out / "summary.md").read_text()


def test_limit_follows_rate_anneals_the_ng_limit_and_is_reported(four_archives, tmp_path):
    """--limit-follows-rate: each epoch's max-change-per-sample is the configured one times the
    epoch's rate over the first epoch's; with a limit small enough to clip every update, each
    epoch reports ng-limited-fraction=1."""
    p = mpi(2, train_args(four_archives, tmp_path / "final.nnet", "--optimizer=ngsgd", "--limit-follows-rate=true",
                          "--max-change-per-sample=1e-6", "--scale-ng-limit-by-world-size=false"))
    limits = [float(v) for v in re.findall(r"rank 0/2 .*epoch \d: max-change-per-sample (\S+) \(follows the rate\)",
                                           p.stderr)]
    rates = [float(v) for v in re.findall(r"rank 0/2 .*epoch \d/3 learn-rate=(\S+)", p.stderr)]
    assert len(rates) == 3 and rates[2] < rates[1] < rates[0]
    assert limits == pytest.approx([1e-6 * r / rates[0] for r in rates], rel=1e-3)
    fractions = re.findall(r"rank 0/2 .*epoch \d/3 .*ng-limited-fraction=(\S+)", p.stderr)
    assert fractions == ["1", "1", "1"]
    # applied, not only reported: with every update clipped, the annealed limit moves the model
    # less than the constant one (a limit that is logged but not applied gives the same model)
    mpi(2, train_args(four_archives, tmp_path / "const.nnet", "--optimizer=ngsgd", "--limit-follows-rate=false",
                      "--max-change-per-sample=1e-6", "--scale-ng-limit-by-world-size=false"))
    p0 = read_nnet(str(four_archives / "0.nnet")).params
    moved = {k: np.linalg.norm(read_nnet(str(tmp_path / f"{k}.nnet")).params - p0) for k in ("final", "const")}
    assert moved["final"] < 0.8 * moved["const"], moved


def test_scale_limit_by_world_size_sqrt_multiplies_the_ng_limit(four_archives, tmp_path):
    """--scale-ng-limit-by-world-size=sqrt (the default): with the rate x ranks, the limit NG-SGD
    applies (here followed through --limit-follows-rate) is the configured one x sqrt(ranks); under
    BMUF, whose rate is not scaled, it is left alone; the old spelling still works."""
    def limits(n, *extra):
        p = mpi(n, train_args(four_archives, tmp_path / f"final{n}.nnet", "--optimizer=ngsgd", "--num-epochs=1",
                              "--final-learn-rate=0.01", "--limit-follows-rate=true", "--max-change-per-sample=1e-6",
                              *extra))
        return [float(v) for v in re.findall(rf"rank 0/{n} .*epoch 1: max-change-per-sample (\S+) \(follows",
                                             p.stderr)]
    assert limits(4) == pytest.approx([2e-6], rel=1e-3)
    assert limits(2, "--mixing=bmuf") == pytest.approx([1e-6], rel=1e-3)
    assert limits(4, "--scale-limit-by-world-size=false") == pytest.approx([1e-6], rel=1e-3)


def test_scale_limit_by_world_size_rejects_unknown_values():
    from nnetavg.errors import NnetavgError
    from nnetavg.parallel.mpi_training import MPIOptions, limit_scale
    assert limit_scale(MPIOptions(scale_ng_limit_by_world_size="sqrt"), 16) == 4.0
    assert limit_scale(MPIOptions(scale_ng_limit_by_world_size="true"), 16) == 16.0
    assert limit_scale(MPIOptions(), 16) == 4.0      # sqrt by default
    assert limit_scale(MPIOptions(scale_ng_limit_by_world_size="false"), 16) == 1.0
    with pytest.raises(NnetavgError, match="--scale-ng-limit-by-world-size must be"):
        limit_scale(MPIOptions(scale_ng_limit_by_world_size="half"), 16)
