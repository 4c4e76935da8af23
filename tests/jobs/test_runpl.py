"""run.pl: JOB substitution, Kaldi's log format, failure reporting, concurrency limit, quoting."""

import os

from tests.conftest import run_cmd


def test_array_job_logs_and_substitution(tmp_path):
    run_cmd(["run.pl", "JOB=1:3", f"{tmp_path}/log/t.JOB.log", "echo", "task", "JOB", "out", ">", f"{tmp_path}/o.JOB"])
    for j in (1, 2, 3):
        log = (tmp_path / f"log/t.{j}.log").read_text()
        assert log.startswith(f"# echo task {j} out > {tmp_path}/o.{j} \n# Started at ")
        assert "# Accounting: time=" in log and "# Ended (code 0) at " in log
        assert (tmp_path / f"o.{j}").read_text() == f"task {j} out\n"


def test_failure_names_the_job_and_log(tmp_path):
    p = run_cmd(["run.pl", "JOB=1:4", f"{tmp_path}/f.JOB.log", "test", "JOB", "-ne", "3"], check=False)
    assert p.returncode == 1
    assert "1 / 4 failed" in p.stdout and "JOB=3 (code 1" in p.stdout and f"{tmp_path}/f.3.log" in p.stdout
    assert "# Ended (code 1)" in (tmp_path / "f.3.log").read_text()
    single = run_cmd(["run.pl", f"{tmp_path}/s.log", "exit", "7"], check=False)
    assert single.returncode == 1 and "status 7" in single.stdout


def test_usage_errors(tmp_path):
    assert run_cmd(["run.pl", "JOB=1:2", f"{tmp_path}/nolog.log", "true"], check=False).returncode == 1
    assert run_cmd(["run.pl", "--bogus", "1", f"{tmp_path}/x.log", "true"], check=False).returncode == 1


def test_pipes_quotes_and_threads(tmp_path):
    run_cmd(["run.pl", "--num-threads", "3", f"{tmp_path}/p.log", "echo", "a b", "|", "tr", "a", "x", ">",
             f"{tmp_path}/out"])
    assert (tmp_path / "out").read_text() == "x b\n"
    run_cmd(["run.pl", "--num-threads", "1", f"{tmp_path}/t.log", "echo", "$OPENBLAS_NUM_THREADS", ">",
             f"{tmp_path}/threads"])
    assert (tmp_path / "threads").read_text() == "1\n"


def test_threads_default_shares_the_cpus_among_the_running_tasks(tmp_path):
    """Without --num-threads: a task alone gets every CPU; an array gets the CPUs divided by the
    tasks that run at once (at least 1 each)."""
    cpus = os.cpu_count() or 1
    run_cmd(["run.pl", f"{tmp_path}/one.log", "echo", "$OPENBLAS_NUM_THREADS", ">", f"{tmp_path}/one"])
    assert (tmp_path / "one").read_text() == f"{cpus}\n"
    assert f"threads={cpus}" in (tmp_path / "one.log").read_text()
    run_cmd(["run.pl", "JOB=1:4", f"{tmp_path}/a.JOB.log", "echo", "$OMP_NUM_THREADS", ">", f"{tmp_path}/a.JOB"])
    assert {(tmp_path / f"a.{j}").read_text() for j in range(1, 5)} == {f"{max(1, cpus // min(4, cpus))}\n"}
    run_cmd(["run.pl", "--max-jobs-run", "1", "JOB=1:3", f"{tmp_path}/b.JOB.log", "echo", "$MKL_NUM_THREADS", ">",
             f"{tmp_path}/b.JOB"])
    assert {(tmp_path / f"b.{j}").read_text() for j in range(1, 4)} == {f"{cpus}\n"}


def test_max_jobs_run_limits_concurrency(tmp_path):
    """Events, not wall clocks: with --max-jobs-run 1 each job sees itself alone among the running
    markers; with 3, all three jobs wait at a barrier (3 markers present), which they could not
    pass were they run one at a time (a job gives up after 30 s and fails)."""
    d = tmp_path / "m"
    d.mkdir()
    alone, barrier = tmp_path / "alone.sh", tmp_path / "barrier.sh"
    alone.write_text(f"touch {d}/run.$1; ls {d} | grep -c run > {d}/seen.$1; sleep 0.1; rm {d}/run.$1\n")
    barrier.write_text(f"touch {d}/$2.$1; i=0\nwhile [ $(ls {d} | grep -c $2) -lt 3 ]; do\n  sleep 0.05; i=$((i + 1))\n"
                       f"  [ $i -lt $3 ] || exit 1\ndone\n")
    run_cmd(["run.pl", "--max-jobs-run", "1", "JOB=1:3", f"{tmp_path}/l.JOB.log", "sh", str(alone), "JOB"])
    assert [(d / f"seen.{j}").read_text() for j in (1, 2, 3)] == ["1\n"] * 3
    p = run_cmd(["run.pl", "--max-jobs-run", "3", "JOB=1:3", f"{tmp_path}/m.JOB.log", "sh", str(barrier), "JOB", "go",
                 "600"], check=False)
    assert p.returncode == 0, p.stdout + p.stderr
    p = run_cmd(["run.pl", "--max-jobs-run", "2", "JOB=1:3", f"{tmp_path}/n.JOB.log", "sh", str(barrier), "JOB", "no",
                 "20"], check=False)
    assert p.returncode == 1 and "failed" in p.stdout   # two at a time never reach three
