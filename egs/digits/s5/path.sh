# Puts nnetavg's commands (the project's .venv, made by ./setup.sh at the top) and the recipe's
# local programs on PATH. Paths are relative to the recipe directory.
top=$(cd ../../.. && pwd)
if [ -x "$top/.venv/bin/nnet-train-simple" ]; then
  export PATH=$top/.venv/bin:$PATH
elif ! command -v nnet-train-simple >/dev/null; then
  echo "path.sh: nnetavg's commands are not installed; run $top/setup.sh first" >&2
  return 1
fi
export PATH=$PWD/local:$PATH
export LC_ALL=C
