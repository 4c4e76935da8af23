#!/usr/bin/env python3
"""Synthesise a spoken-word corpus with espeak-ng and write it as Kaldi data directories.

Speakers are espeak-ng voice variants of American English (``en-us+VARIANT``, so every speaker
shares one phone set), each with its own speaking rate and pitch, jittered per utterance
(--speakers-per-voice: several speakers from one variant, each with its own rate, pitch and channel).
Every utterance gets 100-500 ms of lead-in silence and noise at --snr dB. Train and test voices are
disjoint.

Harder conditions (the defaults keep the original corpus: white noise, no channel):
  --noise white,pink,babble     a noise type drawn per utterance (babble: 3-6 other sentences of
                                the same part's voices, summed)
  --channels flat,telephone,eq,reverb
                                a channel drawn per speaker: 300-3400 Hz band-pass, a random
                                +-9 dB equaliser, or a room (exponentially decaying impulse
                                response, RT60 0.15-0.5 s); the phone timings stay the synthesiser's
  --homophones N                N pairs of words espeak-ng pronounces alike (right/write, ...) added
                                to the vocabulary: the lexicon then needs #1/#2 disambiguation

Writes, for each of ``train`` and ``test`` under OUT_DIR:
  wav.scp, text, utt2spk, spk2utt   -- Kaldi data directory (16-bit mono wav files under OUT_DIR/wav)
  phone_times                       -- the synthesiser's own phone timings:
                                       ``utt dur_ms phone start_ms phone start_ms ...`` (SIL for pauses)
and the Kaldi dict dir OUT_DIR/local/dict (lexicon.txt: each word's pronunciation, from synthesising
it alone; silence_phones.txt and optional_silence.txt: SIL; nonsilence_phones.txt).

  --vocab digits   the ten digits zero..nine (digit strings of 3-7 words)
  --vocab words    --num-words words drawn from /usr/share/dict/words (sentences of 3-6 words)
"""

import argparse
import os
import random
import subprocess
import sys
import wave

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from espeak import Espeak  # noqa: E402

DIGITS = "zero one two three four five six seven eight nine".split()
SIL = "SIL"
HOMOPHONE_CANDIDATES = [
    ("right", "write"), ("night", "knight"), ("sea", "see"), ("pair", "pear"), ("flour", "flower"),
    ("meat", "meet"), ("mail", "male"), ("sail", "sale"), ("tail", "tale"), ("rain", "reign"),
    ("hair", "hare"), ("road", "rode"), ("sun", "son"), ("weak", "week"), ("hole", "whole"),
    ("made", "maid"), ("piece", "peace"), ("plain", "plane"), ("steal", "steel"), ("wait", "weight"),
    ("blue", "blew"), ("bear", "bare"), ("deer", "dear"), ("fair", "fare"), ("heal", "heel"),
    ("nose", "knows"), ("peak", "peek"), ("one", "won"), ("four", "for"), ("eight", "ate"),
]


def voice_variants():
    out = subprocess.run(["espeak-ng", "--voices=variant"], capture_output=True, text=True, check=True).stdout
    names = []
    for line in out.splitlines()[1:]:
        fields = line.split()
        if len(fields) >= 5 and fields[4].startswith("!v/"):
            names.append(fields[4][3:])
    return sorted(set(names))


def word_list(num_words, rng):
    path = "/usr/share/dict/words"
    if not os.path.exists(path):
        sys.exit(f"make_data.py: {path} not found (Debian package wamerican); needed for --vocab words")
    with open(path, encoding="utf-8", errors="replace") as f:
        words = sorted({w.strip().lower() for w in f if w.strip().isalpha() and w.strip().isascii() and 3 <= len(w.strip()) <= 8})
    return sorted(rng.sample(words, num_words))


def pronounce(synth, word):
    _, phones, _ = synth.synthesize(word, "en-us", 175, 50)
    return [p for _, p in phones if not p.startswith("_")]


def phone_segments(events, num_ms, lead_ms, reference):
    """Phone segments (phone, start_ms) for the whole padded utterance, following ``reference``.

    Phones the synthesiser inserts between words in running speech (a linking r, the ';' linking
    mark) are merged into the phone before them, so the segments spell the lexicon's pronunciations;
    returns None if the synthesiser's phones do not contain the reference in order.
    """
    segments = [(SIL, 0)]
    j = 0
    for start, phone in events:
        start += lead_ms
        if phone.startswith("_"):
            segments.append((SIL, start))
        elif j < len(reference) and phone == reference[j]:
            segments.append((phone, start))
            j += 1
        elif segments[-1][0] == SIL:
            return None  # an inserted phone after a pause: nothing to merge it into
        # else: an inserted phone, merged into the previous one
    if j != len(reference):
        return None
    merged = []
    for phone, start in segments:
        if start >= num_ms:
            break
        if merged and merged[-1][0] == phone == SIL:
            continue
        if merged and merged[-1][1] == start:
            merged[-1] = (phone, start)
        else:
            merged.append((phone, start))
    return merged


def homophone_pairs(synth, num_pairs, vocab):
    """Up to ``num_pairs`` candidate pairs espeak-ng pronounces identically, neither word in ``vocab``."""
    pairs = []
    for a, b in HOMOPHONE_CANDIDATES:
        if len(pairs) == num_pairs:
            break
        if a in vocab or b in vocab:
            continue
        pa, pb = pronounce(synth, a), pronounce(synth, b)
        if pa and pa == pb:
            pairs.append((a, b))
    if len(pairs) < num_pairs:
        print(f"make_data.py: only {len(pairs)} of {num_pairs} homophone pairs are pronounced alike by this espeak-ng")
    return pairs


def _spectral(signal, gain_of_freq, rate_hz):
    """``signal`` filtered by the real, zero-phase gain ``gain_of_freq(freqs_hz)`` (FFT domain)."""
    spec = np.fft.rfft(signal)
    spec *= gain_of_freq(np.fft.rfftfreq(len(signal), 1.0 / rate_hz))
    return np.fft.irfft(spec, len(signal))


class Channel:
    """One speaker's recording channel: flat, telephone band, random equaliser or a room."""

    def __init__(self, kind, rng, rate_hz):
        self.kind, self.rate_hz = kind, rate_hz
        if kind == "eq":
            self.eq_freqs = np.geomspace(100, rate_hz / 2, 8)
            self.eq_db = np.array([rng.uniform(-9, 9) for _ in self.eq_freqs])
        elif kind == "reverb":
            rt60 = rng.uniform(0.15, 0.5)
            n = int(rt60 * rate_hz)
            t = np.arange(n) / rate_hz
            ir = np.random.default_rng(rng.randrange(2**32)).normal(0, 1, n) * np.exp(-6.9 * t / rt60)
            ir[0] = 0.0
            ir *= 0.6 / np.sqrt(np.sum(ir ** 2))   # reverberant energy against the direct path's 1
            ir[0] = 1.0
            self.ir = ir
        elif kind not in ("flat", "telephone"):
            raise SystemExit(f"make_data.py: unknown channel {kind!r} (flat, telephone, eq, reverb)")

    def __call__(self, signal):
        if self.kind == "telephone":
            def gain(f):
                lo = np.clip((f - 200) / 200, 0, 1)       # 200-400 Hz ramp up
                hi = np.clip((3600 - f) / 400, 0, 1)      # 3200-3600 Hz ramp down
                return np.sin(0.5 * np.pi * lo) * np.sin(0.5 * np.pi * hi)
            return _spectral(signal, gain, self.rate_hz)
        if self.kind == "eq":
            logf = np.log(self.eq_freqs)
            return _spectral(signal, lambda f: 10 ** (np.interp(np.log(np.maximum(f, 1.0)), logf, self.eq_db) / 20),
                             self.rate_hz)
        if self.kind == "reverb":
            n = len(signal) + len(self.ir) - 1
            out = np.fft.irfft(np.fft.rfft(signal, n) * np.fft.rfft(self.ir, n), n)
            return out[: len(signal)]
        return signal


def make_noise(kind, num, rng, nrng, babble_pool, rate_hz):
    """``num`` samples of unit-power noise of ``kind`` (white, pink or babble)."""
    if kind == "white":
        noise = nrng.normal(0.0, 1.0, num)
    elif kind == "pink":
        noise = _spectral(nrng.normal(0.0, 1.0, num), lambda f: 1.0 / np.sqrt(np.maximum(f, 20.0)), rate_hz)
    elif kind == "babble":
        noise = np.zeros(num)
        for _ in range(rng.randint(3, 6)):
            talk = babble_pool[rng.randrange(len(babble_pool))]
            start = rng.randrange(max(1, len(talk) - num)) if len(talk) > num else 0
            piece = np.resize(talk[start:], num)   # a short sentence repeats
            noise += piece / np.sqrt(np.mean(piece ** 2) + 1e-9)
    else:
        raise SystemExit(f"make_data.py: unknown noise {kind!r} (white, pink, babble)")
    return noise / np.sqrt(np.mean(noise ** 2) + 1e-12)


def resample(signal, rate_in, rate_out):
    """Band-limited resampling (the spectrum cut at the lower Nyquist frequency)."""
    if rate_out == rate_in:
        return signal
    n_out = int(round(len(signal) * rate_out / rate_in))
    spec = np.fft.rfft(signal)
    keep = min(len(spec), n_out // 2 + 1)
    return np.fft.irfft(spec[:keep], n_out) * (n_out / len(signal))


def write_wav(path, samples, rate):
    with wave.open(path, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(samples.astype("<i2").tobytes())


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--vocab", choices=["digits", "words"], default="digits")
    p.add_argument("--num-words", type=int, default=150, help="vocabulary size for --vocab words")
    p.add_argument("--num-train-speakers", type=int, default=24, help="voice variants for training")
    p.add_argument("--num-test-speakers", type=int, default=6, help="other voice variants for testing")
    p.add_argument("--utts-per-speaker", type=int, default=40)
    p.add_argument("--test-utts-per-speaker", type=int, default=20)
    p.add_argument("--snr", default="20:40", help="range of the noise's SNR in dB, MIN:MAX")
    p.add_argument("--noise", default="white", help="noise types drawn per utterance: white,pink,babble")
    p.add_argument("--channels", default="flat", help="channels drawn per speaker: flat,telephone,eq,reverb")
    p.add_argument("--speakers-per-voice", type=int, default=1, help="training speakers made from each voice variant")
    p.add_argument("--test-speakers-per-voice", type=int, default=1, help="test speakers made from each voice variant")
    p.add_argument("--homophones", type=int, default=0, help="pairs of words pronounced alike added to --vocab words")
    p.add_argument("--sample-rate", type=int, default=0,
                   help="resample the audio to this rate in Hz, e.g. 8000 (default: the synthesiser's, 22050)")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("out_dir")
    args = p.parse_args()

    snr_min, snr_max = (float(v) for v in args.snr.split(":"))
    rng = random.Random(args.seed)
    nrng = np.random.default_rng(args.seed)
    synth = Espeak()
    rate_hz = synth.sample_rate
    voices = voice_variants()
    need = args.num_train_speakers + args.num_test_speakers
    if len(voices) < need:
        sys.exit(f"make_data.py: espeak-ng has {len(voices)} voice variants, {need} speakers asked for")
    voices = rng.sample(voices, need)
    if args.vocab == "digits":
        vocab, min_len, max_len = DIGITS, 3, 7
    else:
        vocab, min_len, max_len = word_list(args.num_words, rng), 3, 6
    if args.homophones:
        if args.vocab != "words":
            sys.exit("make_data.py: --homophones needs --vocab words")
        vocab = sorted(set(vocab) | {w for pair in homophone_pairs(synth, args.homophones, set(vocab)) for w in pair})
    lexicon = {w: pronounce(synth, w) for w in vocab}
    lexicon = {w: pron for w, pron in lexicon.items() if pron}

    os.makedirs(f"{args.out_dir}/local/dict", exist_ok=True)
    with open(f"{args.out_dir}/local/dict/lexicon.txt", "w") as f:
        for w in sorted(lexicon):
            f.write(f"{w} {' '.join(lexicon[w])}\n")
    # the rest of a Kaldi dict dir: SIL is the (optional) silence phone of the segments
    with open(f"{args.out_dir}/local/dict/nonsilence_phones.txt", "w") as f:
        f.writelines(f"{ph}\n" for ph in sorted({ph for pron in lexicon.values() for ph in pron} - {SIL}))
    for name in ("silence_phones.txt", "optional_silence.txt"):
        with open(f"{args.out_dir}/local/dict/{name}", "w") as f:
            f.write(f"{SIL}\n")
    words = sorted(lexicon)

    noises = args.noise.split(",")
    channels = args.channels.split(",")
    dropped = 0
    for part, part_voices, per_voice, per_spk in (
            ("train", voices[: args.num_train_speakers], args.speakers_per_voice, args.utts_per_speaker),
            ("test", voices[args.num_train_speakers:], args.test_speakers_per_voice, args.test_utts_per_speaker)):
        d = f"{args.out_dir}/{part}"
        os.makedirs(f"{args.out_dir}/wav/{part}", exist_ok=True)
        os.makedirs(d, exist_ok=True)
        babble_pool = []
        if "babble" in noises:   # other talkers: this part's own voices, so test babble is unseen too
            for _ in range(24):
                text = " ".join(rng.choice(words) for _ in range(6))
                audio, _, _ = synth.synthesize(text, f"en-us+{rng.choice(part_voices)}", rng.randint(130, 230),
                                               rng.randint(20, 80))
                babble_pool.append(audio.astype(np.float64))
        rows = []
        conditions = {}
        speakers = [(v, k) for v in part_voices for k in range(per_voice)]
        for voice, k in speakers:
            spk = voice.lower().replace("_", "-") + (f"-{k + 1}" if per_voice > 1 else "")
            base_rate, base_pitch = rng.randint(130, 230), rng.randint(20, 80)
            channel = Channel(rng.choice(channels), rng, rate_hz)
            conditions[spk] = channel.kind
            n = 0
            while n < per_spk:
                sentence = [rng.choice(words) for _ in range(rng.randint(min_len, max_len))]
                reference = [ph for w in sentence for ph in lexicon[w]]
                rate = base_rate + rng.randint(-20, 20)
                pitch = min(99, max(0, base_pitch + rng.randint(-10, 10)))
                audio, events, _ = synth.synthesize(" ".join(sentence), f"en-us+{voice}", rate, pitch)
                lead_ms = rng.randint(100, 500)
                lead = np.zeros(lead_ms * rate_hz // 1000, np.float64)
                signal = np.concatenate([lead, audio.astype(np.float64)])
                num_ms = 1000 * len(signal) // rate_hz
                segments = phone_segments(events, num_ms, lead_ms, reference)
                if segments is None:
                    dropped += 1
                    continue
                signal = channel(signal)
                power = np.mean(signal[len(lead):] ** 2)
                snr_db = rng.uniform(snr_min, snr_max)
                noise = make_noise(rng.choice(noises), len(signal), rng, nrng, babble_pool, rate_hz)
                signal += noise * np.sqrt(power / 10 ** (snr_db / 10))
                peak = np.max(np.abs(signal))
                if peak > 30000:   # a loud channel (equaliser gain): scale, do not clip
                    signal *= 30000 / peak
                out_rate = args.sample_rate or rate_hz
                signal = np.clip(np.round(resample(signal, rate_hz, out_rate)), -32768, 32767)
                utt = f"{spk}-{n:04d}"
                path = os.path.abspath(f"{args.out_dir}/wav/{part}/{utt}.wav")
                write_wav(path, signal, out_rate)
                times = " ".join(f"{ph} {start}" for ph, start in segments)
                rows.append((utt, spk, path, " ".join(sentence), f"{num_ms} {times}"))
                n += 1
        rows.sort()
        for name, col in (("wav.scp", 2), ("text", 3), ("utt2spk", 1), ("phone_times", 4)):
            with open(f"{d}/{name}", "w") as f:
                f.writelines(f"{r[0]} {r[col]}\n" for r in rows)
        with open(f"{d}/spk2utt", "w") as f:
            for spk in sorted({r[1] for r in rows}):
                f.write(f"{spk} {' '.join(r[0] for r in rows if r[1] == spk)}\n")
        with open(f"{d}/spk2channel", "w") as f:
            f.writelines(f"{spk} {kind}\n" for spk, kind in sorted(conditions.items()))
        print(f"make_data.py: {part}: {len(rows)} utterances from {len(speakers)} speakers "
              f"({sum(len(r[3].split()) for r in rows)} words)")
    print(f"make_data.py: vocabulary {len(words)} words, "
          f"{len({ph for pron in lexicon.values() for ph in pron})} phones; "
          f"{dropped} sentences re-drawn because the synthesiser's phones did not follow the lexicon")


if __name__ == "__main__":
    main()
