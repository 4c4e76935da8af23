#!/usr/bin/env bash
# Sets up nnetavg in a virtual environment at ./.venv (numpy, kaldiio, click, mpi4py with the
# MPICH wheel, and the test tools). Needs only python3 (3.10+) and access to PyPI. Idempotent:
# a second run re-installs only when setup.cfg changed.
#   ./setup.sh            # library + commands + test tools
#   ./setup.sh gpu        # also CuPy (CUDA 12 wheel)
#   ./setup.sh bench      # also PyTorch 2.13 (CPU), only for the comparison in bench/suite.py
#   ./setup.sh mutation   # also mutmut, for local/mutation_test.sh (not in CI's path)
set -euo pipefail
top=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
venv=$top/.venv
python=${PYTHON:-python3}
extras=test
[ "${1:-}" = gpu ] && extras=test,gpu
[ "${1:-}" = bench ] && extras=test,bench
[ "${1:-}" = mutation ] && extras=test,mutation

if [ ! -x "$venv/bin/python" ]; then
  "$python" -c 'import sys; assert sys.version_info >= (3, 10), "nnetavg needs Python 3.10 or newer"'
  "$python" -m venv "$venv"
fi
stamp=$venv/.nnetavg-installed-$extras
if [ ! -f "$stamp" ] || [ "$top/setup.cfg" -nt "$stamp" ] || [ "$top/pyproject.toml" -nt "$stamp" ]; then
  "$venv/bin/python" -m pip install -q --upgrade pip >/dev/null 2>&1 || true
  "$venv/bin/python" -m pip install -q -e "$top[$extras]"
  touch "$stamp"
fi
# Bytecode of the sources (only what changed is compiled again): every command then starts without
# compiling ours, about 50 ms less per process, which a recipe starts ~60 of; Python reads .pyc
# files even under PYTHONDONTWRITEBYTECODE=1, when it would otherwise compile them every time.
"$venv/bin/python" -m compileall -q "$top/lib" "$top/bin" >/dev/null || true
