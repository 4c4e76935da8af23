#!/usr/bin/env bash
# Shared first steps of the local/compare_*.sh experiments: the corpus with CMVN (run.sh stages
# 0-1) and one egs directory per number of jobs, DIR/egs_njN, all with the same CV speakers.
#
#   local/prepare_compare.sh PRESET DIR NJ [NJ ...]
set -euo pipefail
[ $# -ge 3 ] || { echo "usage: $0 PRESET DIR NJ [NJ ...]" >&2; exit 1; }
preset=$1; dir=$2; shift 2
./run.sh --preset "$preset" --stop-stage 1 >/dev/null
num_pdfs=$(cat data/ali/num_pdfs)
mkdir -p "$dir"
for nj in "$@"; do
  [ -f "$dir/egs_nj$nj/final.feature_transform" ] || \
    steps/make_egs.sh --nj "$nj" --num-pdfs "$num_pdfs" data/train ark:data/ali/pdf.ark "$dir/egs_nj$nj" >/dev/null 2>&1
done
