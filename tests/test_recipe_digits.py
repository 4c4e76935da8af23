"""The digits recipe (espeak-ng speech, fbank, HCLG decoding) at its tiny size, end to end, as CI
runs it: the GMM systems built without the synthesiser's timings (flat-start monophones, then
triphones) and the DNN on the triphone system's pdfs (NG-SGD, 2 jobs averaged) must decode the
unseen test speakers with a WER below 10% (measured: mono 0.75%, tri1 0%, DNN 0.75%), and the
alignments must agree with the withheld timings on most frames (measured 79%)."""

import os
import re
import shutil
import subprocess

import pytest

from tests.conftest import REPO
from tests.test_recipe import command_env

RECIPE = os.path.join(REPO, "egs", "digits", "s5")


def espeak_available():
    if os.path.exists("/usr/lib/x86_64-linux-gnu/libespeak-ng.so.1") or shutil.which("espeak-ng"):
        return True
    return shutil.which("apt-get") is not None and os.geteuid() == 0  # the recipe installs it


@pytest.mark.slow
@pytest.mark.skipif(not espeak_available(), reason="espeak-ng is not installed and cannot be installed (needs apt-get as root)")
def test_digits_recipe_tiny_end_to_end(tmp_path):
    # run from a copy of the recipe directory outside the repository (its steps link is broken by
    # the copy: path.sh finds nnetavg through the commands on PATH and relinks it)
    recipe = tmp_path / "myrecipe" / "s5"
    shutil.copytree(RECIPE, recipe, symlinks=True, ignore=shutil.ignore_patterns("data*", "exp*"))
    assert not (recipe / "steps").exists()
    args = ["bash", "run.sh", "--preset", "tiny", "--nj", "2", "--num-iters", "6", "--seed", "3",
            "--cv-spk-percent", "20", "--data", str(tmp_path / "data"), "--exp", str(tmp_path / "exp"),
            "--egs", str(tmp_path / "egs_nj2")]
    p = subprocess.run(args, cwd=recipe, capture_output=True, text=True, env=command_env())
    assert p.returncode == 0, p.stdout[-3000:] + p.stderr[-3000:]
    wers = {}
    for system in ("mono", "tri1", "dnn"):
        text = (tmp_path / "exp" / system / "decode_test" / "wer").read_text()
        m = re.match(r"%WER (\d+\.\d+) \[ (\d+) / (\d+),", text)
        assert m, text
        wers[system] = float(m.group(1))
        assert int(m.group(3)) > 50, "too few test words to mean anything"
        assert "%WER-CI95 [" in text
    assert max(wers.values()) < 10.0, wers
    # the GMM stages used no timings, and their alignments find the phones the synthesiser said
    for ali in ("mono_ali", "tri1_ali"):
        m = re.search(r"phone agreement (\d+\.\d+)%", (tmp_path / "exp" / ali / "agreement").read_text())
        assert m and float(m.group(1)) > 70.0, ali
    assert "phone_times" not in (tmp_path / "exp" / "mono" / "log" / "train.log").read_text()
    # the DNN learnt the triphone system's pdfs and decodes with its transition model
    tri_pdfs = subprocess.run(["hmm-info", str(tmp_path / "exp" / "tri1_ali" / "final.mdl")], capture_output=True,
                              text=True, env=command_env()).stdout
    assert f"number of pdfs {(tmp_path / 'egs_nj2' / 'info' / 'num_pdfs').read_text().strip()}" in tri_pdfs
    assert "--trans-model" in (tmp_path / "exp" / "dnn" / "decode_test" / "log" / "decode.1.log").read_text()
    # the DNN learnt the frames: final CV frame accuracy far above chance (1/68)
    log = p.stdout
    acc = float(re.findall(r"final CV cross-entropy=\S+ frame-accuracy=(\S+)", log)[-1])
    assert acc > 0.5, acc
    # a rerun finds everything done and changes nothing
    before = (tmp_path / "exp" / "dnn" / "final.nnet").read_bytes()
    p2 = subprocess.run(args, cwd=recipe, capture_output=True, text=True, env=command_env())
    assert p2.returncode == 0, p2.stderr[-2000:]
    assert (tmp_path / "exp" / "dnn" / "final.nnet").read_bytes() == before
    assert "up to date" in p2.stdout
    assert "--seed 3" in (tmp_path / "exp" / "dnn" / "nnet.proto").read_text() or \
        "--randomizer-seed=3" in (tmp_path / "exp" / "dnn" / "log" / "train.0.1.log").read_text()
    assert "20% of the speakers for CV" in p.stdout and (tmp_path / "egs_nj2" / "info" / "num_archives").exists()
    # the egs dir is shared: another experiment with other --nj is refused, with the reason
    p3 = subprocess.run([*args[:5], "4", *args[6:], "--stage", "6", "--exp", str(tmp_path / "exp2"),
                         "--gmm-dir", str(tmp_path / "exp" / "tri1_ali")], cwd=recipe,
                        capture_output=True, text=True, env=command_env())
    assert p3.returncode != 0 and "holds 2 archives, not --nj 4" in p3.stderr, p3.stderr[-2000:]
    table = subprocess.run(["bash", "local/wer_table.sh", str(tmp_path / "exp")], cwd=recipe, capture_output=True,
                           text=True)
    assert table.returncode == 0 and table.stdout.count("\n| ") == 3, table.stdout
