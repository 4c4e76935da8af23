"""Kaldi's nnet1 scripts drive our binaries: the command lines of steps/nnet/train_scheduler.sh and
pretrain_dbn.sh, their log parsing (awk field numbers after Kaldi's log prefix), Posterior targets
from ali-to-post, frame and utterance weights. The loops below are ours, written after reading
Kaldi's scripts; the command lines and awk expressions are the ones those scripts use."""

import os
import re
import subprocess

import numpy as np
import pytest

from nnetavg.io.nnet1 import read_nnet
from nnetavg.io.posterior import Posterior
from nnetavg.io.tables import FLOAT, MATRIX, POSTERIOR, VECTOR, SequentialReader, TableWriter, read_single
from tests.conftest import make_labelled_data, run_cmd

PROTO = """<NnetProto>
<AffineTransform> <InputDim> 18 <OutputDim> 24 <BiasMean> -2.0 <BiasRange> 4.0 <ParamStddev> 0.1 <MaxNorm> 0.0
<Sigmoid> <InputDim> 24 <OutputDim> 24
<AffineTransform> <InputDim> 24 <OutputDim> 5 <BiasMean> 0.0 <BiasRange> 0.0 <ParamStddev> 0.1
<Softmax> <InputDim> 5 <OutputDim> 5
</NnetProto>
"""

# Our scheduler: train_scheduler.sh's command lines and log parsing, with awk for the arithmetic.
SCHEDULER = r"""
set -eu
ft=$1; feats_tr=$2; feats_cv=$3; labels_tr=$4; labels_cv=$5; mlp_best=$6; dir=$7
learn_rate=0.02; mb=16; halving=0
mkdir -p $dir/log $dir/nnet
nnet-train-frmshuff --cross-validate=true --minibatch-size=$mb --randomizer-size=32768 --verbose=1 \
  --feature-transform=$ft "$feats_cv" "$labels_cv" $mlp_best 2>> $dir/log/iter00.initial.log
loss=$(cat $dir/log/iter00.initial.log | grep "AvgLoss:" | tail -n 1 | awk '{ print $4; }')
loss_type=$(cat $dir/log/iter00.initial.log | grep "AvgLoss:" | tail -n 1 | awk '{ print $5; }')
echo "prerun $loss $loss_type" > $dir/progress
for iter in 01 02 03 04 05 06; do
  mlp_next=$dir/nnet/nnet_iter$iter
  nnet-train-frmshuff --learn-rate=$learn_rate --momentum=0 --l1-penalty=0 --l2-penalty=0 \
    --minibatch-size=$mb --randomizer-size=32768 --randomize=true --verbose=1 --binary=true \
    --feature-transform=$ft --randomizer-seed=777 "$feats_tr" "$labels_tr" $mlp_best $mlp_next \
    2>> $dir/log/iter$iter.tr.log
  tr_loss=$(cat $dir/log/iter$iter.tr.log | grep "AvgLoss:" | tail -n 1 | awk '{ print $4; }')
  nnet-train-frmshuff --cross-validate=true --minibatch-size=$mb --randomizer-size=32768 --verbose=1 \
    --feature-transform=$ft "$feats_cv" "$labels_cv" $mlp_next 2>> $dir/log/iter$iter.cv.log
  loss_new=$(cat $dir/log/iter$iter.cv.log | grep "AvgLoss:" | tail -n 1 | awk '{ print $4; }')
  acc=$(cat $dir/log/iter$iter.cv.log | grep "FRAME_ACCURACY" | tail -n 1 | awk '{ print $3; }')
  loss_prev=$loss
  if awk "BEGIN{exit !($loss_new < $loss)}"; then
    loss=$loss_new; mlp_best=$dir/nnet/nnet_iter${iter}_learnrate${learn_rate}; mv $mlp_next $mlp_best; verdict=accepted
  else
    mv $mlp_next ${mlp_next}_rejected; verdict=rejected
  fi
  echo "$iter $tr_loss $loss_new $learn_rate $acc $verdict" >> $dir/progress
  rel_impr=$(awk "BEGIN{print ($loss_prev - $loss) / $loss_prev}")
  if [ $halving = 1 ] && awk "BEGIN{exit !($rel_impr < 0.001)}"; then break; fi
  if awk "BEGIN{exit !($rel_impr < 0.3)}"; then halving=1; fi
  if [ $halving = 1 ]; then learn_rate=$(awk "BEGIN{print($learn_rate*0.5)}"); fi
done
ln -s $mlp_best $dir/final.nnet
"""


@pytest.fixture()
def kaldi_setup(tmp_path):
    feats, ali = make_labelled_data(tmp_path, num_utts=40)
    cv_feats, cv_ali = make_labelled_data(tmp_path, num_utts=12, seed=5, name="cv")
    run_cmd(["make-feature-transform", "--splice=1", f"scp:{feats}", str(tmp_path / "ft.nnet")])
    (tmp_path / "nnet.proto").write_text(PROTO)
    p = run_cmd(["nnet-initialize", "--binary=true", str(tmp_path / "nnet.proto"), str(tmp_path / "nnet.init")])
    assert re.search(r"^LOG \(nnet-initialize\[nnetavg-[^]]+\]:\w+\(\):\S+:\d+\) ", p.stderr, re.M), p.stderr
    return tmp_path, feats, ali, cv_feats, cv_ali


def test_scheduler_loop_trains_cross_validates_halves_and_writes_final(kaldi_setup):
    tmp, feats, ali, cv_feats, cv_ali = kaldi_setup
    labels_tr, labels_cv = f"ark:ali-to-post ark:{ali} ark:- |", f"ark:ali-to-post ark:{cv_ali} ark:- |"
    run_cmd(["bash", "-c", SCHEDULER, "sched", str(tmp / "ft.nnet"), f"scp:{feats}", f"scp:{cv_feats}",
             labels_tr, labels_cv, str(tmp / "nnet.init"), str(tmp / "exp")])
    rows = (tmp / "exp" / "progress").read_text().splitlines()
    prerun, iters = rows[0].split(), [r.split() for r in rows[1:]]
    assert prerun[2] == "(Xent)," and float(prerun[1]) > 1.0     # ~ln 5 for the untrained model
    cv_losses, rates = [float(r[2]) for r in iters], [float(r[3]) for r in iters]
    assert cv_losses[0] < float(prerun[1]) and min(cv_losses) < 0.5 * float(prerun[1])
    assert rates[0] == 0.02 and min(rates) < 0.02          # the rate was halved
    final = os.path.realpath(tmp / "exp" / "final.nnet")
    assert os.path.exists(final)
    # the figures the awk expressions pulled out are the model's: nnet-compute-prob agrees
    best = [r for r in iters if r[5] == "accepted"][-1]
    prob = dict(kv.split("=") for kv in run_cmd(["nnet-compute-prob", f"--feature-transform={tmp}/ft.nnet", final,
                                                  f"scp:{cv_feats}", f"ark:{cv_ali}"]).stdout.split())
    assert np.isclose(float(best[2]), float(prob["cross-entropy"]), rtol=1e-5)
    assert np.isclose(float(best[4].rstrip("%")), 100 * float(prob["frame-accuracy"]), rtol=1e-5)
    # and the model reads and forwards like any nnet1 file
    out = tmp / "post.ark"
    run_cmd(["nnet-forward", f"--feature-transform={tmp}/ft.nnet", final, f"scp:{cv_feats}", f"ark:{out}"])
    net, ft = read_nnet(final), read_nnet(str(tmp / "ft.nnet"))
    for key, x in SequentialReader(f"scp:{cv_feats}", MATRIX):
        got = dict(SequentialReader(f"ark:{out}", MATRIX))[key]
        np.testing.assert_allclose(got, net.forward(ft.forward(x)), rtol=1e-5, atol=1e-6)
        break


def test_frmshuff_on_posteriors_is_nnet_train_simple_on_alignments(kaldi_setup):
    tmp, feats, ali, _, _ = kaldi_setup
    opts = ["--learn-rate=0.01", "--minibatch-size=16", f"--feature-transform={tmp}/ft.nnet"]
    p = run_cmd(["nnet-train-frmshuff", *opts, f"scp:{feats}", f"ark:ali-to-post ark:{ali} ark:- |",
                 str(tmp / "nnet.init"), str(tmp / "a.nnet")])
    run_cmd(["nnet-train-simple", *opts, str(tmp / "nnet.init"), f"scp:{feats}", f"ark:{ali}", str(tmp / "b.nnet")])
    assert np.array_equal(read_nnet(str(tmp / "a.nnet")).params, read_nnet(str(tmp / "b.nnet")).params)
    done = re.search(r"^LOG \(nnet-train-frmshuff\S+\) Done 40 files, 0 with no tgt_mats, 0 with other errors. "
                     r"\[TRAINING, RANDOMIZED, ", p.stderr, re.M)
    assert done, p.stderr
    assert re.search(r"^FRAME_ACCURACY >> [0-9.]+% <<$", p.stderr, re.M)


def test_frame_and_utterance_weights(kaldi_setup):
    tmp, feats, ali, _, _ = kaldi_setup
    keys = [k for k, _ in SequentialReader(f"scp:{feats}", MATRIX)]
    lengths = {k: x.shape[0] for k, x in SequentialReader(f"scp:{feats}", MATRIX)}
    with TableWriter(f"ark:{tmp}/ones.ark", FLOAT) as w1, TableWriter(f"ark:{tmp}/drop0.ark", FLOAT) as w0, \
            TableWriter(f"ark:{tmp}/fw2.ark", VECTOR) as wf:
        for k in keys:
            w1.write(k, 1.0)
            w0.write(k, 0.0 if k == keys[0] else 1.0)
            wf.write(k, np.full(lengths[k], 2.0, np.float32))
    (tmp / "rest.scp").write_text("".join(line for line in open(feats) if not line.startswith(keys[0] + " ")))
    post = f"ark:ali-to-post ark:{ali} ark:- |"

    def train(out, *extra, scp=feats, lr="0.01"):
        run_cmd(["nnet-train-frmshuff", f"--learn-rate={lr}", "--minibatch-size=16", "--randomize=false",
                 f"--feature-transform={tmp}/ft.nnet", *extra, f"scp:{scp}", post, str(tmp / "nnet.init"),
                 str(tmp / out)])
        return read_nnet(str(tmp / out)).params

    plain = train("plain.nnet")
    np.testing.assert_allclose(train("ones.nnet", f"--utt-weights=ark:{tmp}/ones.ark"), plain, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(train("drop.nnet", f"--utt-weights=ark:{tmp}/drop0.ark"),
                               train("rest.nnet", scp=str(tmp / "rest.scp")), rtol=1e-5, atol=1e-7)
    # weight 2 on every frame doubles every gradient: the same as twice the learning rate (plain SGD)
    np.testing.assert_allclose(train("fw2.nnet", f"--frame-weights=ark:{tmp}/fw2.ark"),
                               train("lr2.nnet", lr="0.02"), rtol=1e-4, atol=1e-6)


def test_soft_targets_report_kaldis_avg_loss(kaldi_setup):
    tmp, feats, ali, _, _ = kaldi_setup
    alis = dict(SequentialReader(f"ark:{ali}", "int_vector"))
    with TableWriter(f"ark,t:{tmp}/soft.txt", POSTERIOR) as w:   # each frame: half its pdf, half pdf 0
        for k, a in alis.items():
            w.write(k, Posterior.from_pairs([[(int(i), 0.5), (0 if i else 1, 0.5)] for i in a]))
    p = run_cmd(["nnet-train-frmshuff", "--cross-validate=true", f"--feature-transform={tmp}/ft.nnet",
                 f"scp:{feats}", f"ark:{tmp}/soft.txt", str(tmp / "nnet.init")])
    m = re.search(r"AvgLoss: (\S+) \(Xent\), \[AvgXent: (\S+), AvgTargetEnt: (\S+)\]", p.stderr)
    assert m, p.stderr
    avg_loss, xent, ent = map(float, m.groups())
    assert np.isclose(ent, np.log(2), rtol=1e-5) and np.isclose(avg_loss, xent - ent, rtol=1e-4)
    assert not (tmp / "nnet.init.out").exists()


def test_pretrain_dbn_style_stack(kaldi_setup):
    """pretrain_dbn.sh's calls for a 2-layer DBN: feat-to-dim, nnet-forward | compute-cmvn-stats |
    cmvn-to-nnet, <Rbm> prototypes through nnet-initialize, rbm-train-cd1-frmshuff,
    rbm-convert-to-nnet and nnet-concat through pipes; nnet-forward reads the DBN."""
    tmp, feats, _, _, _ = kaldi_setup
    feats_pipe = f"ark:copy-feats scp:{feats} ark:- |"
    sh = lambda cmd: subprocess.run(["bash", "-c", "set -eo pipefail; " + cmd], cwd=tmp, capture_output=True,  # noqa: E731
                                    text=True, check=True).stdout
    assert sh(f'feat-to-dim --print-args=false "{feats_pipe}" -').strip() == "6"
    ft = f"{tmp}/ft.nnet"
    num_fea = sh(f'feat-to-dim --print-args=false "{feats_pipe} nnet-forward --use-gpu=no {ft} ark:- ark:- |" - '
                 f'2>/dev/null').strip()
    assert num_fea == "18"
    (tmp / "1.rbm.proto").write_text(f"<NnetProto>\n<Rbm> <InputDim> {num_fea} <OutputDim> 16 <VisibleType> gauss "
                                     f"<HiddenType> bern <ParamStddev> 0.1\n</NnetProto>\n")
    sh("nnet-initialize 1.rbm.proto 1.rbm.init 2>/dev/null")
    sh(f'rbm-train-cd1-frmshuff --learn-rate=0.01 --l2-penalty=0.0002 --num-iters=2 --verbose=1 '
       f'--feature-transform={ft} 1.rbm.init "{feats_pipe}" 1.rbm 2> rbm.1.log')
    assert re.search(r"^progress: \[ \S+ \S+ \]$", (tmp / "rbm.1.log").read_text(), re.M)
    # --drop-data: each frame dropped with that probability (nnet1's subsampling)
    frames = lambda log: [int(n) for n in re.findall(r"pass frames=(\d+)", (tmp / log).read_text())]  # noqa: E731
    sh(f'rbm-train-cd1-frmshuff --learn-rate=0.01 --num-iters=2 --drop-data=0.5 '
       f'--feature-transform={ft} 1.rbm.init "{feats_pipe}" 1.drop.rbm 2> rbm.drop.log')
    kept, full = frames("rbm.drop.log"), frames("rbm.1.log")
    assert len(kept) == len(full) == 2 and all(0.4 < k / f < 0.6 for k, f in zip(kept, full)), (kept, full)
    p = subprocess.run(["bash", "-c", f'rbm-train-cd1-frmshuff --drop-data=1 1.rbm.init "{feats_pipe}" x.rbm'], cwd=tmp,
                       capture_output=True, text=True)
    assert p.returncode != 0 and "--drop-data=1.0: must be in [0, 1)" in p.stderr
    sh("rbm-convert-to-nnet --binary=true 1.rbm 1.dbn 2>/dev/null")
    sh(f'nnet-forward --use-gpu=yes "nnet-concat {ft} 1.dbn - |" "{feats_pipe}" ark:- 2>/dev/null | '
       f'compute-cmvn-stats ark:- - 2>/dev/null | cmvn-to-nnet - 2.cmvn 2>/dev/null')
    (tmp / "2.rbm.proto").write_text("<NnetProto>\n<Rbm> <InputDim> 16 <OutputDim> 16 <VisibleType> bern "
                                     "<HiddenType> bern <ParamStddev> 0.1 <VisibleBiasCmvnFilename> 2.cmvn\n"
                                     "</NnetProto>\n")
    sh("nnet-initialize 2.rbm.proto 2.rbm.init 2>/dev/null")
    # the visible bias is the logit of the first layer's mean activation
    dbn1, ftn = read_nnet(str(tmp / "1.dbn")), read_nnet(ft)
    acts = np.concatenate([dbn1.forward(ftn.forward(x)) for _, x in SequentialReader(f"scp:{feats}", MATRIX)])
    p = np.clip(acts.mean(0), 1e-4, 0.9999)
    rbm2 = read_nnet(str(tmp / "2.rbm.init")).components[0]
    np.testing.assert_allclose(rbm2.param("visible_bias"), np.log(p / (1 - p)), rtol=1e-3, atol=1e-3)
    sh(f'rbm-train-cd1-frmshuff --learn-rate=0.4 --l2-penalty=0.0002 --num-iters=1 --verbose=1 '
       f'--feature-transform="nnet-concat {ft} 1.dbn - |" 2.rbm.init "{feats_pipe}" 2.rbm 2>/dev/null')
    sh("rbm-convert-to-nnet --binary=true 2.rbm - 2>/dev/null | nnet-concat 1.dbn - 2.dbn 2>/dev/null")
    dbn = read_nnet(str(tmp / "2.dbn"))
    assert [c.marker for c in dbn.components] == ["<AffineTransform>", "<Sigmoid>"] * 2
    run_cmd(["nnet-forward", f"--feature-transform={ft}", str(tmp / "2.dbn"), f"scp:{feats}", f"ark:{tmp}/h.ark"])
    h = dict(SequentialReader(f"ark:{tmp}/h.ark", MATRIX))
    assert len(h) == 40 and all(v.shape[1] == 16 and np.all((v > 0) & (v < 1)) for v in h.values())


def test_feat_to_len_and_dim(kaldi_setup):
    tmp, feats, _, _, _ = kaldi_setup
    lengths = {k: x.shape[0] for k, x in SequentialReader(f"scp:{feats}", MATRIX)}
    assert run_cmd(["feat-to-len", f"scp:{feats}"]).stdout.strip() == str(sum(lengths.values()))
    per_utt = run_cmd(["feat-to-len", f"scp:{feats}", "ark,t:-"]).stdout.split("\n")
    assert dict(line.split() for line in per_utt if line) == {k: str(v) for k, v in lengths.items()}
    assert run_cmd(["feat-to-dim", f"scp:{feats}", "-"]).stdout.strip() == "6"
    stats = tmp / "cmvn.mat"
    run_cmd(["compute-cmvn-stats", f"scp:{feats}", str(stats)])
    assert run_cmd(["feat-to-dim", str(stats), "-"]).stdout.strip() == "7"
    run_cmd(["cmvn-to-nnet", "--binary=false", str(stats), str(tmp / "cmvn.nnet")])
    s = read_single(str(stats)).astype(np.float64)
    mean = s[0, :-1] / s[0, -1]
    shift = read_nnet(str(tmp / "cmvn.nnet")).components[0].param("shift")
    np.testing.assert_allclose(shift, -mean, rtol=1e-5)


def test_reader_that_stops_early_breaks_the_pipe_quietly(tmp_path):
    """pretrain_dbn.sh runs feat-to-dim on "ark:copy-feats scp:... ark:- |": feat-to-dim reads one
    matrix and closes the pipe, the writer fails on the broken pipe, and that is no error (it printed
    a traceback); a pipe command that fails before the end is still an error."""
    make_labelled_data(tmp_path, num_utts=200, feat_dim=40, name="big")  # far more than a pipe buffer
    p = run_cmd(["feat-to-dim", f"ark:copy-feats scp:{tmp_path}/big/feats.scp ark:- |", "-"])
    assert p.stdout.strip() == "40" and "Traceback" not in p.stderr and "Exception" not in p.stderr, p.stderr
    p = run_cmd(["feat-to-dim", f"ark:copy-feats scp:{tmp_path}/missing.scp ark:- |", "-"], check=False)
    assert p.returncode == 1 and "Traceback" not in p.stderr and "missing.scp" in p.stderr, p.stderr


def test_copy_feats_compress_writes_kaldis_compressed_matrices(kaldi_setup):
    tmp, feats, _, _, _ = kaldi_setup
    run_cmd(["copy-feats", "--compress=true", f"scp:{feats}", f"ark,scp:{tmp}/c.ark,{tmp}/c.scp"])
    raw = (tmp / "c.ark").read_bytes()
    assert raw.split(b" ", 1)[1][:4] == b"\0BCM"
    assert os.path.getsize(tmp / "c.ark") < 0.5 * os.path.getsize(feats.replace(".scp", ".ark"))
    orig = dict(SequentialReader(f"scp:{feats}", MATRIX))
    for key, x in SequentialReader(f"scp:{tmp}/c.scp", MATRIX):
        span = float(orig[key].max() - orig[key].min())
        assert x.shape == orig[key].shape and float(np.abs(x - orig[key]).max()) < 0.01 * span
    assert run_cmd(["feat-to-len", f"scp:{tmp}/c.scp"]).stdout.strip() == str(sum(v.shape[0] for v in orig.values()))
    run_cmd(["copy-feats", "--compress=true", "--compression-method=3", f"scp:{feats}", f"ark:{tmp}/c2.ark"])
    assert (tmp / "c2.ark").read_bytes().split(b" ", 1)[1][:5] == b"\0BCM2"


def test_kaldi_feature_config_is_accepted(tmp_path):
    """A Kaldi conf/fbank.conf (Kaldi's option names) works as --config of compute-fbank-feats."""
    import wave
    t = np.arange(16000) / 16000.0
    samples = (8000 * np.sin(2 * np.pi * 440 * t) * np.exp(-t)).astype("<i2")
    with wave.open(str(tmp_path / "a.wav"), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(16000)
        w.writeframes(samples.tobytes())
    (tmp_path / "wav.scp").write_text(f"utt1 {tmp_path}/a.wav\n")
    (tmp_path / "fbank.conf").write_text("--sample-frequency=16000\n--num-mel-bins=23\n--frame-length=25\n"
                                         "--use-energy=false\n--snip-edges=true\n")
    run_cmd(["compute-fbank-feats", f"--config={tmp_path}/fbank.conf", str(tmp_path / "wav.scp"), f"ark:{tmp_path}/f.ark"])
    (x,) = [v for _, v in SequentialReader(f"ark:{tmp_path}/f.ark", MATRIX)]
    assert x.shape == (98, 23)                                   # 1 s, 25 ms frames every 10 ms, snip-edges
    run_cmd(["compute-fbank-feats", f"--config={tmp_path}/fbank.conf", "--snip-edges=false", str(tmp_path / "wav.scp"),
             f"ark:{tmp_path}/g.ark"])
    assert [v.shape for _, v in SequentialReader(f"ark:{tmp_path}/g.ark", MATRIX)] == [(100, 23)]
    p = run_cmd(["compute-fbank-feats", "--sample-frequency=8000", str(tmp_path / "wav.scp"), f"ark:{tmp_path}/h.ark"],
                check=False)
    assert p.returncode == 1 and "utterance utt1" in p.stderr and "16000" in p.stderr
    assert not (tmp_path / "h.ark").exists()
