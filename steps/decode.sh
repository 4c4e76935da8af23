#!/usr/bin/env bash
# Decode a data directory with a trained DNN (Kaldi's steps/nnet/decode.sh): per job, the
# features (per-speaker CMVN when the data dir has cmvn.scp) go through nnet-forward
# (--no-softmax, minus log-priors from the pdf counts), then decode-faster-mapped searches the
# HCLG graph; the hypotheses of all jobs are scored with compute-wer (WER with a 95% bootstrap
# confidence interval) into <decode-dir>/wer.
#
# Model dir inputs: final.nnet, final.feature_transform, ali_train_pdf.counts (analyze-counts).
# Graph dir inputs: HCLG.fst; lang dir (for words and the topology of the transition model).

set -euo pipefail

cmd=run.pl            # job launcher (see cmd.sh)
nj=2                  # parallel decoding jobs (split by speaker)
acoustic_scale=0.1    # scale of the acoustic scores against the graph (Kaldi's default for DNNs)
beam=13.0
lattice_beam=8.0
max_active=7000
prior_scale=1.0
cmvn_opts=""          # extra options of apply-cmvn (must match training's make_egs.sh)
model=final.nnet      # which model of the model dir
use_gpu=no

help_message="Usage: $0 [options] <lang-dir> <graph-dir> <data-dir> <model-dir> <decode-dir>
e.g.: $0 --nj 2 data/lang exp/graph data/test exp/dnn exp/dnn/decode_test
Options: --cmd, --nj, --acoustic-scale, --beam, --lattice-beam, --max-active, --prior-scale, --cmvn-opts, --model, --use-gpu"
. "$(dirname "$0")/parse_options.sh"
. "$(dirname "$0")/common.sh"
log_wall_time   # "$0: wall time N s" at exit

if [ $# -ne 5 ]; then echo "$help_message" >&2; exit 1; fi
lang=$1; graph=$2; data=$3; srcdir=$4; dir=$5

require_files "$graph/HCLG.fst" "$lang/topo" "$lang/words.txt" "$data/feats.scp" "$data/text" "$data/spk2utt" \
  "$srcdir/$model" "$srcdir/final.feature_transform" "$srcdir/ali_train_pdf.counts"
mkdir -p "$dir/log" "$dir/split"

if [ -f "$dir/wer" ] && [ "$dir/wer" -nt "$srcdir/$model" ]; then
  echo "$0: $dir/wer is up to date: $(head -1 "$dir/wer")"; exit 0
fi

# Split the speakers into nj lists of utterances (round robin over speakers).
nj=$(split_by_speaker "$data/spk2utt" "$dir/split" "$nj")
for j in $(seq "$nj"); do
  awk 'NR == FNR { keep[$1] = 1; next } ($1 in keep)' "$dir/split/utts.$j" "$data/feats.scp" > "$dir/split/feats.$j.scp"
done

trans_model_opt=""
# a DNN on a GMM system's pdfs (any tree) decodes with that system's transition model, which
# steps copy next to final.nnet as Kaldi's nnet1 does (final.mdl)
[ -f "$srcdir/final.mdl" ] && trans_model_opt="--trans-model $srcdir/final.mdl"
feats="scp:$dir/split/feats.JOB.scp"
if [ -f "$data/cmvn.scp" ]; then
  feats="ark,s,cs:apply-cmvn $cmvn_opts --utt2spk=ark:$data/utt2spk scp:$data/cmvn.scp scp:$dir/split/feats.JOB.scp ark:- |"
fi

echo "$0: decoding $data ($nj jobs) with $srcdir/$model -> $dir"
$cmd JOB=1:"$nj" "$dir/log/decode.JOB.log" \
  nnet-forward --use-gpu "$use_gpu" --no-softmax=true --prior-scale "$prior_scale" \
    --feature-transform "$srcdir/final.feature_transform" --class-frame-counts "$srcdir/ali_train_pdf.counts" \
    "$srcdir/$model" "$feats" "ark:$dir/loglikes.JOB.ark" '&&' \
  decode-faster-mapped $trans_model_opt --acoustic-scale "$acoustic_scale" --beam "$beam" --lattice-beam "$lattice_beam" \
    --max-active "$max_active" "$lang" "$graph/HCLG.fst" "ark:$dir/loglikes.JOB.ark" "$dir/hyp.JOB.txt" '&&' \
  rm "$dir/loglikes.JOB.ark"

cat $(for j in $(seq "$nj"); do echo "$dir/hyp.$j.txt"; done) | sort > "$dir/hyp.txt"
compute-wer "$data/text" "$dir/hyp.txt" > "$dir/wer.tmp" 2> "$dir/log/score.log"
mv "$dir/wer.tmp" "$dir/wer"
echo "$0: $(head -1 "$dir/wer")  $(grep "^%WER-CI95" "$dir/wer")"
