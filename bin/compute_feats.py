"""Compute filterbank (compute-fbank-feats) or MFCC (compute-mfcc-feats) features of the wav
files in a wav.scp, with Kaldi's arithmetic (kaldi-native-fbank). Also writes utt2num_frames
next to the scp when the wspecifier has one.

\b
Usage:  compute-fbank-feats [options] WAV_SCP FEATS_WSPECIFIER
e.g.:   compute-fbank-feats --num-mel-bins=40 data/train/wav.scp ark,scp:data/train/feats.ark,data/train/feats.scp
        compute-fbank-feats --config=conf/fbank.conf data/train/wav.scp ark:feats.ark
\b
Kaldi's options by their names are accepted (a Kaldi fbank.conf / mfcc.conf works as --config):
--sample-frequency, --frame-length, --frame-shift, --low-freq, --high-freq, --snip-edges,
--use-energy, --window-type, ... (see below). The default --dither is 0 (Kaldi: 1), for
reproducible features.
"""

import logging
import time

import click

from nnetavg.asr.features import KALDI_FEATURE_OPTIONS, compute_features, read_wav, read_wav_scp
from nnetavg.bin._common import KALDI_BOOL, fail, kaldi_command
from nnetavg.io.tables import MATRIX, TableWriter
from nnetavg.progress import Progress

log = logging.getLogger("nnetavg.bin")


def _run(kind, wav_scp, feats_wspecifier, num_mel_bins, num_ceps, dither, sample_frequency, kw):
    extra = {name: kw[name.replace("-", "_")] for name, (_, _, kinds) in KALDI_FEATURE_OPTIONS.items()
             if kind in kinds.split() and kw.get(name.replace("-", "_")) is not None}
    start, n, frames = time.time(), 0, 0
    with open(wav_scp, encoding="utf-8") as f:
        progress = Progress("utterances", total=sum(1 for line in f if line.strip()), period=30.0)
    with TableWriter(feats_wspecifier, MATRIX) as w:
        for utt, path in read_wav_scp(wav_scp):
            samples, rate = read_wav(path, utt)
            if sample_frequency and rate != sample_frequency:
                fail(f"{wav_scp}: utterance {utt}: the wav's sampling rate is {rate} Hz, "
                     f"--sample-frequency is {sample_frequency:g}")
            feats = compute_features(samples, rate, kind, num_mel_bins, num_ceps, dither, extra)
            if feats.shape[0] == 0:
                log.warning("utterance %s: shorter than one frame, skipped", utt)
                continue
            w.write(utt, feats)
            n += 1
            frames += feats.shape[0]
            progress.update()
    progress.close()
    secs = time.time() - start
    log.info("computed %s features for %d utterances: frames=%d dim=%d frames_per_s=%.0f",
             kind, n, frames, feats.shape[1] if n else 0, frames / max(secs, 1e-9))
    if n == 0:
        fail(f"no features computed from {wav_scp}")


def _options(kind):
    """Our options and Kaldi's (fbank.conf / mfcc.conf spellings); unset Kaldi options keep
    Kaldi's defaults."""
    def deco(f):
        for name, (_, typ, kinds) in reversed(list(KALDI_FEATURE_OPTIONS.items())):
            if kind in kinds.split():
                f = click.option(f"--{name}", type=KALDI_BOOL if typ is bool else typ, default=None,
                                 help="As Kaldi's (default: Kaldi's)")(f)
        f = click.option("--sample-frequency", type=float, default=0.0, show_default=True,
                         help="Expected sampling rate of the wavs (0: take each wav's own); a mismatch is an error")(f)
        f = click.option("--dither", type=float, default=0.0, show_default=True, help="Dithering constant (0: reproducible)")(f)
        f = click.option("--num-mel-bins", type=int, default=40, show_default=True)(f)
        return f
    return deco


@kaldi_command(help=__doc__)
@_options("fbank")
@click.argument("wav_scp")
@click.argument("feats_wspecifier")
def fbank_main(wav_scp, feats_wspecifier, num_mel_bins, dither, sample_frequency, verbose, **kw):
    _run("fbank", wav_scp, feats_wspecifier, num_mel_bins, 13, dither, sample_frequency, kw)


@kaldi_command(help=__doc__.replace("compute-fbank-feats --num-mel-bins=40", "compute-mfcc-feats --num-ceps=13"))
@_options("mfcc")
@click.option("--num-ceps", type=int, default=13, show_default=True)
@click.argument("wav_scp")
@click.argument("feats_wspecifier")
def mfcc_main(wav_scp, feats_wspecifier, num_mel_bins, num_ceps, dither, sample_frequency, verbose, **kw):
    _run("mfcc", wav_scp, feats_wspecifier, num_mel_bins, num_ceps, dither, sample_frequency, kw)
