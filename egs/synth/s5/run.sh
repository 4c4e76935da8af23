#!/usr/bin/env bash
# The synthetic recipe, end to end on one machine in a few minutes:
#   data -> CMVN -> egs -> init -> 4-job file-averaged training -> CV evaluation,
# plus a linear model trained the same way, to show what the hidden layers buy.
#
#   ./run.sh                          # default corpus (~300k frames)
#   ./run.sh --preset tiny            # seconds; what the tests run
#   ./run.sh --stage 4                # resume from training (finished iterations are skipped)
set -euo pipefail
cd "$(dirname "$0")"

stage=0
stop_stage=100
preset=default        # tiny | default | large | big | huge (size of the synthetic corpus; big: ~3.3M frames, 300 pdfs; huge: 3x big)
nj=4                  # parallel training jobs (= training archives)
num_iters=8           # iterations of parallel training (one pass per job over its archive each)
hidden_layers=3
hidden_dim=512
nonlinearity=sigmoid
epoch_schedule=exponential  # between iterations/epochs: exponential | newbob
lr_schedule=""           # deprecated spelling of --epoch-schedule
initial_learning_rate=0.008
final_learning_rate=0.0008
minibatch_size=256
parallel=files        # files: average model files between iterations; mpi: mix over MPI
mixing=allreduce      # with --parallel mpi: allreduce | butterfly | ring | bmuf
average_every=10      # with --parallel mpi: mix every K minibatches
optimizer=sgd         # sgd | ngsgd
ng_state=keep         # ngsgd: reset | keep the Fisher estimates across iterations (see RESULTS.md)
pretrain=false        # RBM-pretrain the hidden layers (a DBN) before training
linear_baseline=true  # also train a linear (softmax regression) model the same way ...
linear_iters=2        # ... for this many iterations: it is convex and converges in one or two (its CV
                      # frame accuracy was 55.8% after 1 of 8 iterations, 57.1% after 8), while its
                      # iterations are mostly process start and averaging (RESULTS.md)
use_gpu=no            # yes | optional | no: train on a GPU through CuPy (./setup.sh gpu)
data=data
egs=egs
exp=exp

help_message="Usage: $0 [--stage N] [--stop-stage N] [--preset tiny|default|large|big|huge] [--nj N] [--num-iters N]
  [--hidden-layers N] [--hidden-dim N] [--nonlinearity sigmoid|tanh|relu] [--optimizer sgd|ngsgd]
  [--ng-state reset|keep] [--epoch-schedule exponential|newbob] [--pretrain true|false] [--parallel files|mpi] [--mixing allreduce|butterfly|ring|bmuf] [--average-every K]
  [--linear-baseline true|false] [--linear-iters N] [--use-gpu yes|optional|no] [--data DIR --egs DIR --exp DIR]"
. ./cmd.sh
. ./path.sh
. steps/parse_options.sh

. steps/common.sh   # now_seconds
mkdir -p "$exp"
timeline=$exp/timeline   # "stage N START END" per stage, "wall - START END" per run: nnet-report --timeline
stage_times=""; stage_name=""; stage_label=""; run_t0=$(now_seconds); stage_t0=$run_t0
close_stage() {
  [ -n "$stage_name" ] || return 0
  local t1; t1=$(now_seconds)
  echo "stage ${stage_name#Stage } $stage_t0 $t1 $stage_label" >> "$timeline"
  stage_times+="${stage_times:+, }$stage_name $(awk -v a="$stage_t0" -v b="$t1" 'BEGIN { printf "%.0f", b - a }') s"
  stage_t0=$t1
}
log() {   # a "Stage N: ..." line also closes the previous stage's timing (the summary at the end)
  if [[ "$*" == Stage\ * ]]; then
    close_stage
    stage_name=${1%%:*}
    stage_label=${*#*: }; stage_label=${stage_label%%:*}
  fi
  echo "$(date +%H:%M:%S) run.sh: $*"
}
finish_timing() {   # the wall time per stage, and where it went (nnet-report --timeline)
  close_stage
  echo "wall - $run_t0 $(now_seconds)" >> "$timeline"
  local total="$((SECONDS / 60))m$((SECONDS % 60))s" exps account=""
  exps=$(for m in dnn linear; do if [ -f $exp/$m/log/timeline ]; then echo $exp/$m; fi; done)
  if [ -n "$exps" ] && nnet-report --out $exp/report --timeline "$timeline" --account-only $exps \
      > $exp/account.md 2> $exp/account.log; then
    account=$(grep -o 'wall-seconds=.*' $exp/account.log | awk '{ for (i = 1; i <= NF; i++) { split($i, kv, "=");
      f[kv[1]] = kv[2] } printf "; training steps %.1f%% of it, accounted for %.1f%%", 100 * f["steps-share"],
      100 * f["accounted-share"] }')
    cat $exp/account.md
  fi
  log "wall time $total ($stage_times)$account"
  echo "$total ($stage_times)$account $(date +%Y-%m-%d) $(nproc) cores" > "$exp/wall_time"
}
[ -z "$lr_schedule" ] || { echo "run.sh: WARNING: --lr-schedule is now --epoch-schedule" >&2; epoch_schedule=$lr_schedule; }

if [ $stage -le 0 ] && [ $stop_stage -ge 0 ]; then
  log "Stage 0: synthetic corpus: generator ($preset) -> $data/train, $data/ali/pdf.ark"
  [ -f $data/train/feats.scp ] || make_synth_data.py --preset $preset $data
fi

if [ $stage -le 1 ] && [ $stop_stage -ge 1 ]; then
  log "Stage 1: per-speaker CMVN stats: $data/train/feats.scp -> $data/train/cmvn.scp"
  [ -f $data/train/cmvn.scp ] || $train_cmd $data/log/cmvn.log compute-cmvn-stats \
    --spk2utt=ark:$data/train/spk2utt scp:$data/train/feats.scp \
    ark,scp:$data/train/cmvn.ark,$data/train/cmvn.scp
fi

num_pdfs=$(cat $data/ali/num_pdfs)

if [ $stage -le 2 ] && [ $stop_stage -ge 2 ]; then
  log "Stage 2: egs: $data/train + pdf alignments -> $egs ($nj archives, CV by speaker)"
  steps/make_egs.sh --cmd "$train_cmd" --nj $nj --num-pdfs $num_pdfs $data/train ark:$data/ali/pdf.ark $egs
fi

input_dim=$(cat $egs/info/input_dim 2>/dev/null || echo 0)

if [ $stage -le 3 ] && [ $stop_stage -ge 3 ]; then
  mkdir -p $exp/dnn $exp/linear
  if [ $pretrain = true ]; then
    log "Stage 3: pretrain: ${hidden_layers} RBMs of $hidden_dim units on $egs -> $exp/dbn; DBN + softmax -> $exp/dnn/0.nnet"
    steps/pretrain_dbn.sh --nn-depth $hidden_layers --hid-dim $hidden_dim $egs $exp/dbn
    [ -f $exp/dnn/0.nnet ] || nnet-init --dbn $exp/dbn/$hidden_layers.dbn --hidden-layers 0 \
      --output-dim $num_pdfs $exp/dnn/0.nnet
  else
    log "Stage 3: init: $input_dim-${hidden_layers}x$hidden_dim-$num_pdfs $nonlinearity DNN -> $exp/dnn/0.nnet"
    [ -f $exp/dnn/0.nnet ] || nnet-init --input-dim $input_dim --output-dim $num_pdfs \
      --hidden-layers $hidden_layers --hidden-dim $hidden_dim --nonlinearity $nonlinearity \
      --write-proto $exp/dnn/nnet.proto $exp/dnn/0.nnet
  fi
  [ -f $exp/linear/0.nnet ] || nnet-init --input-dim $input_dim --output-dim $num_pdfs \
    --hidden-layers 0 --write-proto $exp/linear/nnet.proto $exp/linear/0.nnet
fi

common=(--minibatch-size $minibatch_size --optimizer $optimizer --use-gpu $use_gpu
        --initial-learning-rate $initial_learning_rate --final-learning-rate $final_learning_rate)
if [ $parallel = mpi ]; then
  train=(steps/train_mpi.sh --mpi-cmd "$mpi_cmd" --num-epochs $num_iters --epoch-schedule $epoch_schedule --mixing $mixing
         --average-every $average_every "${common[@]}")
else
  train=(steps/train_parallel.sh --cmd "$train_cmd" --num-iters $num_iters --ng-state $ng_state
         --epoch-schedule $epoch_schedule "${common[@]}")
fi

if [ $stage -le 4 ] && [ $stop_stage -ge 4 ]; then
  log "Stage 4: train: $exp/dnn/0.nnet, $optimizer, $nj jobs, averaging through $parallel, $num_iters epochs -> $exp/dnn/final.nnet"
  "${train[@]}" $egs $exp/dnn/0.nnet $exp/dnn
fi

if [ $stage -le 5 ] && [ $stop_stage -ge 5 ] && [ $linear_baseline = true ]; then
  log "Stage 5: baseline: linear model, same data, same training, $linear_iters epochs -> $exp/linear/final.nnet"
  iters_opt=--num-iters; [ $parallel = mpi ] && iters_opt=--num-epochs
  "${train[@]}" $iters_opt $linear_iters $egs $exp/linear/0.nnet $exp/linear
fi

if [ $stage -le 6 ] && [ $stop_stage -ge 6 ]; then
  log "Stage 6: evaluate on the CV speakers: $exp/*/final.nnet"
  for m in dnn linear; do
    [ -f $exp/$m/final.nnet ] || continue
    # the CV utterances the final model was not chosen on (all of them without a combination)
    cv_scp=$egs/cv/feats.scp; what="CV"
    if [ -s $exp/$m/cv_unseen.scp ] && grep -q '^combination' $exp/$m/final_model 2>/dev/null; then
      cv_scp=$exp/$m/cv_unseen.scp; what="CV (the $(wc -l < $cv_scp) utterances not used to choose the final model)"
    fi
    nnet-compute-prob --feature-transform $exp/$m/final.feature_transform $exp/$m/final.nnet \
      scp:$cv_scp ark:$egs/cv/ali.ark 2>$exp/$m/log/final_cv.log > $exp/$m/final_cv
    log "$m: $what $(cat $exp/$m/final_cv)"
  done
  chance=$(awk 'BEGIN{print 1/'$num_pdfs'}')
  log "chance frame accuracy 1/$num_pdfs = $chance"
fi

if [ $stage -le 7 ] && [ $stop_stage -ge 7 ]; then
  log "Stage 7: report: plots and summary from the logs of $exp/dnn $exp/linear -> $exp/report/summary.md"
  exps=$(for m in dnn linear; do if [ -f $exp/$m/final.nnet ]; then echo $exp/$m; fi; done)
  nnet-report --out $exp/report $exps 2> $exp/report.log || { cat $exp/report.log >&2; exit 1; }
  log "report: $exp/report/summary.md ($(ls $exp/report/*.png | wc -l) plots)"
fi
finish_timing
