"""nnetavg installed from a wheel (not editable) works: the wheel holds every package of lib/nnetavg
and the commands, and every console script runs its --help from a fresh environment whose nnetavg
is the wheel's (the dependencies come from the test environment, added by a .pth file)."""

import configparser
import glob
import os
import site
import subprocess
import sys
import zipfile

import shutil

import pytest

from tests.conftest import REPO


@pytest.mark.slow
def test_wheel_install_runs_every_command(tmp_path):
    # a clean copy of what the wheel is built from: a build/ dir left in the checkout would supply
    # stale packages and hide one missing from setup.cfg
    src = tmp_path / "src"
    for name in ("setup.cfg", "pyproject.toml", "README.md"):
        shutil.copy(os.path.join(REPO, name), src / name if src.exists() else (src.mkdir() or src / name))
    for name in ("lib", "bin"):
        shutil.copytree(os.path.join(REPO, name), src / name, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    build = subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(tmp_path / "dist"), str(src)],
                           capture_output=True, text=True, timeout=600)
    if build.returncode != 0 and "Could not find a version that satisfies" in build.stderr:
        pytest.skip("no package index to build the wheel with (setuptools, wheel)")
    assert build.returncode == 0, build.stderr[-2000:]
    wheel = glob.glob(str(tmp_path / "dist" / "nnetavg-*.whl"))[0]
    packaged = {os.path.dirname(n) for n in zipfile.ZipFile(wheel).namelist() if n.endswith("/__init__.py")}
    lib = os.path.join(REPO, "lib")
    expected = {os.path.relpath(d, lib) for d, _, files in os.walk(os.path.join(lib, "nnetavg"))
                if any(f.endswith(".py") for f in files) and "__pycache__" not in d}
    assert expected | {"nnetavg/bin"} <= packaged, sorted((expected | {"nnetavg/bin"}) - packaged)

    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    py = str(venv / "bin" / "python")
    target = subprocess.run([py, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                            capture_output=True, text=True, check=True).stdout.strip()
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", target, wheel], check=True,
                   capture_output=True)
    # the dependencies, not nnetavg: the test environment's site-packages as a plain path (its
    # editable-install hook is a .pth file there, which a path added this way does not run)
    with open(os.path.join(target, "zz_deps.pth"), "w") as f:
        f.write("\n".join(site.getsitepackages()) + "\n")
    where = subprocess.run([py, "-c", "import nnetavg, nnetavg.asr.models, nnetavg.bin.gmm_train; print(nnetavg.__file__)"],
                           capture_output=True, text=True)
    assert where.returncode == 0 and where.stdout.startswith(target), where.stdout + where.stderr

    cfg = configparser.ConfigParser()
    cfg.read(os.path.join(REPO, "setup.cfg"))
    scripts = [line.split("=", 1) for line in cfg["options.entry_points"]["console_scripts"].strip().splitlines()]
    assert len(scripts) > 50
    failed = []
    for name, target_fn in scripts:
        module, fn = target_fn.strip().split(":")
        p = subprocess.run([py, "-c", f"import sys; sys.argv = ['{name.strip()}', '--help']; "
                                      f"from {module} import {fn}; {fn}()"],
                           capture_output=True, text=True, timeout=120)
        text = p.stdout + p.stderr
        if p.returncode != 0 or "sage" not in text:
            failed.append(f"{name.strip()}: exit {p.returncode}: {text.strip().splitlines()[-1:] }")
    assert not failed, failed
