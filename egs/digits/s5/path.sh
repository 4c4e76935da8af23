# Puts nnetavg's commands and the recipe's local programs on PATH; works from a copy of the recipe
# directory too. nnetavg's top directory is, in this order: $NNETAVG_ROOT, three levels up (the
# recipe inside the repository), or where the nnetavg on PATH is installed from. A missing or
# broken steps/ link (a copied recipe) is pointed at that top directory's steps/.
top=""
for t in "${NNETAVG_ROOT:-}" "$(cd ../../.. 2>/dev/null && pwd)"; do
  if [ -n "$t" ] && [ -x "$t/.venv/bin/nnet-train-simple" ] && [ -d "$t/steps" ]; then top=$t; break; fi
done
if [ -n "$top" ]; then
  export PATH=$top/.venv/bin:$PATH
elif command -v nnet-train-simple >/dev/null; then
  top=$("$(dirname "$(command -v nnet-train-simple)")/python" -c \
    'import nnetavg, os; print(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(nnetavg.__file__)))))' 2>/dev/null || true)
else
  echo "path.sh: nnetavg's commands are not installed: run setup.sh in nnetavg's top directory, or set NNETAVG_ROOT" >&2
  return 1
fi
if [ ! -e steps/make_egs.sh ]; then
  if [ -n "$top" ] && [ -d "$top/steps" ]; then
    ln -sfn "$top/steps" steps
  else
    echo "path.sh: no steps/ here and nnetavg's top directory is unknown: set NNETAVG_ROOT" >&2
    return 1
  fi
fi
export PATH=$PWD/local:$PATH
export LC_ALL=C
