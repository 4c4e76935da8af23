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


# Kaldi's feature options (fbank.conf / mfcc.conf spellings) -> (kaldi-native-fbank attribute,
# type, which of fbank/mfcc take it). Defaults are kaldi-native-fbank's, which are Kaldi's.
KALDI_FEATURE_OPTIONS = {
    "frame-length": ("frame_opts.frame_length_ms", float, "fbank mfcc"),
    "frame-shift": ("frame_opts.frame_shift_ms", float, "fbank mfcc"),
    "preemphasis-coefficient": ("frame_opts.preemph_coeff", float, "fbank mfcc"),
    "remove-dc-offset": ("frame_opts.remove_dc_offset", bool, "fbank mfcc"),
    "window-type": ("frame_opts.window_type", str, "fbank mfcc"),
    "round-to-power-of-two": ("frame_opts.round_to_power_of_two", bool, "fbank mfcc"),
    "snip-edges": ("frame_opts.snip_edges", bool, "fbank mfcc"),
    "blackman-coeff": ("frame_opts.blackman_coeff", float, "fbank mfcc"),
    "low-freq": ("mel_opts.low_freq", float, "fbank mfcc"),
    "high-freq": ("mel_opts.high_freq", float, "fbank mfcc"),
    "vtln-low": ("mel_opts.vtln_low", float, "fbank mfcc"),
    "vtln-high": ("mel_opts.vtln_high", float, "fbank mfcc"),
    "htk-mode": ("mel_opts.htk_mode", bool, "fbank mfcc"),
    "use-energy": ("use_energy", bool, "fbank mfcc"),
    "energy-floor": ("energy_floor", float, "fbank mfcc"),
    "raw-energy": ("raw_energy", bool, "fbank mfcc"),
    "htk-compat": ("htk_compat", bool, "fbank mfcc"),
    "use-log-fbank": ("use_log_fbank", bool, "fbank"),
    "use-power": ("use_power", bool, "fbank"),
    "cepstral-lifter": ("cepstral_lifter", float, "mfcc"),
}


def _options(kind: str, sample_rate: int, num_bins: int, num_ceps: int, dither: float, extra: dict | None = None):
    import kaldi_native_fbank as knf

    opts = knf.FbankOptions() if kind == "fbank" else knf.MfccOptions()
    opts.frame_opts.samp_freq = float(sample_rate)
    opts.frame_opts.dither = dither
    opts.mel_opts.num_bins = num_bins
    if kind == "mfcc":
        opts.num_ceps = num_ceps
    for name, value in (extra or {}).items():
        path = KALDI_FEATURE_OPTIONS[name][0].split(".")
        target = opts
        for part in path[:-1]:
            target = getattr(target, part)
        setattr(target, path[-1], value)
    return opts


def compute_features(samples: np.ndarray, sample_rate: int, kind: str = "fbank", num_bins: int = 40,
                     num_ceps: int = 13, dither: float = 0.0, extra: dict | None = None) -> np.ndarray:
    """(num_frames, dim) float32 features of one utterance, as Kaldi's compute-{fbank,mfcc}-feats;
    ``extra``: more of Kaldi's options by their names (:data:`KALDI_FEATURE_OPTIONS`)."""
    try:
        import kaldi_native_fbank as knf
    except ImportError as e:
        raise NnetavgError(f"features need kaldi-native-fbank ({e}): pip install kaldi-native-fbank") from e
    opts = _options(kind, sample_rate, num_bins, num_ceps, dither, extra)
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
