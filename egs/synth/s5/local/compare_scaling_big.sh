#!/usr/bin/env bash
# Scaling without loss, on a corpus big enough to test it (issue 16; papers 001 and 004): CV frame
# accuracy against the number of MPI ranks for each mixing (all-reduce, butterfly, ring, block
# momentum) with NG-SGD and plain SGD, at the same number of epochs, on the "big" synthetic preset
# (~3.37M frames, 300 pdfs; 3.03M training frames after holding out 24 of the 240 speakers).
#
# The corpus and one egs directory of 32 archives are made once (run.sh stages 0-2); every smaller
# number of ranks regroups those archives (steps/regroup_egs.sh), so all runs see the same
# training frames and the same CV speakers. Ranks beyond the 2 cores are oversubscribed (1 BLAS
# thread each): wall times are not speed-ups, the accuracies are what this measures.
#
#   local/compare_scaling_big.sh                          # the default runs -> exp_big/scaling/results.md
#   local/compare_scaling_big.sh --runs "ngsgd:bmuf:16:10 sgd:allreduce:8:10"
#   local/compare_scaling_big.sh --report-only true       # rewrite results.md from the finished runs
#
# A run is OPTIMIZER:MIXING:RANKS:K. MIXING is a mixing of nnet-train-mpi or one of these variants:
#   bmufc          BMUF with classical block momentum
#   allreducemc    all-reduce, nnet3's max-change 0.75 per component and 2.0 per model
#   allreducemcsq  the same limits x sqrt(RANKS)
#   allreducens    all-reduce, NG-SGD's max-change-per-sample scaled like the rate, 0.075 x RANKS
#   allreducelr    all-reduce, NG-SGD's limit following the rate schedule (--limit-follows-rate)
#   allreducel4    all-reduce, NG-SGD's max-change-per-sample 4 x 0.075
#   allreducesq    all-reduce, NG-SGD's max-change-per-sample 0.075 x sqrt(RANKS)
# Finished runs are not repeated. Every run pins steps/train_mpi.sh's automatic limits off (no
# max-change, NG-SGD's limit as is): a variant's options are all it changes.
set -euo pipefail
cd "$(dirname "$0")/.."

data=data_big
dir=exp_big/scaling
num_epochs=3
initial_learning_rate=0.008   # effective rate (allreduce/butterfly/ring: x ranks; bmuf: as is)
final_learning_rate=0.0008
hidden_layers=3
hidden_dim=512
minibatch_size=256
runs="ngsgd:allreduce:1:10 ngsgd:allreduce:16:10 ngsgd:bmuf:16:10 ngsgd:allreduce:32:10 ngsgd:bmuf:32:10
      sgd:allreduce:8:10 sgd:bmuf:8:10 sgd:allreduce:1:10 ngsgd:allreduce:4:10 ngsgd:bmuf:4:10"
report_only=false
. ./cmd.sh
. ./path.sh
. steps/parse_options.sh

egs32=$dir/egs_nj32
if [ $report_only = false ]; then
  ./run.sh --preset big --nj 32 --data $data --egs $egs32 --exp $dir/unused --stop-stage 2 --linear-baseline false
  num_pdfs=$(cat $data/ali/num_pdfs)
  [ -f $dir/0.nnet ] || nnet-init --input-dim "$(cat $egs32/info/input_dim)" --output-dim $num_pdfs \
    --hidden-layers $hidden_layers --hidden-dim $hidden_dim $dir/0.nnet 2>/dev/null
  for r in $runs; do
    IFS=: read -r opt mix n k <<< "$r"
    name=${opt}_${mix}_n${n}_k${k}
    [ -f $dir/egs_nj$n/info/num_archives ] || steps/regroup_egs.sh --nj $n $egs32 $dir/egs_nj$n >/dev/null
    if [ ! -f $dir/$name/final.nnet ]; then
      threads=1; [ $n -eq 1 ] && threads=2
      x_ranks() { awk -v n=$n -v b=$1 -v p=$2 'BEGIN { printf "%g", b * n ^ p }'; }   # BASE x RANKS^POWER
      case $mix in   # the variants: a mixing plus options
        bmufc)         mix=bmuf;      extra="--nesterov=false" ;;
        allreducemc)   mix=allreduce; extra="--max-change=0.75 --max-param-change=2.0" ;;
        allreducemcsq) mix=allreduce; extra="--max-change=$(x_ranks 0.75 0.5) --max-param-change=$(x_ranks 2 0.5)" ;;
        allreducel4)   mix=allreduce; extra="--max-change-per-sample=0.3" ;;
        allreducesq)   mix=allreduce; extra="--max-change-per-sample=$(x_ranks 0.075 0.5)" ;;
        allreducelr)   mix=allreduce; extra="--limit-follows-rate=true" ;;
        allreducens)   mix=allreduce; extra="--max-change-per-sample=$(x_ranks 0.075 1)" ;;
        *)             extra="" ;;
      esac
      start=$(date +%s)
      steps/train_mpi.sh --mpi-cmd "$mpi_cmd" --num-epochs $num_epochs --mixing $mix --average-every $k \
        --minibatch-size $minibatch_size --optimizer $opt --threads-per-rank $threads \
        --initial-learning-rate $initial_learning_rate --final-learning-rate $final_learning_rate \
        --max-change 0 --max-param-change 0 --scale-ng-limit-by-jobs false \
        --train-opts "$extra" $dir/egs_nj$n $dir/0.nnet $dir/$name > $dir/$name.out
      echo $(( $(date +%s) - start )) > $dir/$name/seconds
    fi
    echo "$name: cv-frame-accuracy=$(nnet-log-figures --grep epoch --rank 0 --last cv-frame-accuracy \
      $dir/$name/log/train_mpi.log 2>/dev/null)"
  done
fi

# One table, runs grouped by optimizer and mixing, with the loss against one rank of the same
# optimizer (the papers' measure) beside each.
acc() { nnet-log-figures --grep epoch --rank 0 --last cv-frame-accuracy "$1" 2>/dev/null; }
{
  echo "| optimizer | mixing | ranks | K | CV frame accuracy | vs 1 rank | CV cross-entropy | epoch accuracies | mixing share | wall s |"
  echo "|---|---|---:|---:|---:|---:|---:|---|---:|---:|"
  for d in $(ls -d $dir/*_n*_k* 2>/dev/null | sort -t_ -k1,2 -k3.2n); do
    [ -f $d/final.nnet ] || continue
    name=$(basename $d); IFS=_ read -r opt mix n k <<< "$name"; n=${n#n}; k=${k#k}
    log=$d/log/train_mpi.log
    a=$(acc $log); ref=$dir/${opt}_allreduce_n1_k10/log/train_mpi.log
    delta=""; [ -f $ref ] && delta=$(awk -v a=$a -v b=$(acc $ref) 'BEGIN{printf "%+.2f", 100*(a-b)}')
    ce=$(nnet-log-figures --grep epoch --rank 0 --last cv-cross-entropy $log)
    curve=$(grep "rank 0/" $log | grep -o 'epoch [0-9]*/[0-9]* .*cv-frame-accuracy=[0-9.]*' | \
            sed 's/.*cv-frame-accuracy=//' | awk '{printf "%s%.1f", (NR>1?" ":""), 100*$1}')
    share=$(nnet-log-figures --grep epoch --rank 0 --ratio mix-seconds/seconds $log)
    printf "| %s | %s | %s | %s | %.2f%% | %s | %.3f | %s | %.1f%% | %s |\n" $opt $mix $n $k \
      "$(awk -v a=$a 'BEGIN{print 100*a}')" "$delta" "$ce" "$curve" "$(awk -v s=$share 'BEGIN{print 100*s}')" \
      "$(cat $d/seconds 2>/dev/null || echo -)"
  done
} > $dir/results.md
cat $dir/results.md
