#!/usr/bin/env bash
# MPI mixing patterns against the number of ranks, the averaging period and the minibatch size on
# the synthetic corpus: the analog of Table 1 of Su & Chen (004: all-reduce, butterfly and ring at
# 1-16 nodes) and of Tables 3-4 of Su, Chen & Xu 2015 (averaging every 10 vs 20 minibatches,
# minibatch 256 vs 1024). Ranks beyond the 2 cores are oversubscribed; the network is the
# recipe's. Same data, CV speakers, initial model, epochs and effective learning-rate schedule
# everywhere (rank rate = effective rate x ranks).
#
#   local/compare_mixing.sh                      # writes exp/mixing/results.md
set -euo pipefail
cd "$(dirname "$0")/.."

preset=default
ranks="1 2 4 8 16"
num_epochs=4
optimizer=sgd
initial_learning_rate=0.008
final_learning_rate=0.0008
hidden_layers=3
hidden_dim=512
dir=exp/mixing
. ./cmd.sh
. ./path.sh
. steps/parse_options.sh

local/prepare_compare.sh $preset $dir $ranks 8
num_pdfs=$(cat data/ali/num_pdfs)
[ -f $dir/0.nnet ] || nnet-init --input-dim $(cat $dir/egs_nj8/info/input_dim) --output-dim $num_pdfs \
  --hidden-layers $hidden_layers --hidden-dim $hidden_dim $dir/0.nnet 2>/dev/null

runs=()
for n in $ranks; do
  for m in allreduce butterfly ring; do
    [ $n -eq 1 ] && [ $m != allreduce ] && continue   # one rank: no mixing at all
    runs+=("$m $n 10 256")
  done
done
runs+=("allreduce 8 20 256" "allreduce 8 10 1024" "allreduce 8 20 1024")

for r in "${runs[@]}"; do
  set -- $r; m=$1; n=$2; k=$3; mb=$4
  name=${m}_n${n}_k${k}_mb${mb}
  start=$(date +%s)
  if [ ! -f $dir/$name/final.nnet ]; then
    steps/train_mpi.sh --mpi-cmd "$mpi_cmd" --num-epochs $num_epochs --mixing $m --average-every $k \
      --minibatch-size $mb --optimizer $optimizer --initial-learning-rate $initial_learning_rate \
      --final-learning-rate $final_learning_rate --max-change 0 --max-param-change 0 \
      $dir/egs_nj$n $dir/0.nnet $dir/$name > $dir/$name.out
    echo $(( $(date +%s) - start )) > $dir/$name/seconds
  fi
  echo "$name: cv-frame-accuracy=$(nnet-log-figures --grep epoch --rank 0 --last cv-frame-accuracy \
    $dir/$name/log/train_mpi.log 2>/dev/null)"
done

{
  echo "| mixing | ranks | K | minibatch | CV frame accuracy | CV cross-entropy | mixing share of wall time | wall s |"
  echo "|---|---|---|---|---|---|---|---|"
  for r in "${runs[@]}"; do
    set -- $r; name=$1_n$2_k$3_mb$4
    figs=$(nnet-log-figures --grep epoch --rank 0 --last cv-frame-accuracy,cv-cross-entropy \
             --ratio mix-seconds/seconds $dir/$name/log/train_mpi.log 2>/dev/null)
    echo "| $1 | $2 | $3 | $4 | $figs | $(cat $dir/$name/seconds) |"
  done
} > $dir/results.md
cat $dir/results.md
