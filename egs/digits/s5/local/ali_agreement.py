#!/usr/bin/env python3
"""How well a GMM system's alignments agree with the synthesiser's phone timings: the share of
frames whose aligned phone is the phone the synthesiser was saying at the frame's centre (phones
compared by base name, so word-position variants count as their phone). Prints one line and,
with --per-phone N, the N phones with the most disagreeing frames and what they were aligned to.

Usage: ali_agreement.py [--per-phone N] DATA_DIR ALI_DIR
  DATA_DIR: wav.scp (for the sample rate) and phone_times; ALI_DIR: final.mdl, phones.txt, ali.*.gz
"""

import argparse
import collections
import glob
import os

import numpy as np

from nnetavg.asr.align import frame_geometry, parse_phone_times
from nnetavg.asr.features import read_wav, read_wav_scp
from nnetavg.asr.lang import read_symbols
from nnetavg.asr.models import read_transition_model
from nnetavg.io.tables import INT_VECTOR, SequentialReader


def base(p: str) -> str:
    return p[:-2] if p[-2:] in ("_B", "_E", "_I", "_S") else p


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--per-phone", type=int, default=0)
    ap.add_argument("data_dir")
    ap.add_argument("ali_dir")
    args = ap.parse_args()
    tm = read_transition_model(os.path.join(args.ali_dir, "final.mdl"))
    names = {i: base(p) for p, i in read_symbols(os.path.join(args.ali_dir, "phones.txt")).items()}
    _, wav = next(read_wav_scp(os.path.join(args.data_dir, "wav.scp")))
    rate = read_wav(wav)[1]
    window, shift = frame_geometry(rate)
    hyp = {}
    for f in sorted(glob.glob(os.path.join(args.ali_dir, "ali.*.gz"))):
        hyp.update(SequentialReader(f"ark:gunzip -c {f} |", INT_VECTOR))
    same = total = 0
    wrong, count = collections.Counter(), collections.Counter()
    for line in open(os.path.join(args.data_dir, "phone_times")):
        utt, _, segs = parse_phone_times(line)
        if utt not in hyp:
            continue
        ali = hyp[utt]
        centres = (np.arange(len(ali)) * shift + window / 2) * 1000.0 / rate
        idx = np.maximum(np.searchsorted([s for _, s in segs], centres, side="right") - 1, 0)
        ref = [segs[i][0] for i in idx]
        got = [names[p] for p in tm.tid2phone[ali]]
        for r, g in zip(ref, got):
            count[r] += 1
            if r != g:
                wrong[(r, g)] += 1
        same += sum(r == g for r, g in zip(ref, got))
        total += len(ali)
    print(f"phone agreement {100.0 * same / max(total, 1):.2f}% of {total} frames in {len(hyp)} utterances "
          f"({args.ali_dir} against {args.data_dir}/phone_times)")
    per = collections.Counter()
    for (r, _), n in wrong.items():
        per[r] += n
    for p, n in per.most_common(args.per_phone):
        top = ", ".join(f"{g} {m}" for (r, g), m in wrong.most_common() if r == p)
        print(f"  {p}: {100.0 * n / count[p]:.1f}% of {count[p]} frames elsewhere ({top[:80]})")


if __name__ == "__main__":
    main()
