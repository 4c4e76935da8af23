#!/usr/bin/env bash
# A real speech recipe: spoken English digit strings synthesised with espeak-ng (34 voices as
# speakers, train and test speakers disjoint), Kaldi fbank and MFCC features, a GMM system built
# here as Kaldi builds it (flat-start monophones, then triphones, no timings used), a DNN trained
# with nnetavg on the triphone system's alignment (SGD or NG-SGD, one job or several averaged),
# decoding with HCLG word-loop graphs, and the WER with its 95% confidence interval. The
# synthesiser's phone timings are withheld from training; they measure the alignments and, with
# --targets exact, replace them.
#
#   ./run.sh                                    # digits, GMMs, then NG-SGD, 4 jobs averaged
#   ./run.sh --data DATA --stage 2 --exp EXP    # your corpus: DATA/{train,test} data dirs + DATA/local/dict
#   ./run.sh --gmm-dir /path/to/kaldi/exp/tri3_ali --data DATA --stage 2 --exp EXP   # a Kaldi GMM system's alignments
#   ./run.sh --targets exact --exp exp/exact   # the DNN on the synthesiser's timings (monophone pdfs)
#   ./run.sh --optimizer sgd --nj 1 --exp exp/sgd_nj1 --stage 6
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
targets=tri1          # DNN targets: tri1 (the triphone GMM's alignment, as Kaldi's nnet1 recipes) | mono
                      # (the flat-start monophone GMM's) | exact (the synthesiser's timings, monophone pdfs)
gmm=true              # train and decode the GMM systems (needed unless --targets exact or --gmm-dir)
gmm_dir=              # a GMM alignment dir (final.mdl, tree, ali.*.gz; e.g. Kaldi's exp/tri3_ali): its pdfs are the targets
mono_gauss=1000       # Gaussians of the monophone system (train_mono.sh --totgauss)
mono_shortest=0       # train the monophones on the N shortest utterances (Kaldi recipes' train_10kshort; 0: all);
                      # mono_ali then aligns every utterance
tri1_leaves=300       # leaves of the triphone tree and Gaussians of the triphone system (train_deltas.sh)
tri1_gauss=3000
oov=""                # word for transcript words missing from the lexicon (else those utterances are left out);
                      # it must be in the lexicon (written to lang/oov.txt)
position_dependent_phones=false  # Kaldi's word-position-dependent phones (prepare-lang's default); false here
                      # because --targets exact needs the synthesiser's plain phones
corpus_seed=1         # seed of the synthetic corpus (voices, sentences, noise)
sample_rate=0         # resample the corpus' audio to this rate (e.g. 8000; 0: espeak-ng's 22050 Hz)
seed=777              # seed of the DNN's initialisation and frame shuffling (runs of one system differ by it)
train_opts=""         # extra options for the DNN trainer (e.g. "--rank-out=80 --update-period=4": Kaldi's)
cv_spk_percent=10     # percent of the training speakers held out for cross-validation
data=data
exp=exp               # everything of one configuration (models, decodes) goes under here
egs=                  # the egs dir (default: EXP/egs); share one between experiments with the same --nj

help_message="Usage: $0 [--stage N] [--stop-stage N] [--preset tiny|default|hard] [--vocab digits|words]
  [--num-words N] [--snr MIN:MAX] [--nj N] [--parallel files|mpi] [--num-iters N] [--optimizer sgd|ngsgd]
  [--initial-learning-rate R] [--final-learning-rate R] [--minibatch-size N] [--hidden-layers N]
  [--hidden-dim N] [--pretrain true|false] [--gmm true|false] [--targets tri1|mono|exact] [--gmm-dir DIR]
  [--mono-gauss N] [--mono-shortest N] [--tri1-leaves N] [--tri1-gauss N] [--oov WORD] [--position-dependent-phones true|false] [--seed N] [--corpus-seed N] [--sample-rate HZ] [--cv-spk-percent P]
  [--data DIR] [--exp DIR] [--egs DIR]

Bring your own corpus: Kaldi data dirs (wav.scp, text, utt2spk, spk2utt) in DATA/train and DATA/test
and a Kaldi dict dir in DATA/local/dict, then --stage 2: features, a flat-start monophone and a
triphone GMM system, the DNN on the triphone system's pdfs and the WERs. With a Kaldi GMM system,
--gmm-dir points at its alignment dir instead (see the README)."
. ./cmd.sh
. ./path.sh
. steps/parse_options.sh

log() { echo "$(date +%H:%M:%S) run.sh: $*"; }
[ -n "$egs" ] || egs=$exp/egs

case $preset in
  tiny)    corpus=(--num-train-speakers 12 --num-test-speakers 4 --utts-per-speaker 12 --test-utts-per-speaker 6)
           [ $hidden_dim = 512 ] && hidden_dim=256; [ $hidden_layers = 3 ] && hidden_layers=2
           [ $mono_gauss = 1000 ] && mono_gauss=300; [ $tri1_leaves = 300 ] && tri1_leaves=100; [ $tri1_gauss = 3000 ] && tri1_gauss=600 ;;
  default) corpus=(--num-train-speakers 24 --num-test-speakers 10 --utts-per-speaker 40 --test-utts-per-speaker 20) ;;
  hard)    # a task that separates systems: 60 training voices, 80 unseen test speakers (40 other voices x 2),
           # ~5000 test words, 300 words + 12 homophone pairs, 5-20 dB of white/pink/babble noise, a
           # telephone/equaliser/room/flat channel per speaker
           corpus=(--num-train-speakers 60 --num-test-speakers 40 --test-speakers-per-voice 2 --utts-per-speaker 40
                   --test-utts-per-speaker 14 --homophones 12 --noise white,pink,babble --channels flat,telephone,eq,reverb)
           vocab=words; num_words=300; [ "$snr" = 20:40 ] && snr=5:20
           [ $tri1_leaves = 300 ] && tri1_leaves=800; [ $tri1_gauss = 3000 ] && tri1_gauss=8000 ;;
  *) echo "$0: unknown --preset $preset" >&2; exit 1 ;;
esac

if [ $stage -le 0 ] && [ $stop_stage -ge 0 ]; then
  log "Stage 0: dependencies: espeak-ng, kaldi-hmm-gmm, kaldifst, kaldi-native-fbank, kaldialign"
  local/install_deps.sh $([ $vocab = words ] && echo true || echo false)
fi

if [ $stage -le 1 ] && [ $stop_stage -ge 1 ]; then
  log "Stage 1: corpus: espeak-ng ($vocab, $preset) -> $data/{train,test}, $data/local/dict/lexicon.txt"
  [ -f $data/test/phone_times ] || make_data.py --seed $corpus_seed --sample-rate $sample_rate --vocab $vocab --num-words $num_words --snr $snr "${corpus[@]}" $data
fi

if [ $stage -le 2 ] && [ $stop_stage -ge 2 ]; then
  log "Stage 2: lang and decoding graph: $data/local/dict -> $data/lang, $data/graph/HCLG.fst"
  [ -f $data/lang/L_disambig.fst ] || prepare-lang --position-dependent-phones=$position_dependent_phones \
    ${oov:+--oov "$oov"} $data/local/dict $data/lang
  [ -f $data/graph/HCLG.fst ] || make-loop-graph $data/lang $data/graph/HCLG.fst
fi

if [ $stage -le 3 ] && [ $stop_stage -ge 3 ]; then
  log "Stage 3: features: 40 log mel filterbanks (DNN) and 13 MFCCs (GMM; conf/fbank.conf, conf/mfcc.conf) + per-speaker CMVN stats -> $data/{train,test}, $data/mfcc/{train,test}"
  for part in train test; do
    d=$data/$part
    [ -f $d/feats.scp ] || $train_cmd $d/log/fbank.log compute-fbank-feats --config conf/fbank.conf $d/wav.scp \
      ark,scp:$d/feats.ark,$d/feats.scp
    [ -f $d/cmvn.scp ] || $train_cmd $d/log/cmvn.log compute-cmvn-stats --spk2utt=ark:$d/spk2utt \
      scp:$d/feats.scp ark,scp:$d/cmvn.ark,$d/cmvn.scp
    m=$data/mfcc/$part
    if [ ! -f $m/cmvn.scp ]; then
      mkdir -p $m
      for f in wav.scp text utt2spk spk2utt phone_times; do [ -f $d/$f ] && cp $d/$f $m/; done
      $train_cmd $m/log/mfcc.log compute-mfcc-feats --config conf/mfcc.conf $m/wav.scp ark,scp:$m/feats.ark,$m/feats.scp
      $train_cmd $m/log/cmvn.log compute-cmvn-stats --spk2utt=ark:$m/spk2utt scp:$m/feats.scp ark,scp:$m/cmvn.ark,$m/cmvn.scp
    fi
  done
fi

if [ $stage -le 4 ] && [ $stop_stage -ge 4 ] && [ $targets = exact ]; then
  log "Stage 4: alignments from the synthesiser's phone timings -> $data/ali/{ali,pdf}.ark (the targets of --targets exact)"
  if [ ! -f $data/ali/pdf.ark ]; then
    $train_cmd $data/ali/log/ali.log ali-from-phone-times $data/lang \
      $data/train/phone_times scp:$data/train/feats.scp ark:$data/ali/ali.ark ark:$data/ali/pdf.ark
  fi
fi

case $targets in
  exact) [ -f $data/train/phone_times ] || { echo "$0: --targets exact needs $data/train/phone_times" >&2; exit 1; }
         alidir=""; num_pdfs=$(cat $data/lang/num_pdfs) ;;
  mono)  alidir=$exp/mono_ali ;;
  tri1)  alidir=$exp/tri1_ali ;;
  *) echo "$0: --targets must be tri1, mono or exact" >&2; exit 1 ;;
esac
[ -n "$gmm_dir" ] && alidir=$gmm_dir
[ -z "$gmm_dir" ] && [ $targets != exact ] && gmm=true
if [ $stage -le 5 ] && [ $stop_stage -ge 5 ] && [ $gmm = true ]; then
  log "Stage 5: GMM systems (no timings): flat-start monophones -> $exp/mono, $exp/mono_ali; triphones ($tri1_leaves leaves, $tri1_gauss Gaussians) -> $exp/tri1, $exp/tri1_ali"
  mfcc=$data/mfcc
  steps/train_mono.sh --cmd "$train_cmd" --totgauss $mono_gauss --shortest $mono_shortest ${oov:+--oov $oov} \
    $mfcc/train $data/lang $exp/mono
  steps/align_si.sh --cmd "$train_cmd" --nj $nj ${oov:+--oov $oov} $mfcc/train $data/lang $exp/mono $exp/mono_ali
  steps/train_deltas.sh --cmd "$train_cmd" ${oov:+--oov $oov} $tri1_leaves $tri1_gauss $mfcc/train $data/lang $exp/mono_ali $exp/tri1
  steps/align_si.sh --cmd "$train_cmd" --nj $nj ${oov:+--oov $oov} $mfcc/train $data/lang $exp/tri1 $exp/tri1_ali
  for sys in mono tri1; do
    steps/mkgraph.sh --cmd "$train_cmd" $data/lang $exp/$sys $exp/$sys/graph
    steps/decode_gmm.sh --cmd "$train_cmd" --nj 2 $exp/$sys/graph $mfcc/test $exp/$sys $exp/$sys/decode_test
    log "GMM $sys: $(head -1 $exp/$sys/decode_test/wer)  $(grep "^%WER-CI95" $exp/$sys/decode_test/wer)"
  done
  if [ -f $data/train/phone_times ]; then
    for a in mono_ali tri1_ali; do
      ali_agreement.py --per-phone 5 $data/train $exp/$a > $exp/$a/agreement
      log "$a: $(head -1 $exp/$a/agreement)"
    done
  fi
fi

if [ -n "$alidir" ]; then
  pdf_ali=$alidir/pdf.ark
  if [ $stage -le 6 ] && [ $stop_stage -ge 6 ] && { [ ! -f $pdf_ali ] || [ $alidir/final.mdl -nt $pdf_ali ]; }; then
    [ -f $alidir/final.mdl ] && ls $alidir/ali.*.gz >/dev/null 2>&1 || \
      { echo "$0: $alidir has no final.mdl and ali.*.gz (run stage 5, or point --gmm-dir at a GMM alignment dir)" >&2; exit 1; }
    ali-to-pdf $alidir/final.mdl "ark:gunzip -c $alidir/ali.*.gz |" ark:$pdf_ali 2> $alidir/ali_to_pdf.log
  fi
  num_pdfs=0
  [ -f $alidir/final.mdl ] && num_pdfs=$(hmm-info $alidir/final.mdl | awk '/pdfs/ {print $4}')
else
  pdf_ali=$data/ali/pdf.ark
fi
if [ $stage -le 6 ] && [ $stop_stage -ge 6 ]; then
  log "Stage 6: egs: $data/train + $pdf_ali ($num_pdfs pdfs) -> $egs ($nj archives, $cv_spk_percent% of the speakers for CV)"
  [ -f $pdf_ali ] || { echo "$0: no $pdf_ali (run the stages before)" >&2; exit 1; }
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
  # a DNN on a GMM system's pdfs keeps that system's transition model beside it (Kaldi's nnet1
  # does the same): decoding maps pdfs to its transition ids
  [ -n "$alidir" ] && copy-transition-model $alidir/final.mdl $exp/dnn/final.mdl 2>/dev/null
  [ -f $exp/dnn/0.nnet ] || nnet-init --input-dim $input_dim --output-dim $num_pdfs --hidden-layers $hidden_layers \
    --hidden-dim $hidden_dim --seed $seed --write-proto $exp/dnn/nnet.proto $exp/dnn/0.nnet
  common=(--minibatch-size $minibatch_size --optimizer $optimizer
          --initial-learning-rate $initial_learning_rate --final-learning-rate $final_learning_rate --seed $seed)
  if [ $parallel = mpi ]; then
    steps/train_mpi.sh --mpi-cmd "$mpi_cmd" --num-epochs $num_iters "${common[@]}" $egs $exp/dnn/0.nnet $exp/dnn
  else
    steps/train_parallel.sh --cmd "$train_cmd" --num-iters $num_iters "${common[@]}" --train-opts "$train_opts" \
      $egs $exp/dnn/0.nnet $exp/dnn
  fi
fi

if [ $stage -le 8 ] && [ $stop_stage -ge 8 ]; then
  graph=$data/graph
  if [ -n "$alidir" ]; then
    graph=$alidir/graph
    steps/mkgraph.sh --cmd "$train_cmd" $data/lang $alidir $graph
  fi
  log "Stage 8: decode: $data/test with $exp/dnn/final.nnet and $graph -> $exp/dnn/decode_test/wer"
  steps/decode.sh --cmd "$train_cmd" --nj 2 $data/lang $graph $data/test $exp/dnn $exp/dnn/decode_test
  log "DNN: $(head -1 $exp/dnn/decode_test/wer)  $(grep "^%WER-CI95" $exp/dnn/decode_test/wer)"
fi
