#!/usr/bin/env bash
# Mutation testing (mutmut 3) of the modules where a wrong sign or constant silently costs
# accuracy, each with the fast tests that cover it; writes the score and the surviving mutants.
#   ./setup.sh mutation && local/mutation_test.sh [--out REPORT.md] [--workdir DIR] [MODULE ...]
# MODULE is a path under lib/nnetavg (e.g. train/combine.py), optionally with :NAME[,NAME...] to
# score only the mutants of functions or classes whose name contains a NAME
# (train/trainer.py:ChangeLimiter, the limiter); default: the list below.
# Survivors listed in local/mutation_equivalent.txt ("NAME  reason", one per line) are reported as
# equivalent (the same program: a default argument spelt out, float("NAN")) and left out of the score.
# Each module is mutated in a scratch copy of the committed tree (git archive HEAD), with lib/
# renamed src/ (mutmut names modules after their path and strips only "src."), the copy's
# mutants/src first on PYTHONPATH (created before mutmut starts: Python caches a missing path
# entry as empty). Tests run in-process; mutants reached only from subprocesses (the commands,
# MPI ranks) show as "no tests".
set -euo pipefail
top=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
out=$top/local/mutation_report.md
work=""
while [ $# -gt 0 ]; do
  case $1 in
    --out) out=$2; shift 2 ;;
    --workdir) work=$2; shift 2 ;;
    -*) echo "usage: $0 [--out REPORT.md] [--workdir DIR] [MODULE ...]" >&2; exit 1 ;;
    *) break ;;
  esac
done
declare -A tests=(
  [train/optim.py]="tests/train/test_trainer.py tests/train/test_natural_gradient.py tests/train/test_optim_exact.py tests/nnet/test_backward_free_inputs.py"
  [train/natural_gradient.py]="tests/train/test_natural_gradient.py tests/train/test_natural_gradient_exact.py tests/train/test_optim_exact.py tests/nnet/test_backward_free_inputs.py"
  [train/combine.py]="tests/train/test_combine.py"
  [train/schedules.py]="tests/train/test_schedules.py tests/train/test_trainer.py"
  [train/trainer.py]="tests/train/test_trainer.py"
  [parallel/bmuf.py]="tests/parallel/test_averaging.py"
  [parallel/averaging.py]="tests/parallel/test_averaging.py"
  [parallel/server.py]="tests/parallel/test_asgd.py"
  [rbm.py]="tests/test_rbm.py"
)
modules=("$@")
[ ${#modules[@]} -gt 0 ] || modules=(train/schedules.py train/combine.py train/optim.py train/natural_gradient.py
                                     train/trainer.py:ChangeLimiter parallel/bmuf.py parallel/averaging.py
                                     parallel/server.py:GradientCollector,adagrad_step,ServerUpdate rbm.py:RbmTrainer)
mutmut=$top/.venv/bin/mutmut
equivalents=$top/local/mutation_equivalent.txt
[ -x "$mutmut" ] || { echo "$0: mutmut is not installed: ./setup.sh mutation" >&2; exit 1; }
[ -n "$work" ] || work=$(mktemp -d)
mkdir -p "$work"
{
  echo "# Mutation testing (mutmut $("$mutmut" --version | awk '{print $NF}'), $(date +%Y-%m-%d), commit $(git -C "$top" rev-parse --short HEAD))"
  echo
  echo "Score = killed / (mutants - no tests - equivalent). Command: \`local/mutation_test.sh ${*:-}\`"
  echo
  echo "| module | tests | mutants | killed | survived | equivalent | no tests | timeout | score |"
  echo "|---|---|---|---|---|---|---|---|---|"
} > "$out.tmp"
survivors=""
for spec in "${modules[@]}"; do
  m=${spec%%:*}; only=""
  [ "$m" = "$spec" ] || only=${spec#*:}
  t=${tests[$m]:-}
  [ -n "$t" ] || { echo "$0: no tests listed for $m" >&2; exit 1; }
  d=$work/$(echo "$spec" | tr /: __)
  rm -rf "$d" && mkdir -p "$d"
  git -C "$top" archive HEAD | tar -x -C "$d"
  mv "$d/lib" "$d/src"
  ln -s "$top/.venv" "$d/.venv"
  {
    echo; echo "[mutmut]"
    echo "source_paths = src/nnetavg/$m"
    echo "also_copy = src/"
    echo "pytest_add_cli_args_test_selection ="
    for f in $t; do echo "    $f"; done
  } >> "$d/setup.cfg"
  mkdir -p "$d/mutants/src"
  (cd "$d" && PYTHONPATH=$d/mutants/src "$mutmut" run > "$d/mutmut.log" 2>&1) || true
  (cd "$d" && PYTHONPATH=$d/mutants/src "$mutmut" results --all true 2>/dev/null | grep -F -e "${only//,/$'\n'}" > "$d/results.txt") || true
  count() { grep -c ": $1\$" "$d/results.txt" || true; }
  total=$(grep -c "__mutmut_" "$d/results.txt" || true)
  killed=$(count killed); notests=$(count "no tests"); timeout=$(count timeout)
  survived=0; equivalent=0; live=""; equiv=""
  while read -r name; do
    reason=$(awk -v n="$name" '$1 == n { $1 = ""; sub(/^ +/, ""); print; exit }' "$equivalents")
    if [ -n "$reason" ]; then
      equivalent=$((equivalent + 1)); equiv+="* \`$name\`: $reason"$'\n'
    else
      survived=$((survived + 1)); live+="* \`$name\`"$'\n'
    fi
  done < <(grep ": survived$" "$d/results.txt" | sed 's/^ *//; s/: survived$//')
  score=$(awk -v k="$killed" -v n="$total" -v z="$notests" -v e="$equivalent" \
    'BEGIN { d = n - z - e; printf "%.1f%%", (d > 0 ? 100 * k / d : 0) }')
  echo "| $spec | $t | $total | $killed | $survived | $equivalent | $notests | $timeout | $score |" >> "$out.tmp"
  survivors+=$'\n'"### $spec: survived"$'\n\n'"${live:-none}"$'\n'
  [ -z "$equiv" ] || survivors+=$'\n'"### $spec: equivalent"$'\n\n'"$equiv"
  echo "$0: $spec: $killed killed, $survived survived, $notests without tests, of $total ($score)"
done
printf '%s\n' "$survivors" >> "$out.tmp"
mv "$out.tmp" "$out"
echo "$0: report: $out"
