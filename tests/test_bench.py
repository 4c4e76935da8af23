"""The benchmark scripts run (at toy sizes: the figures themselves live in bench/RESULTS.md, not in
tests) and write the JSON the suite reads."""

import json
import os
import sys

import pytest

from tests.conftest import BIN_DIR, REPO, run_cmd

BENCH = os.path.join(REPO, "bench")


@pytest.mark.slow
def test_bench_scripts_run_at_toy_size(tmp_path):
    py = sys.executable
    run_cmd([py, f"{BENCH}/train_step.py", "--dims", "40-2x64-10", "--minibatch", "64", "--steps", "1", "--no-torch",
             "--out", f"{tmp_path}/ts.md", "--json", f"{tmp_path}/ts.json"])
    ts = json.load(open(tmp_path / "ts.json"))
    row = ts["rows"][0]
    assert row["minibatch"] == 64 and row["sgd_fps"] > 0 and row["gemm_fps"] > 0 and row["gemm_fraction"] > 0
    assert "| 64 |" in (tmp_path / "ts.md").read_text()
    run_cmd([py, f"{BENCH}/data_pipeline.py", "--utts", "10", "--frames", "50", "--num-pdfs", "10", "--repeats", "1",
             "--json", f"{tmp_path}/data.json", "--workdir", str(tmp_path)])
    data = json.load(open(tmp_path / "data.json"))
    assert data["frames"] == 10 * 50 // 256 * 256 and data["frames_per_sec"] > 0
    run_cmd([py, f"{BENCH}/memory.py", "--dims", "40-2x64-10", "--minibatch", "64", "--optimizer", "ngsgd",
             "--json", f"{tmp_path}/mem.json"])
    mem = json.load(open(tmp_path / "mem.json"))
    assert mem["param_mib"] > 0 and mem["peak_mib"] >= mem["baseline_mib"]
    out = run_cmd([py, f"{BENCH}/ng_configs.py", "--dims", "40-2x64-10", "--minibatch", "64", "--blocks", "1",
                   "--configs", "4,8,8", "--floor"]).stdout
    assert "| 64 | 4, 8: H = X W^T and X -= H W only |" in out and "| 64 | 4, 8, 8, - |" in out
    ng = json.loads(run_cmd([py, f"{BENCH}/contender.py", "--kind", "ours-ngsgd", "--dims", "40-2x64-10",
                             "--minibatch", "64", "--steps", "3"]).stdout.splitlines()[-1])
    # NG-SGD's figure spans whole update periods (the Fisher update every 16th step is in it)
    assert len(ng["step_s"]) == 16 and ng["median_s"] == pytest.approx(sum(ng["step_s"]) / 16)
    mpiexec = os.path.join(BIN_DIR, "mpiexec")
    if os.path.exists(mpiexec):
        run_cmd([mpiexec, "-n", "2", py, f"{BENCH}/mpi_mixing.py", "--dims", "40-2x64-10", "--minibatch", "64",
                 "--repeats", "1", "--out", f"{tmp_path}/mpi.md", "--json", f"{tmp_path}/mpi.json"],
                env=dict(os.environ, OPENBLAS_NUM_THREADS="1"))
        mix = json.load(open(tmp_path / "mpi.json"))
        assert mix["ranks"] == 2 and 0 <= mix["mix_fraction"]["10"]["allreduce"] < 1


@pytest.mark.slow
def test_fair_step_runs_each_contender_in_its_own_process(tmp_path):
    py = sys.executable
    run_cmd([py, f"{BENCH}/fair_step.py", "--dims", "40-2x64-10", "--minibatch", "64", "--rounds", "2", "--steps", "2",
             "--kinds", "ours-sgd", "ours-ngsgd", "gemm", "ours-sgd-matmul", "ours-sgd-malloc", "--out", f"{tmp_path}/fs.md",
             "--json", f"{tmp_path}/fs.json"])
    (row,) = json.load(open(tmp_path / "fs.json"))["rows"]
    assert row["minibatch"] == 64 and all(len(row["times_s"][k]) == 2 for k in ("ours-sgd", "ours-ngsgd", "gemm"))
    assert row["sgd_fps"] > 0 and row["gemm_fraction"] > 0 and row["vs_matmul_updates"] > 0 and row["vs_malloc_defaults"] > 0
    parts = row["breakdown_s"]
    assert abs(sum(v for k, v in parts.items() if k != "total") - parts["total"]) < 1e-9
    assert parts["forward GEMMs"] > 0 and parts["updates (gradient GEMMs + apply)"] > 0
    assert "| 64 |" in (tmp_path / "fs.md").read_text()


def test_gpu_check_reports_a_missing_gpu_and_exits_non_zero():
    """bench/gpu_check.sh on a machine without a usable GPU: one line saying so, exit 2, no table."""
    from tests.conftest import _cupy_or_reason
    if _cupy_or_reason()[0] is not None:
        pytest.skip("a GPU is usable here: the check would run for real")
    p = run_cmd(["bash", f"{BENCH}/gpu_check.sh"], check=False)
    assert p.returncode == 2 and "no usable GPU here" in p.stdout and "| check |" not in p.stdout, p.stdout + p.stderr
