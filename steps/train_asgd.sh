#!/usr/bin/env bash
# One pass of asynchronous averaged SGD with a parameter server (You & Xu): rank 0 serves the model,
# one worker per training archive pushes gradients that are applied as they arrive; the average
# of the iterates is written (when it beats the last iterate on CV).
#
# Outputs in EXP_DIR: final.nnet, final.feature_transform, ali_train_pdf.counts, log/train_asgd.log.

set -euo pipefail

# Begin configuration.
mpi_cmd=mpiexec
learning_rate=0.008          # per-frame rate of the first update
lr_schedule=minibatch-decay  # constant | minibatch-decay (ASGD-hand: x lr_decay per update) | xu | adagrad | search
chunk_size=1h                # data chunk (frames or hours): search picks the rate per chunk
search_fraction=0.03         # share of a chunk the search trains on (sampled from archive 1)
lr_decay=0.999
final_learning_rate=         # minibatch-decay: rate of the last update of the pass; sets the decay from
                             # the egs' frame count, (final/initial)^(minibatch/frames) (empty: --lr-decay)
averaged_sgd=true
asgd_eta=0.01
polyak_after_fraction=0.5    # no switch to the Polyak average in the first part of the pass (tail averaging)
cv_check_every=200           # updates between CV comparisons of average and current model (0: end only)
cv_check_frames=50000        # CV frames those comparisons use (0: all); the final choice uses all
minibatch_size=256
randomizer_size=32768
seed=777
threads_per_rank=1
train_opts=""
# End configuration.

help_message="Usage: $0 [options] <egs-dir> <init-model> <exp-dir>
e.g.: $0 --lr-schedule minibatch-decay --lr-decay 0.999 egs exp/asgd/0.nnet exp/asgd
Options: --mpi-cmd, --learning-rate, --lr-schedule, --lr-decay, --final-learning-rate, --chunk-size,
  --search-fraction, --averaged-sgd, --asgd-eta, --polyak-after-fraction, --cv-check-every, --cv-check-frames,
  --minibatch-size, --randomizer-size, --seed, --threads-per-rank, --train-opts"
. "$(dirname "$0")/parse_options.sh"
. "$(dirname "$0")/common.sh"
log_wall_time   # "$0: wall time N s" at exit

if [ $# -ne 3 ]; then echo "$help_message" >&2; exit 1; fi
egs=$1; init=$2; dir=$3
require_files "$init"
start_exp_dir "$egs" "$dir"   # checks the egs, sets nj
if [ -f "$dir/final.nnet" ]; then
  echo "$0: $dir/final.nnet exists, not retraining"
else
  # frames of one pass ~ the training pdf counts' sum; updates = frames / minibatch
  frames=$(awk '{for (i = 1; i <= NF; i++) if ($i ~ /^[0-9.]+$/) s += $i} END {printf "%d", s}' "$egs/ali_train_pdf.counts")
  updates=$(( frames / minibatch_size ))
  if [ -n "$final_learning_rate" ] && [ "$lr_schedule" = minibatch-decay ]; then
    [ "$updates" -gt 0 ] || { echo "$0: no training frames counted in $egs/ali_train_pdf.counts" >&2; exit 1; }
    lr_decay=$(awk -v a="$learning_rate" -v b="$final_learning_rate" -v u="$updates" 'BEGIN{printf "%.9f", exp(log(b / a) / u)}')
    echo "$0: $frames frames = $updates updates: decay $lr_decay per update takes the rate from $learning_rate to $final_learning_rate"
  elif [ "$lr_schedule" = minibatch-decay ] && [ "$updates" -gt 0 ]; then
    end_rate=$(awk -v a="$learning_rate" -v d="$lr_decay" -v u="$updates" 'BEGIN{e = a * exp(u * log(d)); if (e < 1e-3 * a) printf "%.3g", e}')
    [ -z "$end_rate" ] || echo "$0: warning: decay $lr_decay over the pass's $updates updates ($frames frames) ends at rate $end_rate, below 1/1000 of the start: the end of the data is not learnt; set --final-learning-rate" >&2
  fi
  polyak_after=$(awk -v f="$polyak_after_fraction" -v u="$updates" 'BEGIN{printf "%d", f * u}')
  echo "$0: 1 server + $nj workers, $lr_schedule from $learning_rate, averaged SGD $averaged_sgd (Polyak phase not before update $polyak_after)"
  # shellcheck disable=SC2086
  run_mpi "$dir/log/train_asgd.log" $((nj + 1)) "$threads_per_rank" \
    nnet-train-asgd --learn-rate="$learning_rate" --lr-schedule="$lr_schedule" \
    --lr-decay="$lr_decay" --averaged-sgd="$averaged_sgd" --asgd-eta="$asgd_eta" --polyak-after="$polyak_after" \
    --chunk-size="$chunk_size" --search-fraction="$search_fraction" \
    --search-feats="scp:$egs/feats.1.scp" --search-ali="ark:$egs/ali.1.ark" \
    --cv-check-every="$cv_check_every" --cv-check-frames="$cv_check_frames" --minibatch-size="$minibatch_size" --randomizer-size="$randomizer_size" \
    --randomizer-seed="$seed" $train_opts --feature-transform="$dir/final.feature_transform" \
    --cv-feats="scp:$egs/cv/feats.scp" --cv-ali="ark:$egs/cv/ali.ark" \
    "$init" "scp:$egs/feats.JOB.scp" "ark:$egs/ali.JOB.ark" "$dir/final.nnet"
fi
grep -o 'server gradients-applied.*' "$dir/log/train_asgd.log" | cut -c1-200 || true
nnet-compute-prob --feature-transform="$dir/final.feature_transform" "$dir/final.nnet" \
  "scp:$egs/cv/feats.scp" "ark:$egs/cv/ali.ark" 2>"$dir/log/final_cv.log" | sed "s|^|$0: final CV |"
