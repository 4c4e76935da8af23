#!/usr/bin/env bash
# Data-parallel training with model averaging through files (Kaldi nnet2 style).
#
# Each iteration runs one training job per archive, all starting from the same model, each
# writing ITER.JOB.nnet; nnet-average then makes the next model. The effective learning rate
# decays exponentially from --initial-learning-rate to --final-learning-rate over the run, and each
# job trains with (effective rate x number of jobs) unless --scale-lr-by-jobs false: averaging N
# models moves the parameters about 1/N as far as each job moved. The CV cross-entropy and frame
# accuracy of every averaged model are logged. Re-running skips finished iterations, so a killed
# run resumes from its last completed iteration.
#
# Job-count ramp (Kaldi nnet3's --num-jobs-initial/--num-jobs-final): with --num-jobs-initial J0
# (and --num-jobs-final J1, default the number of archives A) iteration x runs
# J(x) = int(0.5 + J0 + (J1 - J0) x / (X - 1)) jobs on the next J(x) archives in turn (cycling), with
# job rate = effective rate x J(x); --num-iters is then taken as a number of epochs E and the
# iterations X = int(2 E A / (J0 + J1)) so that E x A archives are processed in all, as without it.
#
# Outputs in EXP_DIR: 0.nnet .. N.nnet, final.nnet, final.feature_transform, ali_train_pdf.counts,
# log/train.ITER.JOB.log, log/average.ITER.log, log/compute_prob_cv.ITER.log, cv_progress.

set -euo pipefail

# Begin configuration.
cmd=run.pl                   # job launcher (see cmd.sh)
num_iters=8                  # iterations (newbob: at most); each job passes once over its archive per iteration
epoch_schedule=exponential   # between iterations: exponential (initial -> final) | newbob (nnet1's accept/reject + halving)
lr_schedule=""               # deprecated spelling of --epoch-schedule
initial_learning_rate=0.008  # effective (per-frame) learning rate of the first iteration
final_learning_rate=0.0008   # effective learning rate of the last iteration (exponential)
newbob_opts=""               # e.g. "--start-halving-impr 0.01 --end-halving-impr 0.001 --min-iters 2"
scale_lr_by_jobs=true        # job learning rate = effective rate x number of jobs
num_jobs_initial=0           # job-count ramp: jobs of the first iteration (0: no ramp, every archive every iteration)
num_jobs_final=0             # job-count ramp: jobs of the last iteration (0: the number of archives)
max_change=auto              # largest change of one component per minibatch (nnet3's max-change; 0: none;
                             # auto: 0.75 for plain SGD when the rate is multiplied by the jobs, else 0:
                             # the rule of nnet-train-mpi, asked from nnet-learning-rate --change-limits-for)
max_param_change=auto        # largest change of the whole model per minibatch (0: none; auto: 2.0 where
                             # max_change auto gives 0.75, else 0)
minibatch_size=256
randomizer_size=32768
seed=777                     # randomizer seed of iteration 0 (iteration x uses seed + x)
momentum=0.0
l2_penalty=0.0
optimizer=sgd                # sgd | ngsgd (natural gradient: nnet-train-ngsgd)
ng_state=keep                # ngsgd: reset the Fisher estimates every iteration (Kaldi) or keep them
                             # per job across iterations (saved as ng/ITER.JOB.npz beside the models;
                             # keep was marginally better on the synthetic recipe, see its RESULTS.md)
use_gpu=no
train_opts=""                # extra options for the trainer
keep_job_models=false        # keep ITER.JOB.nnet after averaging
max_objective_gap=1.0        # jobs whose cross-entropy is worse than the best job's by more are not averaged
stage=0                      # first iteration to run (earlier finished ones are skipped anyway)
final_model=combine          # final.nnet (exponential schedule): combine (nnet-combine of the last
                             # --num-models-combine iterations' models, chosen on --combine-frames CV
                             # frames, as nnet3 ends) | best-cv (the iteration with the best CV
                             # cross-entropy, as nnet1 keeps) | last; newbob keeps its best accepted model
num_models_combine=0         # models considered (0: half the iterations, 1 to 10)
combine_method=average       # average: the best average of the last n models (nnet3) | bfgs: weights per component (nnet2)
combine_frames=20000         # CV frames (random whole utterances, at most half the CV set) the choice is
                             # made on; the rest of the CV set scores last and final model (log/combine.log)
# End configuration.

help_message="Usage: $0 [options] <egs-dir> <init-model> <exp-dir>
e.g.: $0 --num-iters 8 --initial-learning-rate 0.008 egs exp/dnn/0.nnet exp/dnn
Options: --cmd, --num-iters, --epoch-schedule, --newbob-opts, --initial-learning-rate, --final-learning-rate, --scale-lr-by-jobs,
  --num-jobs-initial, --num-jobs-final, --max-change, --max-param-change,
  --minibatch-size, --randomizer-size, --seed, --momentum, --l2-penalty, --optimizer, --ng-state, --use-gpu,
  --train-opts, --keep-job-models, --max-objective-gap, --stage, --final-model, --num-models-combine,
  --combine-method, --combine-frames"
. "$(dirname "$0")/parse_options.sh"
. "$(dirname "$0")/common.sh"

if [ $# -ne 3 ]; then echo "$help_message" >&2; exit 1; fi
egs=$1; init=$2; dir=$3
if [ -n "$lr_schedule" ]; then   # the old spelling: --lr-schedule means "within a pass" in every trainer
  echo "$0: WARNING: --lr-schedule is now --epoch-schedule (the schedule between iterations/epochs)" >&2
  epoch_schedule=$lr_schedule
fi

require_files "$init"
case $optimizer in   # chosen the same way as over MPI: the trainer's --optimizer
  sgd|ngsgd) ;;
  *) echo "$0: --optimizer must be sgd or ngsgd, not $optimizer" >&2; exit 1 ;;
esac
case $ng_state in reset|keep) ;; *) echo "$0: --ng-state must be reset or keep" >&2; exit 1 ;; esac
case $epoch_schedule in exponential|newbob) ;; *) echo "$0: --epoch-schedule must be exponential or newbob" >&2; exit 1 ;; esac

start_exp_dir "$egs" "$dir"   # checks the egs, sets nj
start_timeline "$dir"         # the account of the step's wall time: $dir/log/timeline, nnet-report
[ -f "$dir/0.nnet" ] || timed setup - nnet-copy "$init" "$dir/0.nnet"
transform=$dir/final.feature_transform
num_archives=$nj
if [ "$num_jobs_initial" -gt 0 ]; then
  [ "$num_jobs_final" -gt 0 ] || num_jobs_final=$num_archives
  if [ "$num_jobs_final" -gt "$num_archives" ] || [ "$num_jobs_initial" -gt "$num_jobs_final" ]; then
    echo "$0: need --num-jobs-initial <= --num-jobs-final <= $num_archives archives" >&2; exit 1
  fi
  [ "$epoch_schedule" = exponential ] || { echo "$0: the job-count ramp needs --epoch-schedule exponential" >&2; exit 1; }
  num_epochs=$num_iters
  num_iters=$(( (2 * num_epochs * num_archives) / (num_jobs_initial + num_jobs_final) ))
  [ "$num_iters" -ge 1 ] || num_iters=1
  echo "$0: job-count ramp $num_jobs_initial -> $num_jobs_final over $num_iters iterations ($num_epochs epochs of $num_archives archives)"
fi
# jobs_at X: the number of jobs of iteration X; archive_offset X: archives processed before it.
jobs_at() {
  if [ "$num_jobs_initial" -gt 0 ]; then
    awk -v x="$1" -v X="$num_iters" -v a="$num_jobs_initial" -v b="$num_jobs_final" \
      'BEGIN{ f = (X > 1) ? x / (X - 1) : 0; print int(0.5 + a + (b - a) * f) }'
  else
    echo "$num_archives"
  fi
}
archive_offset() { local i o=0; for ((i = 0; i < $1; i++)); do o=$((o + $(jobs_at $i))); done; echo $o; }

cv_prob() {  # cv_prob ITER: evaluates ITER.nnet on the CV set, once
  local it=$1 phase=cv
  [ "$it" = final ] && phase=final
  if ! grep -q '^cross-entropy=' "$dir/log/compute_prob_cv.$it.log" 2>/dev/null; then
    timed $phase "$it" $cmd "$dir/log/compute_prob_cv.$it.log" nnet-compute-prob --use-gpu="$use_gpu" \
      --feature-transform="$transform" "$dir/$it.nnet" "scp:$egs/cv/feats.scp" "ark:$egs/cv/ali.ark"
  fi
  grep '^cross-entropy=' "$dir/log/compute_prob_cv.$it.log" | tail -n 1
}

echo "$0: iteration 0: CV $(cv_prob 0)"
newbob=$dir/newbob.json
if [ "$epoch_schedule" = newbob ] && [ ! -f "$newbob" ]; then
  # shellcheck disable=SC2086
  nnet-newbob --learn-rate="$initial_learning_rate" --max-iters="$num_iters" $newbob_opts \
    --init "$dir/log/compute_prob_cv.0.log" "$newbob" 2>>"$dir/log/newbob.log" >/dev/null
fi
# job_rates NUM_JOBS SCHEDULE...: "job-rate max-change max-param-change" lines (nnet-learning-rate)
job_rates() {
  local jobs=$1; shift
  nnet-learning-rate --num-jobs="$jobs" --scale-by-jobs="$scale_lr_by_jobs" --change-limits-for="$optimizer" "$@" \
    2>>"$dir/log/learning_rate.log"
}
rate_table=()   # one line per iteration, when the rates depend neither on CV (newbob) nor on a job ramp
if [ "$epoch_schedule" = exponential ] && [ "$num_jobs_initial" -eq 0 ]; then
  timed schedule - mapfile -t rate_table < <(job_rates "$num_archives" --initial="$initial_learning_rate" \
    --final="$final_learning_rate" "0:$((num_iters - 1))" "$num_iters")
  [ ${#rate_table[@]} -eq "$num_iters" ] || { echo "$0: nnet-learning-rate failed (see $dir/log/learning_rate.log)" >&2; exit 1; }
fi
last=$num_iters
for ((x = 0; x < num_iters; x++)); do
  next=$((x + 1))
  from=$x
  if [ "$epoch_schedule" = newbob ]; then
    eval "$(nnet-newbob --show "$newbob" 2>>"$dir/log/newbob.log")"   # learn_rate best_iter iterations stop
    if [ "$stop" = true ]; then last=$x; break; fi
    [ $x -lt "$iterations" ] && continue
    from=$best_iter
  elif [ $x -lt "$stage" ] || [ -f "$dir/$next.nnet" ]; then
    continue
  fi
  nj=$(jobs_at $x)
  # Job J of this iteration reads archive 1 + (offset + J - 1) mod A: with a ramp, the archives in
  # turn; without, job J reads archive J (symbolic links arch/{feats.X.J.scp,ali.X.J.ark}, so one
  # JOB command line serves every job).
  offset=$(archive_offset $x)
  job_feats="scp:$egs/feats.JOB.scp"; job_ali="ark:$egs/ali.JOB.ark"   # no ramp: job J reads archive J
  [ "$num_jobs_initial" -gt 0 ] && { job_feats="scp:$dir/arch/feats.$x.JOB.scp"; job_ali="ark:$dir/arch/ali.$x.JOB.ark"; }
  mkdir -p "$dir/arch"
  for ((j = 1; j <= nj; j++)); do
    a=$(( (offset + j - 1) % num_archives + 1 ))
    ln -sfn "$(cd "$egs" && pwd)/feats.$a.scp" "$dir/arch/feats.$x.$j.scp"
    ln -sfn "$(cd "$egs" && pwd)/ali.$a.ark" "$dir/arch/ali.$x.$j.ark"
  done
  state_opts=()
  if [ "$optimizer" = ngsgd ] && [ "$ng_state" = keep ]; then
    mkdir -p "$dir/ng"
    if [ $x -gt 0 ]; then
      prev=$(jobs_at $((x - 1)))   # more jobs than last iteration: the new ones start from earlier jobs' state
      for ((j = prev + 1; j <= nj; j++)); do cp "$dir/ng/$x.$(( (j - 1) % prev + 1 )).npz" "$dir/ng/$x.$j.npz"; done
      state_opts+=(--ng-state-in="$dir/ng/$x.JOB.npz")
    fi
    state_opts+=(--ng-state-out="$dir/ng/$next.JOB.npz")
  fi
  if [ ${#rate_table[@]} -gt 0 ]; then   # the exponential schedule without a ramp: computed once
    read -r lr auto_change auto_param_change <<< "${rate_table[$x]}"
  else   # newbob: its own rate, constant over the iteration; else the exponential schedule at iteration x
    schedule=(--initial="$initial_learning_rate" --final="$final_learning_rate" "$x" "$num_iters")
    [ "$epoch_schedule" = newbob ] && schedule=(--initial="$learn_rate" --final="$learn_rate" 0 1)
    timed schedule $x read -r lr auto_change auto_param_change < <(job_rates "$nj" "${schedule[@]}")
  fi
  [ -n "$lr" ] || { echo "$0: nnet-learning-rate failed (see $dir/log/learning_rate.log)" >&2; exit 1; }
  change=$max_change; param_change=$max_param_change
  [ "$change" = auto ] && change=$auto_change
  [ "$param_change" = auto ] && param_change=$auto_param_change
  mkdir -p "$dir/ckpt"
  # A job that fails (after the launcher's --retries) is left out of the average, as are jobs whose
  # objective is not finite or an outlier; the step stops only when no job succeeded. A preempted
  # job checkpoints into ckpt/ and is requeued by the launcher; rerun, it resumes exactly.
  timed train $x $cmd JOB=1:"$nj" "$dir/log/train.$x.JOB.log" nnet-train-simple --optimizer="$optimizer" --use-gpu="$use_gpu" \
    --learn-rate="$lr" --minibatch-size="$minibatch_size" --randomizer-size="$randomizer_size" \
    --randomizer-seed=$((seed + x)) --momentum="$momentum" --l2-penalty="$l2_penalty" $train_opts "${state_opts[@]}" \
    --max-change="$change" --max-param-change="$param_change" --checkpoint="$dir/ckpt/$x.JOB.npz" \
    --feature-transform="$transform" "$dir/$from.nnet" "$job_feats" \
    "$job_ali" "$dir/$x.JOB.nnet" || echo "$0: iteration $next: some training jobs failed; averaging the successful ones" >&2
  # the successful jobs' average and its CV figures, in one process (compute_prob_cv.$next.log as
  # nnet-compute-prob writes it; jobs left out are warned about in average.$x.log)
  job_models=(); for ((j = 1; j <= nj; j++)); do job_models+=("$dir/$x.$j.nnet"); done
  if ! timed averaging $x $cmd "$dir/log/average.$x.log" nnet-average --job-logs="$dir/log/train.$x.JOB.log" \
      --max-gap="$max_objective_gap" --use-gpu="$use_gpu" --feature-transform="$transform" \
      --cv-feats="scp:$egs/cv/feats.scp" --cv-ali="ark:$egs/cv/ali.ark" --cv-log="$dir/log/compute_prob_cv.$next.log" \
      "${job_models[@]}" "$dir/$next.nnet"; then
    echo "$0: iteration $next: averaging failed (no training job succeeded?); see $dir/log/average.$x.log" >&2; exit 1
  fi
  grep WARNING "$dir/log/average.$x.log" >&2 || true
  [ "$keep_job_models" = true ] || rm -f "$dir/$x".*.nnet
  rm -f "$dir/ng/$x".*.npz
  cv=$(cv_prob $next)
  decision=""
  if [ "$epoch_schedule" = newbob ]; then
    # shellcheck disable=SC2086
    eval "$(nnet-newbob $newbob_opts "$next" "$dir/log/compute_prob_cv.$next.log" "$newbob" 2>>"$dir/log/newbob.log")"
    decision=" $([ "$accepted" = true ] && echo accepted || echo rejected), next-learning-rate=$learn_rate"
  fi
  echo "$0: iteration $next of $num_iters: job-learning-rate=$lr CV $cv$decision jobs=$nj max-change=$change max-param-change=$param_change" | tee -a "$dir/cv_progress"
done

case "$final_model" in combine|best-cv|last) ;; *) echo "$0: --final-model must be combine, best-cv or last" >&2; exit 1;; esac
case "$combine_method" in average|bfgs) ;; *) echo "$0: --combine-method must be average or bfgs" >&2; exit 1;; esac
if [ "$epoch_schedule" = newbob ]; then
  eval "$(nnet-newbob --show "$newbob" 2>>"$dir/log/newbob.log")"
  last=$best_iter
  final_model=last
fi
n=$num_models_combine
[ "$n" -gt 0 ] || n=$(( last / 2 < 1 ? 1 : (last / 2 > 10 ? 10 : last / 2) ))
[ "$n" -le "$last" ] || n=$last
[ "$final_model" = combine ] && [ "$n" -lt 2 ] && final_model=last   # one model: nothing to combine
if [ "$final_model" = last ] || [ "$last" -lt 2 ]; then
  [ "$dir/final.nnet" -nt "$dir/$last.nnet" ] || timed final - nnet-copy "$dir/$last.nnet" "$dir/final.nnet" 2>>"$dir/log/copy_final.log"
  echo "$last.nnet" > "$dir/final_model"
  echo "$0: done: $dir/final.nnet (= $last.nnet); final CV $(cv_prob "$last")"
  exit 0
fi
if [ ! -f "$dir/final.nnet" ] || [ "$dir/$last.nnet" -nt "$dir/final.nnet" ]; then
  rm -f "$dir/log/compute_prob_cv.final.log"
  if [ "$final_model" = best-cv ]; then
    best=$(for ((i = 1; i <= last; i++)); do echo "$i $(cv_prob $i | sed 's/cross-entropy=\([^ ]*\).*/\1/')"; done |
           sort -g -k2 | head -n 1 | cut -d' ' -f1)
    timed final - nnet-copy "$dir/$best.nnet" "$dir/final.nnet" 2>>"$dir/log/copy_final.log"
    echo "$best.nnet (best CV cross-entropy of iterations 1-$last)" > "$dir/final_model"
  else
    models=(); for ((i = last - n + 1; i <= last; i++)); do models+=("$dir/$i.nnet"); done
    timed final - $cmd "$dir/log/combine.log" nnet-combine --use-gpu="$use_gpu" --feature-transform="$transform" \
      --method="$combine_method" --num-frames="$combine_frames" --seed="$seed" --fit-utts-out="$dir/combine_fit_utts" \
      "${models[@]}" "scp:$egs/cv/feats.scp" "ark:$egs/cv/ali.ark" "$dir/final.nnet"
    chosen=$(grep -o 'chosen=[^ ]*' "$dir/log/combine.log" | tail -n 1 | cut -d= -f2)
    echo "combination of $((last - n + 1))-$last.nnet ($chosen)" > "$dir/final_model"
    if [ "$chosen" = last-1 ]; then   # final.nnet has the last model's parameters: its CV figures are known
      cp "$dir/log/compute_prob_cv.$last.log" "$dir/log/compute_prob_cv.final.log" 2>/dev/null || true
    fi
    # the CV utterances the choice was not made on, for figures of the final model
    awk 'NR == FNR { fit[$1]; next } !($1 in fit)' "$dir/combine_fit_utts" "$egs/cv/feats.scp" > "$dir/cv_unseen.scp"
  fi
fi
unseen=""
if grep -q '^combination' "$dir/final_model" && [ "$dir/log/combine.log" -nt "$dir/$last.nnet" ]; then
  unseen="; on the CV frames not used to choose it: $(grep -o 'unseen frames=.*' "$dir/log/combine.log" | tail -n 1)"
fi
echo "$0: done: $dir/final.nnet = $(cat "$dir/final_model"); last iteration CV $(cv_prob "$last"); final CV $(cv_prob final)$unseen"
