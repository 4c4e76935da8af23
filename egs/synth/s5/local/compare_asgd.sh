#!/usr/bin/env bash
# One pass of asynchronous averaged SGD with a parameter server against multi-pass asynchronous
# SGD, learning-rate schedules and chunk sizes (analogs of Tables 1-3 and Figure 2 of You & Xu, 003).
# 4 workers (the recipe's 4 archives) + 1 server, the recipe's 440-3x512-48 DNN.
#
#   local/compare_asgd.sh                 # writes exp/asgd_compare/results.md
set -euo pipefail
cd "$(dirname "$0")/.."

preset=default
passes=4                  # multi-pass asynchronous SGD: passes, the rate halved after each
learning_rate=0.008
dir=exp/asgd_compare
. ./cmd.sh
. ./path.sh
. steps/parse_options.sh

./run.sh --preset $preset --stop-stage 2 >/dev/null
mkdir -p $dir
[ -f $dir/0.nnet ] || nnet-init --input-dim $(cat egs/info/input_dim) --output-dim $(cat data/ali/num_pdfs) \
  --hidden-layers 3 --hidden-dim 512 $dir/0.nnet 2>/dev/null

one_pass() {  # name, then options of steps/train_asgd.sh
  local name=$1; shift
  local start=$(date +%s)
  if [ ! -f $dir/$name/final.nnet ]; then
    steps/train_asgd.sh --mpi-cmd "$mpi_cmd" --learning-rate $learning_rate "$@" egs $dir/0.nnet $dir/$name \
      > $dir/$name.log
    echo $(( $(date +%s) - start )) > $dir/$name/seconds
  fi
  echo "$name: $(grep 'final CV' $dir/$name.log)"
}
one_pass hand --lr-schedule minibatch-decay --lr-decay 0.999
one_pass adapt --lr-schedule adagrad
for c in 0.02h 0.05h 0.1h 0.25h; do
  one_pass search_$c --lr-schedule search --chunk-size $c
done

# multi-pass asynchronous SGD: constant rate within a pass, halved after each, no averaging
model=$dir/0.nnet; lr=$learning_rate; total=0
for ((p = 1; p <= passes; p++)); do
  name=multipass_$p
  start=$(date +%s)
  if [ ! -f $dir/$name/final.nnet ]; then
    steps/train_asgd.sh --mpi-cmd "$mpi_cmd" --learning-rate $lr --lr-schedule constant --averaged-sgd false \
      --cv-check-every 0 egs $model $dir/$name > $dir/$name.log
    echo $(( $(date +%s) - start )) > $dir/$name/seconds
  fi
  total=$((total + $(cat $dir/$name/seconds)))
  echo $total > $dir/$name/cumulative_seconds
  echo "$name (lr $lr): $(grep 'final CV' $dir/$name.log)"
  model=$dir/$name/final.nnet
  lr=$(python3 -c "print($lr * 0.5)")
done

{
  echo "| training | passes | CV frame accuracy | CV cross-entropy | wall s |"
  echo "|---|---|---|---|---|"
  for name in hand adapt search_0.02h search_0.05h search_0.1h search_0.25h; do
    figs=$(nnet-log-figures --grep "final CV" --last frame-accuracy,cross-entropy $dir/$name.log 2>/dev/null)
    echo "| one-pass ASGD, $name | 1 | $figs | $(cat $dir/$name/seconds) |"
  done
  for ((p = 1; p <= passes; p++)); do
    figs=$(nnet-log-figures --grep "final CV" --last frame-accuracy,cross-entropy $dir/multipass_$p.log 2>/dev/null)
    echo "| multi-pass asynchronous SGD | $p | $figs | $(cat $dir/multipass_$p/cumulative_seconds) |"
  done
} > $dir/results.md
cat $dir/results.md
