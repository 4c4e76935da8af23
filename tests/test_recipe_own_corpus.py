"""A user's corpus in, as the README's "Bring your own corpus" says: Kaldi data dirs (wav.scp, text,
utt2spk, spk2utt) and a dict dir, nothing else (no phone timings, no alignments), 8 kHz audio.
The recipe from --stage 2 builds the lang, the features (at the wav's own rate), the flat-start
monophone and the triphone GMM systems, the DNN on the triphone system's pdfs, and a WER for each.
Then Kaldi's own steps/nnet/train.sh, make_priors.sh, decode.sh and local/score.sh (from
../shared/kaldi, unchanged) train, decode and score on that GMM system with our binaries first on PATH."""

import os
import re
import shutil
import subprocess
import wave

import pytest

from tests.conftest import REPO
from tests.test_recipe import command_env
from tests.test_recipe_digits import espeak_available

RECIPE = os.path.join(REPO, "egs", "digits", "s5")


KALDI = os.path.join(os.path.dirname(REPO), "shared", "kaldi", "egs", "wsj", "s5")


@pytest.fixture(scope="module")
def own_corpus(tmp_path_factory):
    """(data dir, exp dir, run.sh's CompletedProcess) of the recipe on an 8 kHz corpus without timings."""
    if not espeak_available():
        pytest.skip("espeak-ng is not installed and cannot be installed (needs apt-get as root)")
    tmp_path = tmp_path_factory.mktemp("own")
    data = tmp_path / "data"
    env = command_env()
    subprocess.run(["bash", "-c", f"cd {RECIPE} && . ./path.sh && local/install_deps.sh false && make_data.py "
                    "--num-train-speakers 8 --num-test-speakers 3 --utts-per-speaker 12 --test-utts-per-speaker 6 "
                    f"--sample-rate 8000 {data}"], check=True, capture_output=True, env=env)
    # a real corpus has no timings: withhold them
    for part in ("train", "test"):
        os.remove(data / part / "phone_times")
        os.remove(data / part / "spk2channel")
    assert sorted(os.listdir(data / "train")) == ["spk2utt", "text", "utt2spk", "wav.scp"]
    first_wav = (data / "train" / "wav.scp").read_text().split()[1]
    with wave.open(first_wav) as w:
        assert w.getframerate() == 8000
    exp = tmp_path / "exp"
    p = subprocess.run(["bash", "run.sh", "--data", str(data), "--exp", str(exp), "--stage", "2", "--nj", "2",
                        "--num-iters", "3", "--hidden-layers", "1", "--hidden-dim", "128", "--mono-gauss", "200", "--mono-shortest", "60",
                        "--tri1-leaves", "60", "--tri1-gauss", "300", "--cv-spk-percent", "25"],
                       cwd=RECIPE, capture_output=True, text=True, env=env)
    assert p.returncode == 0, p.stdout[-3000:] + p.stderr[-3000:]
    return data, exp, p


@pytest.mark.slow
def test_own_corpus_at_8khz_from_stage_2(own_corpus):
    data, exp, p = own_corpus
    env = command_env()
    for system in ("mono", "tri1", "dnn"):
        text = (exp / system / "decode_test" / "wer").read_text()
        m = re.match(r"%WER (\d+\.\d+) \[ (\d+) / (\d+),", text)
        assert m and int(m.group(3)) > 20, text
        assert float(m.group(1)) < 60.0, (system, text)  # far below a random guess among 10 words
    # features at 8 kHz: 100 frames a second of audio, whatever the rate
    feats_log = (data / "mfcc" / "train" / "log" / "mfcc.log").read_text()
    assert "computed mfcc features" in feats_log
    assert "agreement" not in p.stdout          # nothing to measure against without timings
    # the monophones learn from the 60 shortest utterances (as Kaldi recipes do), their alignment covers all
    assert "using the 60 shortest utterances" in (exp / "mono" / "log" / "train.log").read_text()
    align_logs = " ".join(f.read_text() for f in (exp / "mono_ali" / "log").glob("align.*.log"))
    assert sum(int(n) for n in re.findall(r"aligned (\d+) utterances", align_logs)) == 96
    assert (exp / "tri1_ali" / "num_jobs").read_text().strip() == "2"
    assert len(list((exp / "tri1_ali").glob("ali.*.gz"))) == 2
    # the DNN's targets are the triphone system's pdfs, and it decodes with that transition model
    pdfs = subprocess.run(["hmm-info", str(exp / "tri1_ali" / "final.mdl")], capture_output=True, text=True,
                          env=env).stdout
    assert f"number of pdfs {(exp / 'egs' / 'info' / 'num_pdfs').read_text().strip()}\n" in pdfs
    assert shutil.which("hmm-info", path=env["PATH"])


def kaldi_scripts(dest):
    """Kaldi's steps/ and utils/ copied from ../shared/kaldi, made executable, their symbolic links
    (stored as files holding the link's target) made links again."""
    for name in ("steps", "utils"):
        shutil.copytree(os.path.join(KALDI, name), dest / name, symlinks=True)
    for root, _, files in os.walk(dest):
        for f in files:
            path = os.path.join(root, f)
            if os.path.islink(path):
                continue
            os.chmod(path, 0o755)
            if os.path.getsize(path) < 200:
                target = open(path, encoding="utf-8", errors="replace").read().strip()
                if target and " " not in target and "\n" not in target and \
                        os.path.exists(os.path.join(root, target)):
                    os.remove(path)
                    os.symlink(target, path)


@pytest.mark.slow
@pytest.mark.skipif(not os.path.isdir(KALDI), reason="Kaldi's scripts are not in ../shared/kaldi")
def test_kaldi_nnet_train_sh_on_our_gmm_system(own_corpus, tmp_path):
    data, exp, _ = own_corpus
    kaldi_scripts(tmp_path)
    env = command_env()
    env["PATH"] = f"{os.path.dirname(shutil.which('hmm-info', path=env['PATH']))}:{tmp_path / 'utils'}:{env['PATH']}"
    env.setdefault("USER", "nnetavg")
    run = lambda *a: subprocess.run(["bash", *a], cwd=tmp_path, capture_output=True, text=True, env=env)  # noqa: E731
    p = run("utils/nnet/subset_data_tr_cv.sh", "--cv-spk-percent", "25", str(data / "train"), "tr", "cv")
    assert p.returncode == 0, p.stdout + p.stderr
    p = run("steps/nnet/train.sh", "--skip-cuda-check", "true", "--hid-layers", "1", "--hid-dim", "64",
            "--learn-rate", "0.008", "--scheduler-opts", "--max-iters 3", "--copy-feats-tmproot", str(tmp_path / "feats.XXXX"), "tr", "cv", str(data / "lang"),
            str(exp / "tri1_ali"), str(exp / "tri1_ali"), "dnn")
    assert p.returncode == 0, p.stdout[-3000:] + p.stderr[-3000:]
    assert "Successfuly finished" in p.stdout
    progress = re.findall(r"ITERATION \d+: TRAIN AVG.LOSS (\S+), .*CROSSVAL AVG.LOSS (\S+),", p.stdout)
    prerun = float(re.search(r"CROSSVAL PRERUN AVG.LOSS (\S+)", p.stdout).group(1))
    assert len(progress) >= 2 and float(progress[-1][1]) < prerun - 1.0, p.stdout[-2000:]
    # what Kaldi's script took from our GMM dir: pdf counts of the tri1 tree, its transition model
    counts = (tmp_path / "dnn" / "ali_train_pdf.counts").read_text().split()
    num_pdfs = int((exp / "egs" / "info" / "num_pdfs").read_text())
    assert counts[0] == "[" and len(counts) == num_pdfs + 2
    assert (tmp_path / "dnn" / "final.mdl").read_text().startswith("<TransitionModel>")
    assert (tmp_path / "dnn" / "final.nnet").exists()
    # Kaldi's make_priors.sh: nnet-forward | compute-cmvn-stats per job, sum-matrices, awk on the text
    p = run("steps/nnet/make_priors.sh", "--nj", "2", "tr", "dnn")
    assert p.returncode == 0 and "Succeeded creating prior counts" in p.stdout, p.stdout[-2000:] + p.stderr[-2000:]
    priors = (tmp_path / "dnn" / "prior_counts").read_text().split()
    frames = sum(int(x) for x in subprocess.run(["feat-to-len", f"scp:{tmp_path}/tr/feats.scp", "ark,t:-"],
                                                capture_output=True, text=True, env=env).stdout.split()[1::2])
    assert priors[0] == "[" and priors[-1] == "]" and len(priors) == num_pdfs + 2
    assert abs(sum(float(x) for x in priors[1:-1]) - frames) < 1e-3 * frames   # posteriors sum to one a frame

    # Kaldi's decode.sh (nnet-forward | latgen-faster-mapped) and local/score.sh (score_kaldi.sh:
    # lattice-scale | lattice-add-penalty | lattice-best-path, compute-wer, align-text,
    # compute-wer-bootci) on a const HCLG, as utils/mkgraph.sh leaves it
    import kaldifst
    graph = tmp_path / "graph"
    graph.mkdir()
    shutil.copy(exp / "tri1" / "graph" / "words.txt", graph / "words.txt")
    kaldifst.StdConstFst(kaldifst.StdVectorFst.read(str(exp / "tri1" / "graph" / "HCLG.fst"))).write(str(graph / "HCLG.fst"))
    (tmp_path / "local").mkdir()
    os.symlink("../steps/score_kaldi.sh", tmp_path / "local" / "score.sh")
    p = run("steps/nnet/decode.sh", "--nj", "2", "--acwt", "0.1", "graph", str(data / "test"), "dnn/decode_test")
    assert p.returncode == 0, p.stdout[-2000:] + p.stderr[-2000:]
    best = (tmp_path / "dnn" / "decode_test" / "scoring_kaldi" / "best_wer").read_text()
    m = re.match(r"%WER (\d+\.\d+) \[ \d+ / (\d+),", best)
    assert m and float(m.group(1)) < 60.0 and int(m.group(2)) > 20, best
    lattice_words = subprocess.run(["bash", "-c", f"lattice-best-path 'ark:gunzip -c {tmp_path}/dnn/decode_test/lat.*.gz|' "
                                    "ark,t:- | wc -l"], capture_output=True, text=True, env=env).stdout.strip()
    assert lattice_words == str(len((data / "test" / "text").read_text().splitlines()))   # one lattice an utterance
    per_utt = (tmp_path / "dnn" / "decode_test" / "scoring_kaldi" / "wer_details" / "per_utt").read_text()
    assert " ref " in per_utt and " hyp " in per_utt and " op " in per_utt
    assert "Set1: %WER" in (tmp_path / "dnn" / "decode_test" / "scoring_kaldi" / "wer_details" / "wer_bootci").read_text()
