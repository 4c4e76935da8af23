#!/usr/bin/env bash
# Align a data dir with a GMM system (Kaldi's steps/align_si.sh): the utterances split into nj
# lists (by speaker), gmm-align per job through $cmd, alignments in <ali-dir>/ali.JOB.gz with the
# source's final.mdl, tree, phones.txt and num_jobs beside them (what train_deltas.sh and Kaldi's
# steps/nnet/train.sh read).
set -euo pipefail
cmd=run.pl
nj=4
boost_silence=1.0
oov=""
help_message="Usage: $0 [options] <data-dir> <lang-dir> <src-dir> <ali-dir>
e.g.: $0 --nj 4 data/mfcc/train data/lang exp/mono exp/mono_ali
Options: --cmd, --nj, --boost-silence, --oov WORD"
. "$(dirname "$0")/parse_options.sh"
. "$(dirname "$0")/common.sh"
log_wall_time   # "$0: wall time N s" at exit
[ $# -eq 4 ] || { echo "$help_message" >&2; exit 1; }
data=$1; lang=$2; src=$3; dir=$4
require_files "$data/feats.scp" "$data/text" "$data/spk2utt" "$src/final.mdl" "$src/tree"
if [ -f "$dir/num_jobs" ] && [ "$dir/num_jobs" -nt "$src/final.mdl" ]; then
  echo "$0: $dir is up to date"; exit 0
fi
mkdir -p "$dir/log" "$dir/split"
rm -f "$dir"/ali.*.gz "$dir/num_jobs"
nj=$(split_by_speaker "$data/spk2utt" "$dir/split" "$nj")
start=$(date +%s)
$cmd JOB=1:"$nj" "$dir/log/align.JOB.log" \
  gmm-align --boost-silence "$boost_silence" ${oov:+--oov "$oov"} --utt-list "$dir/split/utts.JOB" \
    "$data" "$lang" "$src" "ark:| gzip -c > $dir/ali.JOB.gz"
cp "$src/final.mdl" "$src/tree" "$dir/"
cp "$lang/phones.txt" "$dir/phones.txt"
echo "$nj" > "$dir/num_jobs"
echo "$0: aligned $data with $src in $nj jobs [wall $(( $(date +%s) - start ))s]: $(cat "$dir"/log/align.*.log | grep -o 'aligned [0-9]* utterances ([0-9]* failed)' | awk '{a += $2; f += substr($4, 2)} END {print a " utterances, " f " failed"}')"
