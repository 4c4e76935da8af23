#!/usr/bin/env bash
# Speed-up and scaling factor against the number of jobs (analog of Fig. 2 of Su, Chen & Xu 2015):
# the same DNN trained with 1, 2, 4 and 8 jobs and file averaging, a few iterations each; the
# speed-up is training frames/s against the 1-job run, read back from the logs by nnet-report,
# which draws it beside the paper's points and rewrites the generated block of RESULTS.md.
# On this 2-core machine the speed-up cannot pass 2 (each job gets one BLAS thread).
#
#   local/compare_scaling.sh                 # exp/scaling/report/{summary.md,scaling.png,...}
set -euo pipefail
cd "$(dirname "$0")/.."

preset=default
num_iters=3
jobs="1 2 4 8"
dir=exp/scaling
. ./cmd.sh
. ./path.sh
. steps/parse_options.sh

mkdir -p $dir
for nj in $jobs; do
  ./run.sh --preset $preset --nj $nj --num-iters $num_iters --linear-baseline false --stop-stage 4 \
    --egs egs_nj$nj --exp $dir/nj$nj > $dir.nj$nj.log 2>&1 || { tail $dir.nj$nj.log >&2; exit 1; }
  tail -n 1 $dir.nj$nj.log
done
nnet-report --out $dir/report --results RESULTS.md $(for nj in $jobs; do echo $dir/nj$nj/dnn; done)
echo "$0: $dir/report/summary.md"
