#!/usr/bin/env bash
# The GPU checks in one command, for a machine with an NVIDIA GPU (about 5 minutes):
#   ./setup.sh gpu && bench/gpu_check.sh [--budget-seconds 480]
# 1. every CuPy test (the xp fixture's cupy cases and the tests that need a GPU);
# 2. the training step on the GPU against the cuBLAS GEMM bound (bench/train_step.py --use-gpu yes);
# 3. 2 MPI ranks mixing GPU buffers (nnet-train-mpi --use-gpu yes, all-reduce every 5 minibatches);
# 4. the tiny synthetic recipe with --use-gpu yes, end to end.
# Prints one table (check, status, seconds, figure) and exits 0 only when every check passed.
# Without a usable GPU it says so and exits 2, touching nothing.
set -uo pipefail
top=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
py=$top/.venv/bin/python
budget=480
keep=
gpu=yes
dims=440-6x2048-8806
while [ $# -gt 0 ]; do
  case $1 in
    --budget-seconds) budget=$2; shift 2 ;;
    --keep) keep=$2; shift 2 ;;   # copy every check's log (and the step table) into this folder
    --cpu) gpu=no; dims=440-2x256-48; shift ;;   # the same checks on the CPU: tests the script itself
    *) echo "usage: $0 [--budget-seconds S] [--keep DIR] [--cpu]" >&2; exit 1 ;;
  esac
done
cd "$top" || exit 1
export top py gpu out
if [ $gpu = yes ] && ! "$py" -c 'import cupy, sys; sys.exit(0 if cupy.is_available() else 1); cupy.zeros(1)' 2>/dev/null; then
  echo "bench/gpu_check.sh: no usable GPU here (CuPy missing or no CUDA device): nothing to check. On a GPU machine: ./setup.sh gpu && bench/gpu_check.sh"
  exit 2
fi
out=$(mktemp -d)
export out
trap '[ -n "$keep" ] && mkdir -p "$keep" && cp "$out"/*.log "$out"/*.md "$keep"/ 2>/dev/null; rm -rf "$out"' EXIT
start=$SECONDS
rows=()
fail=0

check() {   # name, figure command (optional), command...
  local name=$1 figure=$2; shift 2
  local t0=$SECONDS left=$((budget - (SECONDS - start)))
  if [ $left -le 10 ]; then rows+=("| $name | skipped (time budget) | 0 | |"); fail=1; return; fi
  if [ "$(type -t "$1")" = function ]; then set -- bash -c "$(declare -f "$1"); $1"; fi
  if timeout "$left" "$@" > "$out/$name.log" 2>&1; then status=ok; else status="FAILED (see below)"; fail=1; fi
  local fig=""; [ -n "$figure" ] && fig=$(eval "$figure" 2>/dev/null | tr '\n' ' ')
  rows+=("| $name | $status | $((SECONDS - t0)) | $fig |")
  [ "$status" = ok ] || { echo "== $name failed; last lines:"; tail -20 "$out/$name.log"; }
}

check cupy-tests "grep -Eo '[0-9]+ passed|[0-9]+ failed|[0-9]+ skipped' $out/cupy-tests.log | tr '\n' ' '" \
  "$py" -m pytest -q -k "cupy or gpu or GPU" tests
check step-vs-cublas "grep -E '^\| (256|1024) ' $out/step-vs-cublas.log | awk -F'|' '{printf \"mb %s: %s fr/s, %s of GEMM bound; \", \$2, \$3, \$6}'" \
  "$py" bench/train_step.py --use-gpu $gpu --dims $dims --steps 5 --no-torch --out "$out/ts.md"
mpi_run() {   # 2 ranks, each on its own tiny archive, mixing GPU buffers every 5 minibatches
  local d=$out/mpi
  mkdir -p "$d" && PYTHONPATH=$top "$py" -c "
import pathlib; from tests.conftest import make_labelled_data
for j in (1, 2): make_labelled_data(pathlib.Path('$d'), num_utts=40, seed=j, name=str(j))" &&
  PATH=$top/.venv/bin:$PATH nnet-init --input-dim=6 --output-dim=5 --hidden-layers=2 --hidden-dim=64 "$d/0.nnet" &&
  PATH=$top/.venv/bin:$PATH "$top/.venv/bin/mpiexec" -n 2 "$top/.venv/bin/nnet-train-mpi" --use-gpu=$gpu \
    --average-every=5 --num-epochs=2 --minibatch-size=32 --cv-feats="scp:$d/1/feats.scp" --cv-ali="ark:$d/1/ali.ark" \
    "$d/0.nnet" "scp:$d/JOB/feats.scp" "ark:$d/JOB/ali.ark" "$d/final.nnet"
}
check mpi-gpu-mixing "grep -o 'epoch 2/2.*cv-frame-accuracy=[0-9.]*' $out/mpi-gpu-mixing.log | tail -1 | grep -o 'cv-frame-accuracy=.*'" \
  mpi_run
check synth-recipe-gpu "grep -h -o 'frame-accuracy=[0-9.]*' $out/recipe/exp/dnn/final_cv 2>/dev/null | head -1" \
  bash -c "cd egs/synth/s5 && ./run.sh --preset tiny --use-gpu $gpu --data $out/recipe/data --egs $out/recipe/egs --exp $out/recipe/exp"

echo
echo "| check | status | seconds | figure |"
echo "|---|---|---|---|"
printf '%s\n' "${rows[@]}"
echo
echo "total $((SECONDS - start)) s (budget $budget s)"
exit $fail
