#!/usr/bin/env bash
# Flat-start monophone GMM (Kaldi's steps/train_mono.sh): gmm-train-mono on the data dir's
# features (per-speaker mean normalisation + deltas), no alignments in. Writes <exp-dir>/final.mdl,
# tree, ali.1.gz, num_jobs, phones.txt; log in <exp-dir>/log/train.log. Skipped when final.mdl is
# newer than the data's feats.scp (rerun after a crash: it starts again).
set -euo pipefail
cmd=run.pl
totgauss=1000
num_iters=40
boost_silence=1.0
oov=""
shortest=0            # train on the N shortest utterances (Kaldi recipes use a subset of short utterances)
seed=0
help_message="Usage: $0 [options] <data-dir> <lang-dir> <exp-dir>
e.g.: $0 --totgauss 1000 data/mfcc/train data/lang exp/mono
Options: --cmd, --totgauss, --num-iters, --boost-silence, --oov WORD, --shortest N, --seed"
. "$(dirname "$0")/parse_options.sh"
. "$(dirname "$0")/common.sh"
log_wall_time   # "$0: wall time N s" at exit
[ $# -eq 3 ] || { echo "$help_message" >&2; exit 1; }
data=$1; lang=$2; dir=$3
require_files "$data/feats.scp" "$data/text" "$lang/topo" "$lang/phones.txt"
if [ -f "$dir/final.mdl" ] && [ "$dir/final.mdl" -nt "$data/feats.scp" ] && [ -f "$dir/ali.1.gz" ]; then
  echo "$0: $dir/final.mdl is up to date"; exit 0
fi
mkdir -p "$dir/log"
start=$(date +%s)
$cmd "$dir/log/train.log" gmm-train-mono --totgauss "$totgauss" --num-iters "$num_iters" \
  --boost-silence "$boost_silence" --shortest "$shortest" --seed "$seed" ${oov:+--oov "$oov"} "$data" "$lang" "$dir"
echo "$0: $(grep 'training done' "$dir/log/train.log" | sed 's/^LOG ([^)]*) //') [wall $(( $(date +%s) - start ))s]"
