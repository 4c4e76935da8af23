#!/usr/bin/env bash
# Data-parallel training over MPI: one rank per training archive, the ranks' models mixed every K
# minibatches (all-reduce, butterfly, ring, or all-reduce with block momentum: BMUF), an exact average and a CV evaluation after every
# epoch, exponential learning-rate decay over the epochs (x number of ranks unless told otherwise).
#
# The launcher comes from --mpi-cmd (cmd.sh sets mpi_cmd): "mpiexec" (the MPICH wheel installed
# with nnetavg, or your cluster's) or "srun --mpi=pmi2" inside a SLURM allocation. The trainer
# checks that it really got N connected ranks.
#
# Outputs in EXP_DIR: final.nnet, final.feature_transform, ali_train_pdf.counts, log/train_mpi.log.
# A finished run is not repeated (delete final.nnet to retrain). A checkpoint is written into
# EXP_DIR/ckpt after every epoch and on preemption (SIGTERM/SIGUSR1 to the ranks): an interrupted
# run, rerun, continues from it exactly; a preempted one is rerun by the step itself.

set -euo pipefail

# Begin configuration.
mpi_cmd=mpiexec              # MPI launcher: mpiexec, or "srun --mpi=pmi2" under SLURM
num_epochs=8                 # epochs (newbob: at most)
epoch_schedule=exponential   # between epochs: exponential | newbob
lr_schedule=""               # deprecated spelling of --epoch-schedule
initial_learning_rate=0.008  # effective (per-frame) rate of the first epoch
final_learning_rate=0.0008   # effective rate of the last epoch
scale_lr_by_jobs=auto        # rank learning rate = effective rate x number of ranks: true | false |
                             # auto (true, but false with bmuf, whose block momentum supplies the factor)
mixing=allreduce             # allreduce | butterfly | ring | bmuf (all-reduce + block momentum)
block_momentum=-1           # bmuf: block momentum eta (-1: 1 - 1/ranks; 0: none)
block_learning_rate=1.0      # bmuf: block learning rate zeta
average_every=10             # mix every K minibatches
# Left empty, the options below take nnet-train-mpi's defaults (its --help says what they are):
max_change=                  # largest change of one component per minibatch (nnet3's max-change; 0: none;
                             # default: 0.75 for plain SGD when the rate is multiplied by the ranks, else 0)
max_param_change=            # largest change of the whole model per minibatch (0: none; default: 2.0 where
                             # max-change defaults to 0.75, else 0)
scale_ng_limit_by_jobs=      # NG-SGD: max-change-per-sample x sqrt(ranks) (sqrt, the default) | x ranks (true) |
                             # as is (false, Kaldi), where the rate is multiplied by the ranks (egs/synth/s5/RESULTS.md:
                             # sqrt gains 1-2 points at 8-32 ranks; x ranks diverges at 32)
scale_limit_by_jobs=         # old spelling of --scale-ng-limit-by-jobs
nesterov=                    # bmuf: Nesterov block momentum (true, the default) or classical (false)
minibatch_size=256
randomizer_size=32768
seed=777
optimizer=sgd                # sgd | ngsgd
use_gpu=no
train_opts=""                # extra options for nnet-train-mpi
max_requeues=5               # reruns after a preemption (exit 75), each resuming from the checkpoint
threads_per_rank=1           # BLAS threads of each rank
# End configuration.

help_message="Usage: $0 [options] <egs-dir> <init-model> <exp-dir>
e.g.: $0 --mixing butterfly --average-every 10 egs exp/mpi/0.nnet exp/mpi
Options: --mpi-cmd, --num-epochs, --epoch-schedule, --initial-learning-rate, --final-learning-rate, --scale-lr-by-jobs,
  --mixing, --block-momentum, --block-learning-rate, --nesterov, --average-every, --max-change, --max-param-change,
  --scale-ng-limit-by-jobs, --minibatch-size, --randomizer-size, --seed, --optimizer, --use-gpu,
  --train-opts, --threads-per-rank"
. "$(dirname "$0")/parse_options.sh"
. "$(dirname "$0")/common.sh"
log_wall_time   # "$0: wall time N s" at exit

if [ $# -ne 3 ]; then echo "$help_message" >&2; exit 1; fi
egs=$1; init=$2; dir=$3
if [ -n "$lr_schedule" ]; then   # the old spelling: --lr-schedule means "within a pass" in every trainer
  echo "$0: WARNING: --lr-schedule is now --epoch-schedule (the schedule between iterations/epochs)" >&2
  epoch_schedule=$lr_schedule
fi

require_files "$init"
start_exp_dir "$egs" "$dir"   # checks the egs, sets nj

if [ -f "$dir/final.nnet" ]; then
  echo "$0: $dir/final.nnet exists, not retraining"
else
  if [ -n "$scale_limit_by_jobs" ]; then
    echo "$0: WARNING: --scale-limit-by-jobs is now --scale-ng-limit-by-jobs" >&2
    scale_ng_limit_by_jobs=$scale_limit_by_jobs
  fi
  set_opts=()   # what the user set; everything else is nnet-train-mpi's default
  [ -n "$max_change" ] && set_opts+=(--max-change="$max_change")
  [ -n "$max_param_change" ] && set_opts+=(--max-param-change="$max_param_change")
  [ -n "$scale_ng_limit_by_jobs" ] && set_opts+=(--scale-ng-limit-by-world-size="$scale_ng_limit_by_jobs")
  [ -n "$nesterov" ] && set_opts+=(--nesterov="$nesterov")
  echo "$0: $nj ranks, $mixing mixing every $average_every minibatches, $optimizer, $num_epochs epochs"
  # shellcheck disable=SC2086
  run_mpi "$dir/log/train_mpi.log" "$nj" "$threads_per_rank" \
    nnet-train-mpi --world-size="$nj" --use-gpu="$use_gpu" --optimizer="$optimizer" \
    --mixing="$mixing" --block-momentum="$block_momentum" --block-learning-rate="$block_learning_rate" \
    --average-every="$average_every" --num-epochs="$num_epochs" --epoch-schedule="$epoch_schedule" "${set_opts[@]}" \
    --learn-rate="$initial_learning_rate" --final-learn-rate="$final_learning_rate" \
    --scale-lr-by-world-size="$scale_lr_by_jobs" --minibatch-size="$minibatch_size" \
    --randomizer-size="$randomizer_size" --randomizer-seed="$seed" $train_opts \
    --feature-transform="$dir/final.feature_transform" \
    --cv-feats="scp:$egs/cv/feats.scp" --cv-ali="ark:$egs/cv/ali.ark" --checkpoint="$dir/ckpt" \
    "$init" "scp:$egs/feats.JOB.scp" "ark:$egs/ali.JOB.ark" "$dir/final.nnet"
fi
grep 'rank 0/' "$dir/log/train_mpi.log" | grep -o 'epoch [0-9]*/[0-9]* .*cv-frame-accuracy=[0-9.e+-]*' | \
  sed 's/train-frames=[0-9]* //' || true
echo "$0: done: $dir/final.nnet"
