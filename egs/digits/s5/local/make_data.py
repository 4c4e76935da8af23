#!/usr/bin/env python3
"""Synthesise a spoken-word corpus with espeak-ng and write it as Kaldi data directories.

Speakers are espeak-ng voice variants of American English (``en-us+VARIANT``, so every speaker
shares one phone set), each with its own speaking rate and pitch, jittered per utterance. Every
utterance gets 100-500 ms of lead-in silence and white noise at 20-40 dB SNR (--snr). Train and test
speakers are disjoint.

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
    p.add_argument("--num-train-speakers", type=int, default=24)
    p.add_argument("--num-test-speakers", type=int, default=6)
    p.add_argument("--utts-per-speaker", type=int, default=40)
    p.add_argument("--test-utts-per-speaker", type=int, default=20)
    p.add_argument("--snr", default="20:40", help="range of the white noise's SNR in dB, MIN:MAX")
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

    dropped = 0
    for part, speakers, per_spk in (("train", voices[: args.num_train_speakers], args.utts_per_speaker),
                                    ("test", voices[args.num_train_speakers:], args.test_utts_per_speaker)):
        d = f"{args.out_dir}/{part}"
        os.makedirs(f"{args.out_dir}/wav/{part}", exist_ok=True)
        os.makedirs(d, exist_ok=True)
        rows = []
        for voice in speakers:
            spk = voice.lower().replace("_", "-")
            base_rate, base_pitch = rng.randint(130, 230), rng.randint(20, 80)
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
                power = np.mean(audio.astype(np.float64) ** 2)
                snr_db = rng.uniform(snr_min, snr_max)
                signal += nrng.normal(0.0, np.sqrt(power / 10 ** (snr_db / 10)), len(signal))
                signal = np.clip(np.round(signal), -32768, 32767)
                utt = f"{spk}-{n:04d}"
                path = os.path.abspath(f"{args.out_dir}/wav/{part}/{utt}.wav")
                write_wav(path, signal, rate_hz)
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
        print(f"make_data.py: {part}: {len(rows)} utterances from {len(speakers)} speakers "
              f"({sum(len(r[3].split()) for r in rows)} words)")
    print(f"make_data.py: vocabulary {len(words)} words, "
          f"{len({ph for pron in lexicon.values() for ph in pron})} phones; "
          f"{dropped} sentences re-drawn because the synthesiser's phones did not follow the lexicon")


if __name__ == "__main__":
    main()
