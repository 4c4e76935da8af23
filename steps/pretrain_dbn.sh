#!/usr/bin/env bash
# RBM pretraining of a deep belief network (nnet1's steps/nnet/pretrain_dbn.sh): layer 1 is a
# Gaussian-Bernoulli RBM on the CMVN-normalised spliced features (learning rate 0.01, twice the
# passes), layers 2..N Bernoulli-Bernoulli RBMs on the previous layers' outputs (learning rate
# 0.4, visible bias from the mean activation). After each layer the RBM becomes an
# <AffineTransform> + <Sigmoid> and is appended to the DBN.
#
# With --nj N > 1 each RBM is trained on N MPI ranks (one training archive each) that average
# the RBM every --average-every minibatches.
#
# Outputs in EXP_DIR: 1.dbn .. N.dbn (N.dbn is the DBN), final.feature_transform, log/.
# Finished layers are not retrained.

set -euo pipefail

# Begin configuration.
nn_depth=6                 # number of RBM layers
hid_dim=2048               # units per layer
rbm_iter=1                 # passes over the data per Bernoulli layer (the Gaussian layer: twice this)
rbm_lrate=0.4              # learning rate of Bernoulli-Bernoulli RBMs
rbm_lrate_low=0.01         # learning rate of the Gaussian-Bernoulli first RBM
rbm_l2penalty=0.0002
param_stddev=0.1
minibatch_size=100
nj=1                       # MPI ranks (1: a single process)
mpi_cmd=mpiexec
average_every=10
seed=777
# End configuration.

help_message="Usage: $0 [options] <egs-dir> <exp-dir>
e.g.: $0 --nn-depth 6 --hid-dim 2048 egs exp/dbn
Options: --nn-depth, --hid-dim, --rbm-iter, --rbm-lrate, --rbm-lrate-low, --rbm-l2penalty, --param-stddev,
  --minibatch-size, --nj, --mpi-cmd, --average-every, --seed"
. "$(dirname "$0")/parse_options.sh"
. "$(dirname "$0")/common.sh"

if [ $# -ne 2 ]; then echo "$help_message" >&2; exit 1; fi
egs=$1; dir=$2
for f in "$egs/final.feature_transform" "$egs/feats.1.scp"; do
  [ -f "$f" ] || { echo "$0: no such file $f" >&2; exit 1; }
done
mkdir -p "$dir/log"
start_timeline "$dir"   # its wall time: $dir/log/timeline
cp "$egs/final.feature_transform" "$dir/final.feature_transform"
cat "$egs"/feats.*.scp > "$dir/train.scp"
if [ "$nj" -gt 1 ]; then
  # every archive's utterances, dealt round-robin to the ranks (not archives 1..nj only)
  for j in $(seq "$nj"); do
    awk -v j="$j" -v n="$nj" 'NR % n == j % n' "$dir/train.scp" > "$dir/train.$j.scp"
    [ -s "$dir/train.$j.scp" ] || { echo "$0: fewer utterances than --nj $nj" >&2; exit 1; }
  done
  feats="scp:$dir/train.JOB.scp"
  train=(env OPENBLAS_NUM_THREADS=1 $mpi_cmd -n "$nj" rbm-train-cd1 --mpi=true --average-every="$average_every")
else
  feats="scp:$dir/train.scp"
  train=(rbm-train-cd1)
fi

for ((d = 1; d <= nn_depth; d++)); do
  [ -f "$dir/$d.dbn" ] && continue
  transform=$dir/final.feature_transform
  if [ $d -gt 1 ]; then
    nnet-concat "$dir/final.feature_transform" "$dir/$((d - 1)).dbn" "$dir/tr.$d" 2>>"$dir/log/concat.$d.log"
    transform=$dir/tr.$d
    vis_dim=$hid_dim
    nnet-init-rbm --visible-type=bern --hidden-type=bern --param-stddev="$param_stddev" --seed=$((seed + d)) \
      --visible-bias-from="scp:$dir/train.scp" --feature-transform="$transform" --max-utts=2000 \
      "$vis_dim" "$hid_dim" "$dir/$d.rbm.init" 2>"$dir/log/init.$d.log"
    lrate=$rbm_lrate; iters=$rbm_iter
  else
    vis_dim=$(nnet-info --print=output-dim "$transform" 2>/dev/null)
    nnet-init-rbm --visible-type=gauss --hidden-type=bern --param-stddev="$param_stddev" --seed=$((seed + d)) \
      "$vis_dim" "$hid_dim" "$dir/$d.rbm.init" 2>"$dir/log/init.$d.log"
    lrate=$rbm_lrate_low; iters=$((2 * rbm_iter))
  fi
  echo "$0: layer $d/$nn_depth: $([ $d -eq 1 ] && echo Gaussian || echo Bernoulli)-Bernoulli RBM $vis_dim -> $hid_dim, lr $lrate, $iters pass(es)"
  if ! "${train[@]}" --learn-rate="$lrate" --l2-penalty="$rbm_l2penalty" --num-iters="$iters" \
       --minibatch-size="$minibatch_size" --randomizer-seed=$((seed + d)) --feature-transform="$transform" \
       "$dir/$d.rbm.init" "$feats" "$dir/$d.rbm" > "$dir/log/rbm.$d.log" 2>&1; then
    echo "$0: training RBM $d failed; see $dir/log/rbm.$d.log" >&2
    grep '^ERROR' "$dir/log/rbm.$d.log" >&2 || tail -n 5 "$dir/log/rbm.$d.log" >&2
    exit 1
  fi
  grep 'iteration' "$dir/log/rbm.$d.log" | grep 'rank 0/' | sed 's/.*) /  /'
  rbm-convert-to-nnet "$dir/$d.rbm" "$dir/$d.layer" 2>/dev/null
  if [ $d -eq 1 ]; then
    nnet-copy "$dir/1.layer" "$dir/1.dbn" 2>/dev/null
  else
    nnet-concat "$dir/$((d - 1)).dbn" "$dir/$d.layer" "$dir/$d.dbn" 2>/dev/null
  fi
  rm -f "$dir/$d.layer" "$dir/tr.$d"
done
echo "$0: done: $dir/$nn_depth.dbn"
