#!/usr/bin/env bash
# The decoding graph of a model dir (Kaldi's utils/mkgraph.sh, for the lang's uniform word loop):
# <graph-dir>/HCLG.fst built by make-graph from <model-dir>/{final.mdl,tree} and <lang-dir>.
set -euo pipefail
cmd=run.pl
help_message="Usage: $0 [options] <lang-dir> <model-dir> <graph-dir>
e.g.: $0 data/lang exp/tri1 exp/tri1/graph"
. "$(dirname "$0")/parse_options.sh"
. "$(dirname "$0")/common.sh"
log_wall_time   # "$0: wall time N s" at exit
[ $# -eq 3 ] || { echo "$help_message" >&2; exit 1; }
lang=$1; mdl=$2; dir=$3
require_files "$mdl/final.mdl" "$mdl/tree" "$lang/L_disambig.fst"
if [ -f "$dir/HCLG.fst" ] && [ "$dir/HCLG.fst" -nt "$mdl/final.mdl" ]; then echo "$0: $dir/HCLG.fst is up to date"; exit 0; fi
mkdir -p "$dir/log"
$cmd "$dir/log/mkgraph.log" make-graph "$lang" "$mdl" "$dir"
echo "$0: $(grep -o 'wrote .*' "$dir/log/mkgraph.log")"
