#!/usr/bin/env bash
# Random initialisation against RBM pretraining, with 1 job and with N jobs averaged through
# files, for a deep sigmoid network on the synthetic corpus: the analog of Table 2 of Su, Chen &
# Xu 2015 (random init loses 0.9 WER on one GPU, and more at 32). Same data, CV speakers, epochs
# and learning-rate schedule for every row; the DBN is pretrained once (nnet1's settings).
#
#   local/compare_pretraining.sh               # writes exp/pretrain/results.md
set -euo pipefail
cd "$(dirname "$0")/.."

preset=default
many_jobs=8
num_iters=8
hidden_layers=6
hidden_dim=512
optimizer=sgd
dir=exp/pretrain
. ./cmd.sh
. ./path.sh
. steps/parse_options.sh

local/prepare_compare.sh $preset $dir 1 $many_jobs
num_pdfs=$(cat data/ali/num_pdfs)
start=$(date +%s)
steps/pretrain_dbn.sh --nn-depth $hidden_layers --hid-dim $hidden_dim $dir/egs_nj1 $dir/dbn
[ -f $dir/dbn/seconds ] || echo $(( $(date +%s) - start )) > $dir/dbn/seconds
[ -f $dir/random.nnet ] || nnet-init --input-dim $(cat $dir/egs_nj1/info/input_dim) --output-dim $num_pdfs \
  --hidden-layers $hidden_layers --hidden-dim $hidden_dim $dir/random.nnet 2>/dev/null
[ -f $dir/pretrained.nnet ] || nnet-init --dbn $dir/dbn/$hidden_layers.dbn --hidden-layers 0 \
  --output-dim $num_pdfs $dir/pretrained.nnet 2>/dev/null

for init in random pretrained; do
  for nj in 1 $many_jobs; do
    name=${init}_nj$nj
    cmd="$train_cmd"; [ $nj -eq 1 ] && cmd="$train_cmd --num-threads 2"
    start=$(date +%s)
    if [ ! -f $dir/$name/final.nnet ]; then
      steps/train_parallel.sh --cmd "$cmd" --num-iters $num_iters --optimizer $optimizer \
        $dir/egs_nj$nj $dir/$init.nnet $dir/$name > $dir/$name.log
      echo $(( $(date +%s) - start )) > $dir/$name/seconds
    fi
    echo "$name: $(tail -n 1 $dir/$name.log)"
  done
done

{
  echo "| initialisation | jobs | CV frame accuracy | CV cross-entropy | best CV accuracy of any iteration | wall s |"
  echo "|---|---|---|---|---|---|"
  for init in random pretrained; do
    for nj in 1 $many_jobs; do
      name=${init}_nj$nj
      figs=$(nnet-log-figures --last frame-accuracy,cross-entropy --max frame-accuracy \
               $(for i in $(seq 1 $num_iters); do echo $dir/$name/log/compute_prob_cv.$i.log; done) 2>/dev/null)
      echo "| $init | $nj | $figs | $(cat $dir/$name/seconds) |"
    done
  done
  echo
  echo "Pretraining ${hidden_layers} RBMs of $hidden_dim units took $(cat $dir/dbn/seconds) s."
} > $dir/results.md
cat $dir/results.md
