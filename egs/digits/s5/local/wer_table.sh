#!/usr/bin/env bash
# Prints the WER table of RESULTS.md from the decoding results under the given exp dirs
# (EXP/mono/decode_test/wer and EXP/dnn/decode_test/wer), with the final CV frame accuracy.
#   local/wer_table.sh exp/ngsgd_nj4 exp/ngsgd_nj1 exp/sgd_nj1 exp/sgd_nj4
set -euo pipefail
echo "| system | WER % | 95% CI (bootstrap) | errors / words (ins, del, sub) | SER % | CV frame acc. |"
echo "|---|---:|---|---|---:|---:|"
for e in "$@"; do
  for m in mono dnn; do
    w=$e/$m/decode_test/wer
    [ -f "$w" ] || continue
    acc=$(tail -n 1 "$e/dnn/cv_progress" 2>/dev/null | grep -o 'frame-accuracy=[0-9.]*' | cut -d= -f2)
    awk -v name="$e/$m" -v acc="$([ $m = dnn ] && echo "$acc" || echo -)" '
      /^%WER /    { gsub(",", ""); wer = $2; detail = $4 " / " $6 " (" $7 " ins, " $9 " del, " $11 " sub)" }
      /^%SER /    { ser = $2 }
      /^%WER-CI95/ { ci = "[" $3 ", " $5 "]" }
      END { if (acc != "-" && acc != "") acc = sprintf("%.1f%%", 100 * acc); printf "| %s | %s | %s | %s | %s | %s |\n", name, wer, ci, detail, ser, acc }' "$w"
  done
done
