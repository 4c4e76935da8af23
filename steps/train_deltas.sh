#!/usr/bin/env bash
# Triphone GMM (Kaldi's steps/train_deltas.sh): gmm-train-deltas from <ali-dir>'s alignments
# (tree of <num-leaves> leaves, Gaussians grown to <tot-gauss>, realignment at passes 10, 20, 30).
set -euo pipefail
cmd=run.pl
boost_silence=1.0
oov=""
seed=0
help_message="Usage: $0 [options] <num-leaves> <tot-gauss> <data-dir> <lang-dir> <ali-dir> <exp-dir>
e.g.: $0 300 3000 data/mfcc/train data/lang exp/mono_ali exp/tri1
Options: --cmd, --boost-silence, --oov WORD, --seed"
. "$(dirname "$0")/parse_options.sh"
. "$(dirname "$0")/common.sh"
log_wall_time   # "$0: wall time N s" at exit
[ $# -eq 6 ] || { echo "$help_message" >&2; exit 1; }
leaves=$1; gauss=$2; data=$3; lang=$4; alidir=$5; dir=$6
require_files "$data/feats.scp" "$data/text" "$alidir/final.mdl" "$alidir/tree" "$alidir/ali.1.gz"
if [ -f "$dir/final.mdl" ] && [ "$dir/final.mdl" -nt "$alidir/final.mdl" ] && [ -f "$dir/ali.1.gz" ]; then
  echo "$0: $dir/final.mdl is up to date"; exit 0
fi
mkdir -p "$dir/log"
start=$(date +%s)
$cmd "$dir/log/train.log" gmm-train-deltas --boost-silence "$boost_silence" --seed "$seed" ${oov:+--oov "$oov"} \
  "$leaves" "$gauss" "$data" "$lang" "$alidir" "$dir"
echo "$0: $(grep -o 'tree: .*pdfs after clustering' "$dir/log/train.log"); $(grep 'training done' "$dir/log/train.log" | sed 's/^LOG ([^)]*) //') [wall $(( $(date +%s) - start ))s]"
