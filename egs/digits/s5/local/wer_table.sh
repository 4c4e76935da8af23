#!/usr/bin/env bash
# Prints the WER table of RESULTS.md from the decoding results under the given exp dirs
# (EXP/{mono,tri1,dnn}/decode_test/wer), with the final CV frame accuracy; an
# experiment with neither is an error naming it.
#   local/wer_table.sh exp/ngsgd_nj4 exp/ngsgd_nj1 exp/sgd_nj1 exp/sgd_nj4
set -euo pipefail
echo "| system | WER % | 95% CI (bootstrap) | errors / words (ins, del, sub) | SER % | CV frame acc. |"
echo "|---|---:|---|---|---:|---:|"
[ $# -gt 0 ] || { echo "usage: $0 EXP_DIR ..." >&2; exit 1; }
for e in "$@"; do
  [ -f "$e/mono/decode_test/wer" ] || [ -f "$e/dnn/decode_test/wer" ] || \
    { echo "$0: $e has no mono/ or dnn/decode_test/wer" >&2; exit 1; }
  for m in mono tri1 dnn; do
    w=$e/$m/decode_test/wer
    [ -f "$w" ] || continue
    acc=""   # the final model's CV (a combination or best-CV choice), else the last iteration's
    for cv in "$e/dnn/log/compute_prob_cv.final.log" "$e/dnn/cv_progress"; do
      [ -f "$cv" ] && { acc=$(grep -o 'frame-accuracy=[0-9.]*' "$cv" | tail -n 1 | cut -d= -f2) || true; break; }
    done
    awk -v name="$e/$m" -v acc="$([ $m = dnn ] && echo "$acc" || echo -)" '
      /^%WER /    { gsub(",", ""); wer = $2; detail = $4 " / " $6 " (" $7 " ins, " $9 " del, " $11 " sub)" }
      /^%SER /    { ser = $2 }
      /^%WER-CI95/ { ci = "[" $3 ", " $5 "]" }
      END { if (acc != "-" && acc != "") acc = sprintf("%.1f%%", 100 * acc); printf "| %s | %s | %s | %s | %s | %s |\n", name, wer, ci, detail, ser, acc }' "$w"
  done
done
