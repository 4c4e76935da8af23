#!/usr/bin/env bash
# Newbob against exponential decay of the learning rate (analog of Table 5 of Su, Chen & Xu 2015),
# with file averaging over 4 jobs, on the synthetic corpus. Newbob starts at the exponential
# schedule's initial rate and may use up to as many iterations.
#
#   local/compare_schedules.sh                # writes exp/schedules/results.md
set -euo pipefail
cd "$(dirname "$0")/.."

preset=default
nj=4
num_iters=8
optimizer=sgd
dir=exp/schedules
. ./cmd.sh
. ./path.sh
. steps/parse_options.sh

./run.sh --preset $preset --nj $nj --stop-stage 2 >/dev/null
mkdir -p $dir
[ -f $dir/0.nnet ] || nnet-init --input-dim $(cat egs/info/input_dim) --output-dim $(cat data/ali/num_pdfs) \
  --hidden-layers 3 --hidden-dim 512 $dir/0.nnet 2>/dev/null
for sched in exponential newbob; do
  start=$(date +%s)
  if [ ! -f $dir/$sched/final.nnet ]; then
    steps/train_parallel.sh --cmd "$train_cmd" --num-iters $num_iters --optimizer $optimizer \
      --epoch-schedule $sched egs $dir/0.nnet $dir/$sched > $dir/$sched.log
    echo $(( $(date +%s) - start )) > $dir/$sched/seconds
  fi
  tail -n 1 $dir/$sched.log
done
{
  echo "| schedule | CV frame accuracy | CV cross-entropy | iterations run | wall s |"
  echo "|---|---|---|---|---|"
  for sched in exponential newbob; do
    figs=$(nnet-log-figures --grep "final CV" --last frame-accuracy,cross-entropy $dir/$sched.log 2>/dev/null)
    n=$(ls $dir/$sched/log/compute_prob_cv.*.log | wc -l)
    echo "| $sched | $figs | $((n - 1)) | $(cat $dir/$sched/seconds) |"
  done
} > $dir/results.md
cat $dir/results.md
