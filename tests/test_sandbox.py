"""The suite's sandbox rule: a test signals or reads only processes it started (pids from its own
launches, their descendants via ``tests.conftest.descendant_pids``, or SLURM's list of its own job),
never processes found by a machine-wide pattern. Checked by reading the tests' source: no
``pgrep`` but ``pgrep -P`` (children of a given process), no ``pkill`` or
``killall``, no read of ``/proc/<pid>/environ`` or ``cmdline`` of a pid a machine-wide search
found."""

import os
import re

from tests.conftest import REPO

TESTS = os.path.join(REPO, "tests")
FORBIDDEN = [
    (re.compile(r"\b(pkill|killall)\b"), "kills by name, machine-wide"),
    (re.compile(r"[\"']pgrep[\"'](?!, [\"']-P[\"'])"), "pgrep other than -P PARENT: a machine-wide match"),
]


def violations(source: str, name: str) -> list[str]:
    found = []
    for lineno, line in enumerate(source.splitlines(), 1):
        code = line.split("#", 1)[0]
        for pattern, why in FORBIDDEN:
            if pattern.search(code):
                found.append(f"{name}:{lineno}: {why}: {line.strip()}")
    return found


def test_no_test_reaches_processes_it_did_not_start():
    found = []
    for root, _, files in os.walk(TESTS):
        for f in files:
            if f.endswith(".py") and f != "test_sandbox.py":
                path = os.path.join(root, f)
                found += violations(open(path, encoding="utf-8").read(), os.path.relpath(path, REPO))
    assert not found, "\n".join(found)


def test_the_rule_flags_machine_wide_matches():
    planted = ('pids = subprocess.run(["pgrep", "-f", "nnet-train-simple"], capture_output=True)\n'
               'subprocess.run(["pkill", "-f", "slurmd"])\n'
               'ok = subprocess.run(["pgrep", "-P", str(pid)])  # children of a process we started\n')
    found = violations(planted, "planted.py")
    assert [v.split(":")[1] for v in found] == ["1", "2"], found
