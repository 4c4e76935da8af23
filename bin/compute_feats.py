"""Compute filterbank (compute-fbank-feats) or MFCC (compute-mfcc-feats) features of the wav
files in a wav.scp, with Kaldi's arithmetic (kaldi-native-fbank). Also writes utt2num_frames
next to the scp when the wspecifier has one.

\b
Usage:  compute-fbank-feats [options] WAV_SCP FEATS_WSPECIFIER
e.g.:   compute-fbank-feats --num-mel-bins=40 data/train/wav.scp ark,scp:data/train/feats.ark,data/train/feats.scp
"""

import logging
import time

import click

from nnetavg.asr.features import compute_features, read_wav, read_wav_scp
from nnetavg.bin._common import kaldi_command
from nnetavg.io.tables import MATRIX, TableWriter
from nnetavg.progress import Progress

log = logging.getLogger("nnetavg.bin")


def _run(kind, wav_scp, feats_wspecifier, num_mel_bins, num_ceps, dither):
    start, n, frames = time.time(), 0, 0
    with open(wav_scp, encoding="utf-8") as f:
        progress = Progress("utterances", total=sum(1 for line in f if line.strip()), period=30.0)
    with TableWriter(feats_wspecifier, MATRIX) as w:
        for utt, path in read_wav_scp(wav_scp):
            samples, rate = read_wav(path, utt)
            feats = compute_features(samples, rate, kind, num_mel_bins, num_ceps, dither)
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
        raise click.ClickException("no features computed")


def _options(f):
    f = click.option("--dither", type=float, default=0.0, show_default=True, help="Dithering constant (0: reproducible)")(f)
    f = click.option("--num-mel-bins", type=int, default=40, show_default=True)(f)
    return f


@kaldi_command(help=__doc__)
@_options
@click.argument("wav_scp")
@click.argument("feats_wspecifier")
def fbank_main(wav_scp, feats_wspecifier, num_mel_bins, dither, verbose):
    _run("fbank", wav_scp, feats_wspecifier, num_mel_bins, 13, dither)


@kaldi_command(help=__doc__.replace("compute-fbank-feats --num-mel-bins=40", "compute-mfcc-feats --num-ceps=13"))
@_options
@click.option("--num-ceps", type=int, default=13, show_default=True)
@click.argument("wav_scp")
@click.argument("feats_wspecifier")
def mfcc_main(wav_scp, feats_wspecifier, num_mel_bins, num_ceps, dither, verbose):
    _run("mfcc", wav_scp, feats_wspecifier, num_mel_bins, num_ceps, dither)
