#!/usr/bin/env bash
# The other experiments of issue 16 on the "big" synthetic preset (3.03M training frames, 300 pdfs),
# sharing local/compare_scaling_big.sh's corpus and 32 archives (run that first, or this makes them):
#
#   ramp      file averaging (steps/train_parallel.sh) with 16 jobs throughout against Kaldi nnet3's
#             job-count ramp 4 -> 16, NG-SGD, the same 3 epochs of data;
#   asgd      one pass of asynchronous averaged SGD (You & Xu, 003: ASGD-hand, the rate decayed per
#             update from 0.008 to 0.0008 over the pass, iterate average) against 3 passes of
#             asynchronous SGD (rate halved per pass),
#             4 workers + 1 server;
#   asgd3x    one pass of ASGD-hand over 3x the data (the "huge" preset: big's 240 speakers and 480
#             more, big's CV speakers left out) against the multi-pass runs of "asgd" on big,
#             all measured on big's CV set: one pass over 3x the data is as many updates as 3 passes;
#   asgdrate  one-pass ASGD-hand as in "asgd" but starting at 0.016 and 0.032 (iterate averaging
#             tolerates larger rates), and with the per-chunk rate search (chunks of 0.5 h);
#   pretrain  RBM pretraining (nnet1's settings) against random initialisation of the same
#             network, 8 jobs averaged through files, 3 iterations (001, Table 2).
#
#   local/compare_big.sh                         # all three -> exp_big/other/results.md
#   local/compare_big.sh --what "asgd"           # one of them
#   local/compare_big.sh --what pretrain --pretrain-optimizers ngsgd
set -euo pipefail
cd "$(dirname "$0")/.."

data=data_big
scaling=exp_big/scaling
dir=exp_big/other
what="ramp asgd pretrain"
hidden_layers=3
hidden_dim=512
num_epochs=3
pretrain_optimizers="sgd ngsgd"   # optimizers of the pretraining comparison
. ./cmd.sh
. ./path.sh
. steps/parse_options.sh

egs32=$scaling/egs_nj32
./run.sh --preset big --nj 32 --data $data --egs $egs32 --exp $scaling/unused --stop-stage 2 --linear-baseline false >/dev/null
num_pdfs=$(cat $data/ali/num_pdfs)
mkdir -p $dir
for n in 4 8 16; do
  [ -f $scaling/egs_nj$n/info/num_archives ] || steps/regroup_egs.sh --nj $n $egs32 $scaling/egs_nj$n >/dev/null
done
[ -f $dir/0.nnet ] || nnet-init --input-dim "$(cat $egs32/info/input_dim)" --output-dim $num_pdfs \
  --hidden-layers $hidden_layers --hidden-dim $hidden_dim $dir/0.nnet 2>/dev/null
timed() {  # timed NAME COMMAND...: runs COMMAND once (skipped when NAME/final.nnet exists), wall time in NAME/seconds
  local name=$1; shift
  local start=$(date +%s)
  if [ ! -f $name/final.nnet ]; then
    "$@" > $name.out
    echo $(( $(date +%s) - start )) > $name/seconds
  fi
}
cv_of() { nnet-compute-prob --feature-transform=$egs32/final.feature_transform $1 scp:$egs32/cv/feats.scp \
            ark:$egs32/cv/ali.ark 2>/dev/null | sed 's/.*frame-accuracy=\([0-9.]*\).*/\1/'; }

results=()
if [[ " $what " == *" ramp "* ]]; then
  timed $dir/files_nj16 steps/train_parallel.sh --cmd "$train_cmd" --num-iters $num_epochs --optimizer ngsgd \
    $scaling/egs_nj16 $dir/0.nnet $dir/files_nj16
  timed $dir/files_ramp4to16 steps/train_parallel.sh --cmd "$train_cmd" --num-iters $num_epochs --optimizer ngsgd \
    --num-jobs-initial 4 --num-jobs-final 16 $scaling/egs_nj16 $dir/0.nnet $dir/files_ramp4to16
  for name in files_nj16 files_ramp4to16; do
    iters=$(grep -c "^steps/train_parallel.sh: iteration" $dir/$name/cv_progress)
    results+=("| file averaging, NG-SGD, ${name#files_} | $iters iterations | $(cv_of $dir/$name/final.nnet) | $(cat $dir/$name/seconds) |")
  done
fi

if [[ " $what " == *" asgd "* ]]; then
  # ASGD-hand: the per-update decay follows the data size (0.008 -> 0.0008 over the pass's updates;
  # 003's fixed 0.999 left 6e-8 after this corpus's ~11800 updates); CV checks on a 50k-frame sample;
  # the Polyak phase only in the second half of the pass (train_asgd.sh's default), and once with the
  # switch allowed from the start (where it came after 600 updates, near chance level)
  timed $dir/asgd_onepass_final steps/train_asgd.sh --mpi-cmd "$mpi_cmd" --learning-rate 0.008 \
    --lr-schedule minibatch-decay --final-learning-rate 0.0008 --polyak-after-fraction 0 \
    $scaling/egs_nj4 $dir/0.nnet $dir/asgd_onepass_final
  results+=("| one-pass ASGD (hand decay 0.008 -> 0.0008 over the pass, averaged, Polyak switch any time), 4 workers | 1 pass | $(cv_of $dir/asgd_onepass_final/final.nnet) | $(cat $dir/asgd_onepass_final/seconds) |")
  timed $dir/asgd_onepass_tail steps/train_asgd.sh --mpi-cmd "$mpi_cmd" --learning-rate 0.008 \
    --lr-schedule minibatch-decay --final-learning-rate 0.0008 $scaling/egs_nj4 $dir/0.nnet $dir/asgd_onepass_tail
  results+=("| one-pass ASGD (the same, Polyak phase in the second half of the pass), 4 workers | 1 pass | $(cv_of $dir/asgd_onepass_tail/final.nnet) | $(cat $dir/asgd_onepass_tail/seconds) |")
  model=$dir/0.nnet; lr=0.008; total=0
  for ((p = 1; p <= num_epochs; p++)); do
    timed $dir/async_pass$p steps/train_asgd.sh --mpi-cmd "$mpi_cmd" --learning-rate $lr --lr-schedule constant \
      --averaged-sgd false --cv-check-every 0 $scaling/egs_nj4 $model $dir/async_pass$p
    total=$((total + $(cat $dir/async_pass$p/seconds)))
    results+=("| multi-pass asynchronous SGD (rate $lr, halved per pass), 4 workers | $p passes | $(cv_of $dir/async_pass$p/final.nnet) | $total |")
    model=$dir/async_pass$p/final.nnet
    lr=$(awk -v l=$lr 'BEGIN{print l / 2}')
  done
fi

if [[ " $what " == *" asgdrate "* ]]; then
  for lr in 0.016 0.032; do
    timed $dir/asgd_onepass_tail_lr$lr steps/train_asgd.sh --mpi-cmd "$mpi_cmd" --learning-rate $lr \
      --lr-schedule minibatch-decay --final-learning-rate 0.0008 $scaling/egs_nj4 $dir/0.nnet $dir/asgd_onepass_tail_lr$lr
    results+=("| one-pass ASGD (hand decay $lr -> 0.0008, Polyak phase in the second half), 4 workers | 1 pass | $(cv_of $dir/asgd_onepass_tail_lr$lr/final.nnet) | $(cat $dir/asgd_onepass_tail_lr$lr/seconds) |")
  done
  timed $dir/asgd_onepass_search steps/train_asgd.sh --mpi-cmd "$mpi_cmd" --learning-rate 0.008 \
    --lr-schedule search --chunk-size 0.5h $scaling/egs_nj4 $dir/0.nnet $dir/asgd_onepass_search
  results+=("| one-pass ASGD (rate searched per 0.5 h chunk, Polyak phase in the second half), 4 workers | 1 pass | $(cv_of $dir/asgd_onepass_search/final.nnet) | $(cat $dir/asgd_onepass_search/seconds) |")
fi

if [[ " $what " == *" asgd3x "* ]]; then
  huge=data_huge
  ./run.sh --preset huge --data $huge --stop-stage 1 >/dev/null
  # the huge training set without big's CV speakers (the same speakers: the generator makes
  # speakers in order), 4 archives; its own 2% CV is unused
  sub=$huge/train_nobigcv; egs3=$dir/egs_huge_nj4
  if [ ! -f $sub/feats.scp ]; then
    mkdir -p $sub
    cut -d- -f1 $egs32/lists/cv.scp | sort -u > $dir/big_cv_speakers
    for f in feats.scp utt2spk text; do grep -v -F -f <(sed 's/$/-/' $dir/big_cv_speakers) $huge/train/$f > $sub/$f; done
    grep -v -w -F -f $dir/big_cv_speakers $huge/train/spk2utt > $sub/spk2utt
    cp $huge/train/cmvn.scp $sub/
  fi
  steps/make_egs.sh --cmd "$train_cmd" --nj 4 --cv-spk-percent 2 --num-pdfs $num_pdfs $sub ark:$huge/ali/pdf.ark $egs3 >/dev/null
  timed $dir/asgd3x_onepass_tail steps/train_asgd.sh --mpi-cmd "$mpi_cmd" --learning-rate 0.008 \
    --lr-schedule minibatch-decay --final-learning-rate 0.0008 $egs3 $dir/0.nnet $dir/asgd3x_onepass_tail
  acc=$(nnet-compute-prob --feature-transform=$egs3/final.feature_transform $dir/asgd3x_onepass_tail/final.nnet \
          scp:$egs32/cv/feats.scp ark:$egs32/cv/ali.ark 2>/dev/null | sed 's/.*frame-accuracy=\([0-9.]*\).*/\1/')
  results+=("| one-pass ASGD (hand decay 0.008 -> 0.0008, Polyak phase in the second half), 4 workers, 3x the data | 1 pass over 3x | $acc | $(cat $dir/asgd3x_onepass_tail/seconds) |")
fi

if [[ " $what " == *" pretrain "* ]]; then
  start=$(date +%s)
  steps/pretrain_dbn.sh --nj 2 --nn-depth $hidden_layers --hid-dim $hidden_dim $scaling/egs_nj16 $dir/dbn > $dir/dbn.out
  [ -f $dir/dbn/seconds ] || echo $(( $(date +%s) - start )) > $dir/dbn/seconds
  [ -f $dir/pretrained.nnet ] || nnet-init --dbn $dir/dbn/$hidden_layers.dbn --hidden-layers 0 \
    --output-dim $num_pdfs $dir/pretrained.nnet 2>/dev/null
  for init in random pretrained; do
    model=$dir/$init.nnet; [ $init = random ] && model=$dir/0.nnet
    for opt in $pretrain_optimizers; do
      timed $dir/${init}_${opt}_nj8 steps/train_parallel.sh --cmd "$train_cmd" --num-iters $num_epochs \
        --optimizer $opt $scaling/egs_nj8 $model $dir/${init}_${opt}_nj8
      results+=("| $init init, $opt, 8 jobs, file averaging | $num_epochs iterations | $(cv_of $dir/${init}_${opt}_nj8/final.nnet) | $(cat $dir/${init}_${opt}_nj8/seconds) |")
    done
  done
  results+=("| (pretraining $hidden_layers RBMs of $hidden_dim units, 2 MPI ranks) | | | $(cat $dir/dbn/seconds) |")
fi

{
  echo "| training | data | CV frame accuracy | wall s |"
  echo "|---|---|---:|---:|"
  printf '%s\n' "${results[@]}"
} > $dir/results.$(echo $what | tr ' ' '_').md
cat $dir/results.$(echo $what | tr ' ' '_').md
