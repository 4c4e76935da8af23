"""The hard conditions of the digits recipe's corpus maker (egs/digits/s5/local/make_data.py):
channels, noise types and homophones, checked on signals with known spectra."""

import importlib.util
import os
import random
import sys

import numpy as np
import pytest

from tests.conftest import REPO
from tests.test_recipe_digits import espeak_available

LOCAL = os.path.join(REPO, "egs", "digits", "s5", "local")
RATE = 22050


@pytest.fixture(scope="module")
def make_data():
    sys.path.insert(0, LOCAL)
    try:
        spec = importlib.util.spec_from_file_location("make_data", os.path.join(LOCAL, "make_data.py"))
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        yield module
    finally:
        sys.path.remove(LOCAL)


def band_power(signal, lo, hi):
    spec = np.abs(np.fft.rfft(signal)) ** 2
    f = np.fft.rfftfreq(len(signal), 1.0 / RATE)
    return spec[(f >= lo) & (f < hi)].sum()


def test_telephone_channel_keeps_the_band_and_removes_the_rest(make_data):
    x = np.random.default_rng(0).normal(0, 1000, RATE)
    y = make_data.Channel("telephone", random.Random(0), RATE)(x)
    assert len(y) == len(x)
    assert band_power(y, 500, 3000) == pytest.approx(band_power(x, 500, 3000), rel=1e-6)
    assert band_power(y, 0, 200) < 1e-12 * band_power(x, 0, 200)
    assert band_power(y, 3600, RATE / 2) < 1e-12 * band_power(x, 3600, RATE / 2)


def test_equaliser_gains_stay_within_9_db(make_data):
    x = np.random.default_rng(1).normal(0, 1000, RATE)
    ch = make_data.Channel("eq", random.Random(3), RATE)
    y = ch(x)
    for lo in (150, 400, 1000, 2500, 6000):
        ratio_db = 10 * np.log10(band_power(y, lo, lo * 1.2) / band_power(x, lo, lo * 1.2))
        assert -9.01 < ratio_db < 9.01
    assert np.ptp(ch.eq_db) > 3   # a real equaliser, not a flat one


def test_reverb_keeps_the_direct_path_and_adds_a_decaying_tail(make_data):
    ch = make_data.Channel("reverb", random.Random(5), RATE)
    impulse = np.zeros(RATE)
    impulse[100] = 1.0
    y = ch(impulse)
    assert len(y) == RATE
    assert np.allclose(y[:100], 0.0, atol=1e-9) and y[100] == pytest.approx(1.0, abs=1e-9)
    tail = y[101:]
    assert np.sum(tail ** 2) == pytest.approx(0.36, rel=1e-6)   # reverberant energy 0.6^2 of the direct path's
    early, late = np.sum(tail[:1000] ** 2), np.sum(tail[1000:2000] ** 2)
    assert late < early


def test_noise_types_have_unit_power_and_their_own_spectra(make_data):
    rng, nrng = random.Random(0), np.random.default_rng(0)
    talk = [np.sin(2 * np.pi * 300 * np.arange(RATE // 2) / RATE) * 5000]
    white = make_data.make_noise("white", RATE, rng, nrng, talk, RATE)
    pink = make_data.make_noise("pink", RATE, rng, nrng, talk, RATE)
    babble = make_data.make_noise("babble", RATE, rng, nrng, talk, RATE)
    for n in (white, pink, babble):
        assert np.mean(n ** 2) == pytest.approx(1.0, rel=1e-6)
    low_high = [band_power(n, 100, 1000) / band_power(n, 5000, 10000) for n in (white, pink)]
    assert low_high[0] < 0.3 and low_high[1] > 1.0   # white: flat (band widths 900 : 5000); pink falls
    assert band_power(babble, 250, 350) > 0.99 * band_power(babble, 0, RATE / 2)
    with pytest.raises(SystemExit, match="unknown noise"):
        make_data.make_noise("brown", 10, rng, nrng, talk, RATE)


@pytest.mark.skipif(not os.path.exists("/usr/lib/x86_64-linux-gnu/libespeak-ng.so.1") and not espeak_available(),
                    reason="espeak-ng is not installed")
def test_homophone_pairs_are_pronounced_alike(make_data):
    try:
        synth = make_data.Espeak()
    except RuntimeError as e:
        pytest.skip(str(e))
    pairs = make_data.homophone_pairs(synth, 5, {"right"})
    assert len(pairs) == 5
    assert all("right" not in pair for pair in pairs)
    for a, b in pairs:
        assert make_data.pronounce(synth, a) == make_data.pronounce(synth, b)


def test_compare_seeds_report_means_and_spreads(tmp_path):
    """local/compare_seeds.sh --report-only: one row per run, then each system's mean, range, sd
    over seeds and pooled errors, from the runs' wer files; a GMM system is one run (deterministic),
    DNNs on exact targets keep their old directory names, on tri1 alignments they end in _tri1."""
    import subprocess

    from tests.test_recipe import command_env

    def wer(path, w, err, lo, hi):
        path.mkdir(parents=True)
        (path / "wer").write_text(f"%WER {w:.2f} [ {err} / 1000, 1 ins, 2 del, {err - 3} sub ]\n"
                                  f"%SER 10.00 [ 10 / 100 ]\n%WER-CI95 [ {lo} , {hi} ] (bootstrap)\n")

    wer(tmp_path / "gmm/tri1/decode_test", 20.0, 200, 18.0, 22.0)
    wer(tmp_path / "ngsgd_nj4_tri1_s1/dnn/decode_test", 12.0, 120, 11.0, 13.0)
    wer(tmp_path / "ngsgd_nj4_tri1_s2/dnn/decode_test", 14.0, 140, 13.0, 15.0)
    wer(tmp_path / "ngsgd_nj4_pre_s1/dnn/decode_test", 15.0, 150, 13.5, 16.5)
    wer(tmp_path / "ngsgd_nj4_pre_s2/dnn/decode_test", 16.0, 160, 14.5, 17.5)
    (tmp_path / "ngsgd_nj4_pre_s1/dnn/log").mkdir()
    (tmp_path / "ngsgd_nj4_pre_s1/dnn/log/compute_prob_cv.final.log").write_text("x frame-accuracy=0.3512 y\n")
    script = os.path.join(REPO, "egs", "digits", "s5", "local", "compare_seeds.sh")
    p = subprocess.run(["bash", script, "--report-only", "true", "--dir", str(tmp_path), "--systems", "tri1 ngsgd:4 ngsgd:4:pre:exact",
                        "--seeds", "1 2"], capture_output=True, text=True, env=command_env())
    assert p.returncode == 0, p.stderr
    table = (tmp_path / "results.md").read_text()
    assert "| ngsgd:4:pre:exact | 1 | 15.00 | [13.5, 16.5] | 150 / 1000 | 35.1% |" in table
    assert "| tri1 | 1 | 20.00 | 20.00 - 20.00 | 0.00 | 200 / 1000 |" in table
    assert "| ngsgd:4 | 2 | 13.00 | 12.00 - 14.00 | 1.41 | 260 / 2000 |" in table
    assert "| ngsgd:4:pre:exact | 2 | 15.50 | 15.00 - 16.00 | 0.71 | 310 / 2000 |" in table
