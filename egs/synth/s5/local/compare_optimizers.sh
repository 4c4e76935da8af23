#!/usr/bin/env bash
# SGD against natural-gradient SGD, with 1 job and with N jobs averaged through files, on the
# synthetic corpus (the analog of Table 6 of Su, Chen & Xu 2015, where SGD loses 1.4 WER absolute
# at 16 nodes and NG-SGD 0.4). Also natural gradient with the Fisher state reset (Kaldi) or kept
# across iterations. All runs use the same data, CV speakers, initial model, epochs and effective
# learning-rate schedule (per-job rate = effective rate x jobs).
#
#   local/compare_optimizers.sh                  # writes exp/compare/results.md
#   local/compare_optimizers.sh --many-jobs 16
set -euo pipefail
cd "$(dirname "$0")/.."

preset=default
many_jobs=8
num_iters=8
initial_learning_rate=0.008
final_learning_rate=0.0008
hidden_layers=3
hidden_dim=512
dir=exp/compare
. ./cmd.sh
. ./path.sh
. steps/parse_options.sh

local/prepare_compare.sh $preset $dir 1 $many_jobs
num_pdfs=$(cat data/ali/num_pdfs)
input_dim=$(cat $dir/egs_nj1/info/input_dim)
[ -f $dir/0.nnet ] || nnet-init --input-dim $input_dim --output-dim $num_pdfs --hidden-layers $hidden_layers \
  --hidden-dim $hidden_dim $dir/0.nnet 2>/dev/null

# optimizer, jobs, NG state, learning-rate factor (times both the initial and the final rate)
runs=("sgd 1 reset 1" "ngsgd 1 reset 1" "ngsgd 1 reset 0.5" "ngsgd 1 reset 0.25"
      "sgd $many_jobs reset 1" "ngsgd $many_jobs reset 1" "ngsgd $many_jobs keep 1")
run_name() {  # optimizer jobs state factor
  echo "${1}_nj${2}$([ $1 = ngsgd ] && echo _$3 || true)$([ $4 = 1 ] || echo _lr$4)"
}
for r in "${runs[@]}"; do
  set -- $r; opt=$1; nj=$2; state=$3; factor=$4
  name=$(run_name $r)
  lr0=$(python3 -c "print($initial_learning_rate * $factor)"); lr1=$(python3 -c "print($final_learning_rate * $factor)")
  cmd="$train_cmd"; [ $nj -eq 1 ] && cmd="$train_cmd --num-threads 2"
  start=$(date +%s)
  [ -f $dir/$name/final.nnet ] || steps/train_parallel.sh --cmd "$cmd" --num-iters $num_iters \
    --optimizer $opt --ng-state $state --initial-learning-rate $lr0 \
    --final-learning-rate $lr1 $dir/egs_nj$nj $dir/0.nnet $dir/$name > $dir/$name.log
  [ -f $dir/$name/seconds ] || echo $(( $(date +%s) - start )) > $dir/$name/seconds
  echo "$name: $(tail -n 1 $dir/$name.log)"
done

{
  echo "| optimizer | jobs | NG state | learning rate (effective) | CV frame accuracy | CV cross-entropy | best CV accuracy of any iteration | wall s |"
  echo "|---|---|---|---|---|---|---|---|"
  for r in "${runs[@]}"; do
    set -- $r; opt=$1; nj=$2; state=$3; factor=$4
    name=$(run_name $r)
    figs=$(nnet-log-figures --last frame-accuracy,cross-entropy --max frame-accuracy \
             $(for i in $(seq 1 $num_iters); do echo $dir/$name/log/compute_prob_cv.$i.log; done) 2>/dev/null)
    rates=$(python3 -c "print('%g -> %g' % ($initial_learning_rate * $factor, $final_learning_rate * $factor))")
    echo "| $opt | $nj | $([ $opt = ngsgd ] && echo $state || echo -) | $rates | $figs | $(cat $dir/$name/seconds) |"
  done
} > $dir/results.md
cat $dir/results.md
