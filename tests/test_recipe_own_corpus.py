"""A user's corpus in, as the README's "Bring your own corpus" says: Kaldi data dirs (wav.scp, text,
utt2spk, spk2utt) and a dict dir, nothing else (no phone timings, no alignments), 8 kHz audio.
The recipe from --stage 2 builds the lang, the features (at the wav's own rate), the flat-start
monophone and the triphone GMM systems, the DNN on the triphone system's pdfs, and a WER for each."""

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


@pytest.mark.slow
@pytest.mark.skipif(not espeak_available(), reason="espeak-ng is not installed and cannot be installed (needs apt-get as root)")
def test_own_corpus_at_8khz_from_stage_2(tmp_path):
    data = tmp_path / "data"
    env = command_env()
    subprocess.run(["bash", "-c", f"cd {RECIPE} && . ./path.sh && local/install_deps.sh false && make_data.py "
                    "--num-train-speakers 8 --num-test-speakers 3 --utts-per-speaker 12 --test-utts-per-speaker 6 "
                    f"--sample-rate 8000 {data}"], check=True, capture_output=True, env=env)
    # a real corpus has no timings: withhold them
    for part in ("train", "test"):
        os.remove(data / part / "phone_times")
    assert sorted(os.listdir(data / "train")) == ["spk2utt", "text", "utt2spk", "wav.scp"]
    first_wav = (data / "train" / "wav.scp").read_text().split()[1]
    with wave.open(first_wav) as w:
        assert w.getframerate() == 8000
    exp = tmp_path / "exp"
    p = subprocess.run(["bash", "run.sh", "--data", str(data), "--exp", str(exp), "--stage", "2", "--nj", "2",
                        "--num-iters", "3", "--hidden-layers", "1", "--hidden-dim", "128", "--mono-gauss", "200",
                        "--tri1-leaves", "60", "--tri1-gauss", "300", "--cv-spk-percent", "25"],
                       cwd=RECIPE, capture_output=True, text=True, env=env)
    assert p.returncode == 0, p.stdout[-3000:] + p.stderr[-3000:]
    for system in ("mono", "tri1", "dnn"):
        text = (exp / system / "decode_test" / "wer").read_text()
        m = re.match(r"%WER (\d+\.\d+) \[ (\d+) / (\d+),", text)
        assert m and int(m.group(3)) > 20, text
        assert float(m.group(1)) < 60.0, (system, text)  # far below a random guess among 10 words
    # features at 8 kHz: 100 frames a second of audio, whatever the rate
    feats_log = (data / "mfcc" / "train" / "log" / "mfcc.log").read_text()
    assert "computed mfcc features" in feats_log
    assert "agreement" not in p.stdout          # nothing to measure against without timings
    assert (exp / "tri1_ali" / "num_jobs").read_text().strip() == "2"
    assert len(list((exp / "tri1_ali").glob("ali.*.gz"))) == 2
    # the DNN's targets are the triphone system's pdfs, and it decodes with that transition model
    pdfs = subprocess.run(["hmm-info", str(exp / "tri1_ali" / "final.mdl")], capture_output=True, text=True,
                          env=env).stdout
    assert f"number of pdfs {(exp / 'egs' / 'info' / 'num_pdfs').read_text().strip()}\n" in pdfs
    assert shutil.which("hmm-info", path=env["PATH"])
