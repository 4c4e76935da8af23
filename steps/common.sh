# Shell functions shared by the steps (sourced, after parse_options.sh).

# require_files FILE...: exits with an error naming the first missing file.
require_files() {
  local f
  for f in "$@"; do
    [ -f "$f" ] || { echo "$0: no such file $f" >&2; exit 1; }
  done
}

# run_mpi LOG NPROC THREADS COMMAND...: runs COMMAND on NPROC ranks with $mpi_cmd (mpiexec, or
# "srun --mpi=pmi2"), THREADS BLAS threads per rank, all output appended to LOG. When the ranks
# exit with 75 (preempted after writing a checkpoint) the command is run again, up to
# $max_requeues (default 5) times, and resumes from its checkpoint. On failure prints the ERROR
# lines of LOG (or its tail) and exits 1.
run_mpi() {
  local log=$1 nproc=$2 threads=$3 rc requeues=0
  shift 3
  while :; do
    rc=0
    # shellcheck disable=SC2086
    OMP_NUM_THREADS=$threads OPENBLAS_NUM_THREADS=$threads MKL_NUM_THREADS=$threads \
      $mpi_cmd -n "$nproc" "$@" >> "$log" 2>&1 || rc=$?
    [ $rc -eq 0 ] && return 0
    if [ $rc -eq 75 ] && [ $requeues -lt "${max_requeues:-5}" ]; then
      requeues=$((requeues + 1))
      echo "$0: preempted; running again from the checkpoint (requeue $requeues/${max_requeues:-5})" | tee -a "$log"
      continue
    fi
    echo "$0: $1 failed (exit $rc); see $log:" >&2
    grep '^ERROR' "$log" | tail -n 5 >&2 || tail -n 5 "$log" >&2
    exit 1
  done
}

# start_exp_dir EGS DIR: checks that EGS has all that make_egs.sh writes, sets nj (its number of
# archives), makes DIR/log and copies the egs' feature transform and pdf counts into DIR, so DIR
# holds everything decoding needs next to its final.nnet.
start_exp_dir() {
  require_files "$1/info/num_archives" "$1/final.feature_transform" "$1/ali_train_pdf.counts" \
    "$1/cv/feats.scp" "$1/cv/ali.ark"
  nj=$(cat "$1/info/num_archives")
  mkdir -p "$2/log"
  cp "$1/final.feature_transform" "$1/ali_train_pdf.counts" "$2/"
}

# split_by_speaker SPK2UTT DIR NJ: the speakers' utterances in round robin over NJ lists
# DIR/utts.1 .. DIR/utts.J, J = min(NJ, number of speakers); prints J (the jobs to run).
split_by_speaker() {
  local spk2utt=$1 dir=$2 nj=$3 nspk
  nspk=$(wc -l < "$spk2utt")
  [ "$nj" -le "$nspk" ] || nj=$nspk
  mkdir -p "$dir"
  awk -v nj="$nj" -v dir="$dir" '{ j = (NR - 1) % nj + 1; for (i = 2; i <= NF; i++) print $i > (dir "/utts." j) }' "$spk2utt"
  echo "$nj"
}

# start_timeline DIR: the step's time account. From here on `timed PHASE ITER COMMAND...` runs
# COMMAND and appends "PHASE ITER START END" (Unix seconds) to DIR/log/timeline; at exit the step
# appends "wall - START END" for the whole run and prints its wall time. nnet-report reads the
# timeline (with the jobs' own figures) into the share of wall time of each phase. A resumed run
# appends: every run's wall and phases count.
start_timeline() {
  _timeline=$1/log/timeline
  mkdir -p "$1/log"
  log_wall_time
}
# log_wall_time: only the wall time, printed at exit (steps whose time is read from their own logs).
log_wall_time() {
  _step_t0=$(now_seconds)
  trap _step_exit EXIT
}
_step_exit() {   # the EXIT trap of both: the wall line of the timeline (if any), the wall time
  local rc=$? t1
  t1=$(now_seconds)
  [ -z "${_timeline:-}" ] || echo "wall - $_step_t0 $t1" >> "$_timeline"
  echo "$0: wall time $(awk -v a="$_step_t0" -v b="$t1" 'BEGIN { printf "%.1f", b - a }') s${_timeline:+ (account: $_timeline)}" >&2
  exit $rc
}
# now_seconds: Unix time with microseconds (bash 5's EPOCHREALTIME, a "." whatever the locale).
now_seconds() { local t=${EPOCHREALTIME:-$(date +%s.%N)}; echo "${t/,/.}"; }
timed() {
  local phase=$1 it=$2 t0 rc=0
  shift 2
  t0=$(now_seconds)
  "$@" || rc=$?
  [ -z "${_timeline:-}" ] || echo "$phase $it $t0 $(now_seconds)" >> "$_timeline"
  return $rc
}
