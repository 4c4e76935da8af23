#!/usr/bin/env bash
# Decode a data dir with a GMM system (Kaldi's steps/decode.sh for GMMs, best path only): nj jobs
# of gmm-decode-faster through $cmd, hypotheses scored with compute-wer into <decode-dir>/wer.
set -euo pipefail
cmd=run.pl
nj=2
acoustic_scale=0.1
beam=13.0
help_message="Usage: $0 [options] <graph-dir> <data-dir> <model-dir> <decode-dir>
e.g.: $0 --nj 2 exp/tri1/graph data/mfcc/test exp/tri1 exp/tri1/decode_test
Options: --cmd, --nj, --acoustic-scale, --beam"
. "$(dirname "$0")/parse_options.sh"
. "$(dirname "$0")/common.sh"
log_wall_time   # "$0: wall time N s" at exit
[ $# -eq 4 ] || { echo "$help_message" >&2; exit 1; }
graph=$1; data=$2; mdl=$3; dir=$4
require_files "$graph/HCLG.fst" "$graph/words.txt" "$data/feats.scp" "$data/text" "$data/spk2utt" "$mdl/final.mdl"
if [ -f "$dir/wer" ] && [ "$dir/wer" -nt "$mdl/final.mdl" ] && [ "$dir/wer" -nt "$graph/HCLG.fst" ]; then
  echo "$0: $dir/wer is up to date: $(head -1 "$dir/wer")"; exit 0
fi
mkdir -p "$dir/log" "$dir/split"
nj=$(split_by_speaker "$data/spk2utt" "$dir/split" "$nj")
$cmd JOB=1:"$nj" "$dir/log/decode.JOB.log" \
  gmm-decode-faster --acoustic-scale "$acoustic_scale" --beam "$beam" --utt-list "$dir/split/utts.JOB" \
    "$mdl" "$graph" "$data" "$dir/hyp.JOB.txt"
cat "$dir"/hyp.*.txt | sort > "$dir/hyp.txt"
compute-wer "$data/text" "$dir/hyp.txt" > "$dir/wer.tmp" 2> "$dir/log/score.log"
mv "$dir/wer.tmp" "$dir/wer"
echo "$0: $(head -1 "$dir/wer")"
