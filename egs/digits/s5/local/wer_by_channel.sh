#!/usr/bin/env bash
# WER of each decoding per test channel (the corpus maker's DATA/test/spk2channel: flat, telephone,
# eq, reverb), one row per decode dir, one column per channel (errors / words in brackets).
#   local/wer_by_channel.sh data_hard exp_hard/gmm_s1/mono/decode_test exp_hard/ngsgd_nj4_s1/dnn/decode_test
set -euo pipefail
cd "$(dirname "$0")/.." && . ./path.sh && cd - >/dev/null
[ $# -ge 2 ] || { echo "usage: $0 DATA DECODE_DIR ..." >&2; exit 1; }
data=$1; shift
map=$data/test/spk2channel
[ -f $map ] || { echo "$0: no $map (a corpus made before channels were recorded?)" >&2; exit 1; }
channels=$(cut -d' ' -f2 $map | sort -u | tr '\n' ' ')
tmp=$(mktemp -d); trap 'rm -rf $tmp' EXIT
for ch in $channels; do   # the utterances of each channel's speakers
  awk -v ch=$ch 'NR == FNR { if ($2 == ch) keep[$1] = 1; next } ($2 in keep) { print $1 }' $map $data/test/utt2spk \
    > $tmp/utts.$ch
  awk 'NR == FNR { keep[$1] = 1; next } ($1 in keep)' $tmp/utts.$ch $data/test/text > $tmp/ref.$ch
done
printf "| decoding |"; for ch in $channels; do printf " %s (%d speakers) |" $ch $(awk -v c=$ch '$2 == c' $map | wc -l); done; echo
printf "|---|"; for ch in $channels; do printf -- "---:|"; done; echo
for d in "$@"; do
  [ -f $d/hyp.txt ] || { echo "$0: no $d/hyp.txt" >&2; exit 1; }
  printf "| %s |" $d
  for ch in $channels; do
    awk 'NR == FNR { keep[$1] = 1; next } ($1 in keep)' $tmp/utts.$ch $d/hyp.txt > $tmp/hyp
    compute-wer --replications 0 $tmp/ref.$ch $tmp/hyp 2>/dev/null | \
      awk '/^%WER / { gsub(",", ""); printf " %s (%s / %s) |", $2, $4, $6 }'
  done
  echo
done
