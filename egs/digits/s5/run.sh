#!/usr/bin/env bash
# A real speech recipe: spoken English digit strings synthesised with espeak-ng (34 voices as
# speakers, train and test speakers disjoint), Kaldi fbank features, exact frame targets from the
# synthesiser's own phone timings, a monophone GMM baseline, a DNN trained with nnetavg (SGD or
# NG-SGD, one job or several averaged), decoding with an HCLG word-loop graph, and the WER with
# its 95% confidence interval.
#
#   ./run.sh                                    # digits, NG-SGD, 4 jobs averaged (about 3 minutes)
#   ./run.sh --optimizer sgd --nj 1 --exp exp/sgd_nj1 --gmm false
#   ./run.sh --vocab words --data data_words --exp exp_words   # ~150-word vocabulary, more pdfs
#   ./run.sh --preset tiny                      # the small version CI runs
#   ./run.sh --preset hard --data data_hard --exp exp_hard/ngsgd_nj4   # noisy, channels, 80 test speakers
#   local/compare_seeds.sh                      # GMM and DNNs, 3 seeds each, on the hard preset
#
# Results (and the command of each row): RESULTS.md.
set -euo pipefail
cd "$(dirname "$0")"

stage=0
stop_stage=100
preset=default        # tiny | default | hard: corpus size (and network size); hard: see below
vocab=digits          # digits | words
num_words=150         # vocabulary size with --vocab words
snr=20:40             # range of the added white noise's SNR in dB (MIN:MAX)
nj=4                  # parallel training jobs (file averaging between iterations)
parallel=files        # files | mpi
num_iters=10          # training iterations (epochs)
optimizer=ngsgd       # sgd | ngsgd
initial_learning_rate=0.008
final_learning_rate=0.0008
minibatch_size=256
hidden_layers=3
hidden_dim=512
pretrain=false        # initialise the DNN's hidden layers by RBM pretraining (a DBN on the egs' frames)
gmm=true              # also train and decode the monophone GMM baseline
targets=exact         # DNN targets: exact (the synthesiser's timings) | gmm (the GMM's forced alignment)
corpus_seed=1         # seed of the synthetic corpus (voices, sentences, noise)
seed=777              # seed of the DNN's initialisation and frame shuffling (runs of one system differ by it)
cv_spk_percent=10     # percent of the training speakers held out for cross-validation
data=data
exp=exp               # everything of one configuration (models, decodes) goes under here
egs=                  # the egs dir (default: EXP/egs); share one between experiments with the same --nj

help_message="Usage: $0 [--stage N] [--stop-stage N] [--preset tiny|default|hard] [--vocab digits|words]
  [--num-words N] [--snr MIN:MAX] [--nj N] [--parallel files|mpi] [--num-iters N] [--optimizer sgd|ngsgd]
  [--initial-learning-rate R] [--final-learning-rate R] [--minibatch-size N] [--hidden-layers N]
  [--hidden-dim N] [--pretrain true|false] [--gmm true|false] [--targets exact|gmm] [--seed N] [--corpus-seed N] [--cv-spk-percent P] [--data DIR]
  [--exp DIR] [--egs DIR]

Bring your own corpus: a Kaldi data dir (wav.scp, text, utt2spk, spk2utt) in DATA/train and DATA/test,
a Kaldi dict dir in DATA/local/dict and pdf alignments (ark:DATA/ali/pdf.ark, e.g. from a Kaldi GMM
system's ali-to-pdf) let you start at --stage 2 (see the README)."
. ./cmd.sh
. ./path.sh
. steps/parse_options.sh

log() { echo "$(date +%H:%M:%S) run.sh: $*"; }
[ -n "$egs" ] || egs=$exp/egs

case $preset in
  tiny)    corpus=(--num-train-speakers 12 --num-test-speakers 4 --utts-per-speaker 12 --test-utts-per-speaker 6)
           [ $hidden_dim = 512 ] && hidden_dim=256; [ $hidden_layers = 3 ] && hidden_layers=2 ;;
  default) corpus=(--num-train-speakers 24 --num-test-speakers 10 --utts-per-speaker 40 --test-utts-per-speaker 20) ;;
  hard)    # a task that separates systems: 60 training voices, 80 unseen test speakers (40 other voices x 2),
           # ~5000 test words, 300 words + 12 homophone pairs, 5-20 dB of white/pink/babble noise, a
           # telephone/equaliser/room/flat channel per speaker
           corpus=(--num-train-speakers 60 --num-test-speakers 40 --test-speakers-per-voice 2 --utts-per-speaker 40
                   --test-utts-per-speaker 14 --homophones 12 --noise white,pink,babble --channels flat,telephone,eq,reverb)
           vocab=words; num_words=300; [ "$snr" = 20:40 ] && snr=5:20 ;;
  *) echo "$0: unknown --preset $preset" >&2; exit 1 ;;
esac

if [ $stage -le 0 ] && [ $stop_stage -ge 0 ]; then
  log "Stage 0: dependencies: espeak-ng, kaldi-hmm-gmm, kaldifst, kaldi-native-fbank, kaldialign"
  local/install_deps.sh $([ $vocab = words ] && echo true || echo false)
fi

if [ $stage -le 1 ] && [ $stop_stage -ge 1 ]; then
  log "Stage 1: corpus: espeak-ng ($vocab, $preset) -> $data/{train,test}, $data/local/dict/lexicon.txt"
  [ -f $data/test/phone_times ] || make_data.py --seed $corpus_seed --vocab $vocab --num-words $num_words --snr $snr "${corpus[@]}" $data
fi

if [ $stage -le 2 ] && [ $stop_stage -ge 2 ]; then
  log "Stage 2: lang and decoding graph: $data/local/dict -> $data/lang, $data/graph/HCLG.fst"
  [ -f $data/lang/L_disambig.fst ] || prepare-lang $data/local/dict $data/lang
  [ -f $data/graph/HCLG.fst ] || make-loop-graph $data/lang $data/graph/HCLG.fst
fi

if [ $stage -le 3 ] && [ $stop_stage -ge 3 ]; then
  log "Stage 3: features: 40 log mel filterbanks + per-speaker CMVN stats -> $data/{train,test}/feats.scp"
  for part in train test; do
    d=$data/$part
    [ -f $d/feats.scp ] || $train_cmd $d/log/fbank.log compute-fbank-feats --num-mel-bins 40 $d/wav.scp \
      ark,scp:$d/feats.ark,$d/feats.scp
    [ -f $d/cmvn.scp ] || $train_cmd $d/log/cmvn.log compute-cmvn-stats --spk2utt=ark:$d/spk2utt \
      scp:$d/feats.scp ark,scp:$d/cmvn.ark,$d/cmvn.scp
  done
fi

if [ $stage -le 4 ] && [ $stop_stage -ge 4 ]; then
  log "Stage 4: alignments from the synthesiser's phone timings -> $data/ali/{ali,pdf}.ark"
  if [ ! -f $data/ali/pdf.ark ]; then
    $train_cmd $data/ali/log/ali.log ali-from-phone-times $data/lang \
      $data/train/phone_times scp:$data/train/feats.scp ark:$data/ali/ali.ark ark:$data/ali/pdf.ark
  fi
fi
num_pdfs=$(cat $data/lang/num_pdfs 2>/dev/null || echo 0)

if [ $stage -le 5 ] && [ $stop_stage -ge 5 ] && [ $gmm = true ]; then
  log "Stage 5: GMM baseline: MFCC+deltas monophone GMM on the same alignments -> $exp/mono/decode_test/wer"
  if [ ! -f $exp/mono/decode_test/wer ]; then
    mkdir -p $exp/mono/log
    $train_cmd $exp/mono/log/train_decode.log gmm_baseline.py \
      $([ $targets = gmm ] && echo --realign $exp/mono/ali) $data/train $data/test $data/lang \
      $data/graph/HCLG.fst ark:$data/ali/ali.ark $exp/mono/decode_test
    compute-wer $data/test/text $exp/mono/decode_test/hyp.txt > $exp/mono/decode_test/wer 2>$exp/mono/log/score.log
  fi
  log "GMM: $(head -1 $exp/mono/decode_test/wer)  $(tail -1 $exp/mono/decode_test/wer)"
fi

case $targets in
  exact) pdf_ali=$data/ali/pdf.ark ;;
  gmm)   pdf_ali=$exp/mono/ali/pdf.ark ;;
  *) echo "$0: --targets must be exact or gmm" >&2; exit 1 ;;
esac
if [ $stage -le 6 ] && [ $stop_stage -ge 6 ]; then
  log "Stage 6: egs: $data/train + $pdf_ali ($num_pdfs pdfs) -> $egs ($nj archives, $cv_spk_percent% of the speakers for CV)"
  [ -f $pdf_ali ] || { echo "$0: no $pdf_ali (with --targets gmm, run stage 5 with --gmm true)" >&2; exit 1; }
  steps/make_egs.sh --cmd "$train_cmd" --nj $nj --num-pdfs $num_pdfs --cv-spk-percent $cv_spk_percent \
    $data/train ark:$pdf_ali $egs
fi

if [ $stage -le 7 ] && [ $stop_stage -ge 7 ]; then
  input_dim=$(cat $egs/info/input_dim)
  mkdir -p $exp/dnn
  log "Stage 7: DNN $input_dim-${hidden_layers}x$hidden_dim-$num_pdfs, $optimizer, $nj jobs ($parallel), $num_iters iterations -> $exp/dnn/final.nnet"
  if [ $pretrain = true ]; then
    log "Stage 7: RBM pretraining: $hidden_layers RBMs of $hidden_dim units on $egs -> $exp/dbn (the DNN's hidden layers)"
    steps/pretrain_dbn.sh --nn-depth $hidden_layers --hid-dim $hidden_dim --seed $seed $egs $exp/dbn
    [ -f $exp/dnn/0.nnet ] || nnet-init --dbn $exp/dbn/$hidden_layers.dbn --hidden-layers 0 --seed $seed \
      --output-dim $num_pdfs $exp/dnn/0.nnet
  fi
  [ -f $exp/dnn/0.nnet ] || nnet-init --input-dim $input_dim --output-dim $num_pdfs --hidden-layers $hidden_layers \
    --hidden-dim $hidden_dim --seed $seed --write-proto $exp/dnn/nnet.proto $exp/dnn/0.nnet
  common=(--minibatch-size $minibatch_size --optimizer $optimizer
          --initial-learning-rate $initial_learning_rate --final-learning-rate $final_learning_rate --seed $seed)
  if [ $parallel = mpi ]; then
    steps/train_mpi.sh --mpi-cmd "$mpi_cmd" --num-epochs $num_iters "${common[@]}" $egs $exp/dnn/0.nnet $exp/dnn
  else
    steps/train_parallel.sh --cmd "$train_cmd" --num-iters $num_iters "${common[@]}" $egs $exp/dnn/0.nnet $exp/dnn
  fi
fi

if [ $stage -le 8 ] && [ $stop_stage -ge 8 ]; then
  log "Stage 8: decode: $data/test with $exp/dnn/final.nnet and $data/graph -> $exp/dnn/decode_test/wer"
  steps/decode.sh --cmd "$train_cmd" --nj 2 $data/lang $data/graph $data/test $exp/dnn $exp/dnn/decode_test
  log "DNN: $(head -1 $exp/dnn/decode_test/wer)  $(tail -1 $exp/dnn/decode_test/wer)"
fi
