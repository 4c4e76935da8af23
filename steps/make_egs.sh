#!/usr/bin/env bash
# Splits a Kaldi data directory and its pdf alignments into per-job training archives ("egs"),
# holds out about 10% of the speakers for cross-validation, writes the pdf counts (priors) and
# nnet1's feature transform (splice +-N frames, global CMVN of the spliced features).
#
# Features are stored unspliced; the trainers splice them on the fly through the transform.
# Per-speaker CMVN from DATA/cmvn.scp is applied when that file exists.
#
# Outputs in EGS_DIR: feats.{1..nj}.{ark,scp}, ali.{1..nj}.ark, cv/{feats.ark,feats.scp,ali.ark},
# ali_train_pdf.counts, final.feature_transform, info/{num_archives,num_pdfs,input_dim}, log/.

set -euo pipefail

# Begin configuration.
cmd=run.pl            # job launcher (run.pl, or slurm.pl on a cluster; see cmd.sh)
nj=4                  # number of training archives = number of parallel training jobs
cv_spk_percent=10     # percent of speakers held out for cross-validation
seed=777              # seed of the CV choice and of the utterance shuffling
splice=5              # frames of context on each side in the feature transform
cmvn_opts=""          # extra options of apply-cmvn, e.g. "--norm-vars true"
num_pdfs=0            # number of pdfs, the network's output dim (required; Kaldi: from the tree)
stage=0
# End configuration.

help_message="Usage: $0 [options] <data-dir> <ali-rspecifier> <egs-dir>
e.g.: $0 --nj 4 data/train ark:data/ali/pdf.ark egs
Options: --cmd, --nj, --cv-spk-percent, --seed, --splice, --cmvn-opts, --num-pdfs, --stage"
. "$(dirname "$0")/parse_options.sh"
. "$(dirname "$0")/common.sh"

if [ $# -ne 3 ]; then echo "$help_message" >&2; exit 1; fi
data=$1; ali=$2; dir=$3
[ "$num_pdfs" -gt 0 ] || { echo "$0: --num-pdfs is required (the number of pdfs in the alignments' tree)" >&2; exit 1; }

for f in "$data/feats.scp" "$data/utt2spk"; do
  [ -f "$f" ] || { echo "$0: no such file $f" >&2; exit 1; }
done
if [ -f "$dir/info/num_archives" ] && [ "$(cat "$dir/info/num_archives")" != "$nj" ]; then
  echo "$0: $dir holds $(cat "$dir/info/num_archives") archives, not --nj $nj: use another egs dir" >&2; exit 1
fi
if [ -f "$dir/info/num_pdfs" ] && [ "$(cat "$dir/info/num_pdfs")" != "$num_pdfs" ]; then
  echo "$0: $dir was made for $(cat "$dir/info/num_pdfs") pdfs, not $num_pdfs: use another egs dir" >&2; exit 1
fi
mkdir -p "$dir/log" "$dir/lists" "$dir/cv" "$dir/info"
start_timeline "$dir"   # its wall time: $dir/log/timeline

feats_of() {  # feats_of <scp>: an rspecifier of the (CMVN-normalised) features listed in <scp>
  if [ -f "$data/cmvn.scp" ]; then
    echo "ark,s,cs:apply-cmvn $cmvn_opts --utt2spk=ark:$data/utt2spk scp:$data/cmvn.scp scp:$1 ark:- |"
  else
    echo "scp:$1"
  fi
}

if [ $stage -le 0 ] && [ ! -f "$dir/lists/.done" ]; then
  echo "$0: stage 0: split $data into $nj archives and a CV set -> $dir/lists"
  $cmd "$dir/log/split.log" nnet-split-data --num-archives "$nj" --cv-spk-percent "$cv_spk_percent" \
    --seed "$seed" "$data" "$dir/lists"
  touch "$dir/lists/.done"
fi

if [ $stage -le 1 ] && [ ! -f "$dir/.egs_done" ]; then
  echo "$0: stage 1: write the archives: features and pdf alignments -> $dir/feats.JOB.ark, $dir/ali.JOB.ark"
  $cmd JOB=1:"$nj" "$dir/log/egs.JOB.log" nnet-copy-egs --num-pdfs "$num_pdfs" \
    "$(feats_of "$dir/lists/feats.JOB.scp")" "$ali" \
    "ark,scp:$dir/feats.JOB.ark,$dir/feats.JOB.scp" "ark:$dir/ali.JOB.ark"
  $cmd "$dir/log/egs.cv.log" nnet-copy-egs --num-pdfs "$num_pdfs" \
    "$(feats_of "$dir/lists/cv.scp")" "$ali" \
    "ark,scp:$dir/cv/feats.ark,$dir/cv/feats.scp" "ark:$dir/cv/ali.ark"
  touch "$dir/.egs_done"
fi

if [ $stage -le 2 ] && [ ! -f "$dir/final.feature_transform" ]; then
  echo "$0: stage 2: pdf counts and the feature transform"
  $cmd "$dir/log/analyze_counts.log" analyze-counts --binary=false --counts-dim="$num_pdfs" \
    "ark:cat $dir/ali.*.ark |" "$dir/ali_train_pdf.counts"
  $cmd "$dir/log/feature_transform.log" make-feature-transform --splice="$splice" \
    "scp:$dir/feats.1.scp" "$dir/final.feature_transform"
fi

echo "$nj" > "$dir/info/num_archives"
nnet-info --print=output-dim "$dir/final.feature_transform" > "$dir/info/input_dim"
echo "$num_pdfs" > "$dir/info/num_pdfs"
echo "$0: egs in $dir: $nj archives, input dim $(cat "$dir/info/input_dim"), $(cat "$dir/info/num_pdfs") pdfs"
