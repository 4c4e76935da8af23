"""Kaldi features from wav files with kaldi-native-fbank (Kaldi-identical fbank and MFCC).

Dither is off by default (0.0, unlike Kaldi's 1.0) so that features, and everything trained on
them, are reproducible bit for bit; the synthetic corpora carry their own noise.
"""

from __future__ import annotations

import wave

import numpy as np

from nnetavg.errors import NnetavgError


def read_wav(path: str, utt: str = "") -> tuple[np.ndarray, int]:
    """Samples (float32, in 16-bit units as Kaldi reads them) and the sample rate of a PCM wav."""
    try:
        with wave.open(path, "rb") as w:
            if w.getsampwidth() != 2:
                raise NnetavgError(f"utterance {utt}: {path}: only 16-bit PCM wav is supported")
            rate, channels = w.getframerate(), w.getnchannels()
            data = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2")
    except (OSError, EOFError, wave.Error) as e:
        raise NnetavgError(f"utterance {utt}: cannot read wav file {path}: {e}") from None
    if channels > 1:
        data = data.reshape(-1, channels)[:, 0]
    return data.astype(np.float32), rate


def read_wav_scp(path: str):
    """(utt, wav path) pairs of a wav.scp; extended filenames (pipes, offsets) are refused."""
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            fields = line.split(maxsplit=1)
            if not fields:
                continue
            if len(fields) != 2 or fields[1].rstrip().endswith("|"):
                raise NnetavgError(f"{path}:{n}: expected 'utt /path/to/file.wav' (pipes are not supported)")
            yield fields[0], fields[1].strip()


def _options(kind: str, sample_rate: int, num_bins: int, num_ceps: int, dither: float):
    import kaldi_native_fbank as knf

    opts = knf.FbankOptions() if kind == "fbank" else knf.MfccOptions()
    opts.frame_opts.samp_freq = float(sample_rate)
    opts.frame_opts.dither = dither
    opts.mel_opts.num_bins = num_bins
    if kind == "mfcc":
        opts.num_ceps = num_ceps
    return opts


def compute_features(samples: np.ndarray, sample_rate: int, kind: str = "fbank", num_bins: int = 40,
                     num_ceps: int = 13, dither: float = 0.0) -> np.ndarray:
    """(num_frames, dim) float32 features of one utterance, as Kaldi's compute-{fbank,mfcc}-feats."""
    try:
        import kaldi_native_fbank as knf
    except ImportError as e:
        raise NnetavgError(f"features need kaldi-native-fbank ({e}): pip install kaldi-native-fbank") from e
    opts = _options(kind, sample_rate, num_bins, num_ceps, dither)
    computer = knf.OnlineFbank(opts) if kind == "fbank" else knf.OnlineMfcc(opts)
    computer.accept_waveform(float(sample_rate), samples)
    computer.input_finished()
    n = computer.num_frames_ready
    if n == 0:
        return np.zeros((0, computer.dim), np.float32)
    return np.stack([computer.get_frame(i) for i in range(n)]).astype(np.float32)


def add_deltas(feats: np.ndarray, order: int = 2, window: int = 2) -> np.ndarray:
    import kaldi_native_fbank as knf

    return knf.compute_deltas(knf.DeltaOptions(order=order, window=window), np.ascontiguousarray(feats, np.float32))
