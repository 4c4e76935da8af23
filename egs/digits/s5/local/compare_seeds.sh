#!/usr/bin/env bash
# Systems against the run-to-run spread (issue 18): every system of --systems is trained and decoded
# once per seed of --seeds on one corpus (default: the hard preset), sharing the corpus, the lang dir
# and one egs dir per number of jobs; then a table of each run's WER with its 95% interval and, per
# system, the mean, the spread over seeds and the pooled interval goes to DIR/results.md.
#
#   local/compare_seeds.sh      # GMM, NG-SGD 4 jobs, SGD 4 jobs, NG-SGD 1 job, NG-SGD 4 jobs pretrained; seeds 1-3 (~2 h)
#   local/compare_seeds.sh --systems "tri1 ngsgd:4 ngsgd:4:exact" --seeds "1 2"
#   local/compare_seeds.sh --report-only true                # rewrite results.md from finished runs
#
# A system is mono or tri1 (the GMM systems of run.sh's stage 5, built once: they are deterministic,
# so one run stands for every seed), OPTIMIZER:JOBS (a DNN, file averaging over JOBS jobs) or
# OPTIMIZER:JOBS:pre (the same, its hidden layers initialised by RBM pretraining with the seed), each
# DNN optionally suffixed :exact (targets: the synthesiser's timings) or :tri1 (the triphone GMM's
# alignment of stage 5, the default of --targets). Finished runs (a decode_test/wer) are not repeated,
# so an interrupted comparison resumes where it stopped. Runs of DNNs on exact targets keep the
# directory names of before (e.g. ngsgd_nj4_s1); on tri1 alignments they are named ..._tri1_s1.
set -euo pipefail
cd "$(dirname "$0")/.."

preset=hard
data=data_hard
dir=exp_hard
systems="mono tri1 ngsgd:4 ngsgd:4:exact sgd:4 ngsgd:1 ngsgd:4:pre"
targets=tri1          # targets of a DNN system without its own :exact / :tri1
seeds="1 2 3"
num_iters=10
report_only=false
. ./path.sh
. steps/parse_options.sh

# dnn_fields SYSTEM: "opt nj pre targets"; run_dir SYSTEM SEED: the experiment dir of one run;
# wer_of SYSTEM SEED: its decoding's wer file
dnn_fields() { local opt nj a b pre="" tg=$targets; IFS=: read -r opt nj a b <<< "$1"
               for x in $a $b; do case $x in pre) pre=pre ;; exact|tri1) tg=$x ;; esac; done; echo "$opt $nj ${pre:--} $tg"; }
run_dir() { case $1 in mono|tri1) echo $dir/gmm ;;
            *) read -r opt nj pre tg <<< "$(dnn_fields $1)"; [ $pre = - ] && pre=""
               echo $dir/${opt}_nj${nj}${pre:+_$pre}$([ $tg = tri1 ] && echo _tri1)_s$2 ;; esac; }
wer_of() { case $1 in mono|tri1) echo $dir/gmm/$1/decode_test/wer ;; *) echo $(run_dir $1 $2)/dnn/decode_test/wer ;; esac; }

if [ $report_only = false ]; then
  ./run.sh --preset $preset --data $data --exp $dir/unused --stop-stage 4
  for seed in $seeds; do
    for s in $systems; do
      e=$(run_dir $s $seed)
      [ -f $(wer_of $s $seed) ] && continue
      case $s in
        mono|tri1) ./run.sh --preset $preset --data $data --exp $dir/gmm --stage 5 --stop-stage 5 ;;
        *) read -r opt nj pre tg <<< "$(dnn_fields $s)"
           if [ $tg = tri1 ]; then
             [ -f $dir/gmm/tri1_ali/ali.1.gz ] || ./run.sh --preset $preset --data $data --exp $dir/gmm --stage 5 --stop-stage 5
             src=(--gmm-dir $dir/gmm/tri1_ali); egs=$dir/egs_tri1_nj$nj
           else
             src=(--targets exact); egs=$dir/egs_nj$nj
           fi
           ./run.sh --preset $preset --data $data --exp $e --egs $egs "${src[@]}" \
             --gmm false --stage 6 --nj $nj --optimizer $opt --seed $seed --num-iters $num_iters \
             --pretrain $([ "$pre" = pre ] && echo true || echo false) ;;
      esac
    done
  done
fi

# results.md: one row per run, then one per system (mean, spread, pooled errors / words)
{
  echo "| system | seed | WER % | 95% CI | errors / words | CV frame acc. |"
  echo "|---|---:|---:|---|---|---:|"
  for s in $systems; do
    for seed in $seeds; do
      case $s in mono|tri1) [ $seed = "${seeds%% *}" ] || continue ;; esac   # one run stands for all seeds
      w=$(wer_of $s $seed); cv=$(run_dir $s $seed)/dnn/log/compute_prob_cv.final.log   # (none for the GMM)
      [ -f "$w" ] || continue
      acc=-
      [ -f "$cv" ] && acc=$(grep -o 'frame-accuracy=[0-9.]*' "$cv" | tail -n 1 | \
        awk -F= '{printf "%.1f%%", 100 * $2}')
      awk -v sys="$s" -v seed="$seed" -v acc="$acc" '
        /^%WER /     { gsub(",", ""); wer = $2; err = $4; n = $6 }
        /^%WER-CI95/ { ci = "[" $3 ", " $5 "]" }
        END { printf "| %s | %s | %s | %s | %s / %s | %s |\n", sys, seed, wer, ci, err, n, acc }' "$w"
    done
  done
} > $dir/results.rows
{
  cat $dir/results.rows
  echo
  echo "| system | runs | mean WER % | spread (min - max) | sd over seeds | pooled errors / words |"
  echo "|---|---:|---:|---|---:|---|"
  awk -F'|' 'NR > 2 && NF > 6 && $3 ~ /[0-9]/ {
    s = $2; gsub(/ /, "", s); w = $4 + 0; split($6, e, "/"); n[s]++; sum[s] += w; sq[s] += w * w
    if (!(s in lo) || w < lo[s]) lo[s] = w; if (!(s in hi) || w > hi[s]) hi[s] = w
    err[s] += e[1]; words[s] += e[2]; if (!(s in order)) { order[s] = ++k; name[k] = s } }
  END { for (i = 1; i <= k; i++) { s = name[i]; m = sum[s] / n[s]
          sd = n[s] > 1 ? sqrt((sq[s] - n[s] * m * m) / (n[s] - 1)) : 0
          printf "| %s | %d | %.2f | %.2f - %.2f | %.2f | %d / %d |\n", s, n[s], m, lo[s], hi[s], sd, err[s], words[s] } }' \
    $dir/results.rows
} > $dir/results.md
rm $dir/results.rows
cat $dir/results.md
