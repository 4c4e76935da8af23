#!/usr/bin/env bash
# Regroups the archives of an egs directory into fewer ones without copying any features: archive
# J of the new directory lists the utterances of source archives J, J+N, J+2N, ... (its scp points
# into the source's .ark files; the pdf alignments, small, are concatenated). The CV set, the pdf
# counts and the feature transform are shared. So one make_egs.sh run with the largest number of
# jobs serves experiments at every smaller number that divides it, on exactly the same data.
#
# Outputs in DST: feats.{1..N}.scp, ali.{1..N}.ark, cv -> SRC/cv, ali_train_pdf.counts,
# final.feature_transform, info/{num_archives,num_pdfs,input_dim}.

set -euo pipefail

# Begin configuration.
nj=1        # archives in DST (a divisor of SRC's number of archives)
# End configuration.

help_message="Usage: $0 --nj N <src-egs-dir> <dst-egs-dir>
e.g.: $0 --nj 4 egs32 egs4
Options: --nj"
. "$(dirname "$0")/parse_options.sh"
. "$(dirname "$0")/common.sh"
log_wall_time   # "$0: wall time N s" at exit

if [ $# -ne 2 ]; then echo "$help_message" >&2; exit 1; fi
src=$(cd "$1" && pwd); dst=$2
require_files "$src/info/num_archives" "$src/final.feature_transform" "$src/ali_train_pdf.counts" \
  "$src/cv/feats.scp" "$src/cv/ali.ark"
n_src=$(cat "$src/info/num_archives")
if [ "$nj" -lt 1 ] || [ $((n_src % nj)) -ne 0 ]; then
  echo "$0: --nj $nj does not divide the $n_src archives of $src" >&2; exit 1
fi
mkdir -p "$dst/info"
for j in $(seq 1 "$nj"); do
  scps=() alis=()
  for k in $(seq "$j" "$nj" "$n_src"); do
    require_files "$src/feats.$k.scp" "$src/ali.$k.ark"
    scps+=("$src/feats.$k.scp"); alis+=("$src/ali.$k.ark")
  done
  cat "${scps[@]}" > "$dst/feats.$j.scp.tmp" && mv "$dst/feats.$j.scp.tmp" "$dst/feats.$j.scp"
  cat "${alis[@]}" > "$dst/ali.$j.ark.tmp" && mv "$dst/ali.$j.ark.tmp" "$dst/ali.$j.ark"
done
ln -sfn "$src/cv" "$dst/cv"
cp "$src/final.feature_transform" "$src/ali_train_pdf.counts" "$dst/"
cp "$src/info/num_pdfs" "$src/info/input_dim" "$dst/info/"
echo "$nj" > "$dst/info/num_archives"
echo "$0: $dst: $nj archives regrouped from the $n_src of $src (features not copied)"
