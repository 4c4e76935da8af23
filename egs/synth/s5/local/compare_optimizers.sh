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

./run.sh --preset $preset --stop-stage 1 >/dev/null
num_pdfs=$(cat data/ali/num_pdfs)
mkdir -p $dir
for nj in 1 $many_jobs; do
  [ -f $dir/egs_nj$nj/final.feature_transform ] || \
    steps/make_egs.sh --nj $nj --num-pdfs $num_pdfs data/train ark:data/ali/pdf.ark $dir/egs_nj$nj >/dev/null
done
input_dim=$(cat $dir/egs_nj1/info/input_dim)
[ -f $dir/0.nnet ] || nnet-init --input-dim $input_dim --output-dim $num_pdfs --hidden-layers $hidden_layers \
  --hidden-dim $hidden_dim $dir/0.nnet 2>/dev/null

runs=("sgd 1 reset" "ngsgd 1 reset" "sgd $many_jobs reset" "ngsgd $many_jobs reset" "ngsgd $many_jobs keep")
for r in "${runs[@]}"; do
  set -- $r; opt=$1; nj=$2; state=$3
  name=${opt}_nj${nj}$([ $opt = ngsgd ] && echo _$state || true)
  cmd="$train_cmd"; [ $nj -eq 1 ] && cmd="$train_cmd --num-threads 2"
  start=$(date +%s)
  [ -f $dir/$name/final.nnet ] || steps/train_parallel.sh --cmd "$cmd" --num-iters $num_iters \
    --optimizer $opt --ng-state $state --initial-learning-rate $initial_learning_rate \
    --final-learning-rate $final_learning_rate $dir/egs_nj$nj $dir/0.nnet $dir/$name > $dir/$name.log
  [ -f $dir/$name/seconds ] || echo $(( $(date +%s) - start )) > $dir/$name/seconds
  echo "$name: $(tail -n 1 $dir/$name.log)"
done

{
  echo "| optimizer | jobs | NG state | CV frame accuracy | CV cross-entropy | best CV accuracy of any iteration | wall s |"
  echo "|---|---|---|---|---|---|---|"
  for r in "${runs[@]}"; do
    set -- $r; opt=$1; nj=$2; state=$3
    name=${opt}_nj${nj}$([ $opt = ngsgd ] && echo _$state || true)
    figs=$(nnet-log-figures --last frame-accuracy,cross-entropy --max frame-accuracy \
             $(for i in $(seq 1 $num_iters); do echo $dir/$name/log/compute_prob_cv.$i.log; done) 2>/dev/null)
    echo "| $opt | $nj | $([ $opt = ngsgd ] && echo $state || echo -) | $figs | $(cat $dir/$name/seconds) |"
  done
} > $dir/results.md
cat $dir/results.md
