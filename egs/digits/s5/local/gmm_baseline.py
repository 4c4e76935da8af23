#!/usr/bin/env python3
"""GMM baseline: a monophone GMM (kaldi-hmm-gmm) on 13 MFCCs + deltas + delta-deltas with
per-speaker mean normalisation, trained on the same exact alignments as the DNN, decoded with the
same graph. Writes OUT_DIR/hyp.txt (score it with compute-wer). With --realign DIR, also
force-aligns the training data with the GMM (Kaldi's gmm-align-compiled) and writes DIR/ali.ark
(transition ids) and DIR/pdf.ark, logging how many frames agree with the given alignments.

Usage: gmm_baseline.py [--num-iters N] [--total-gauss N] [--realign DIR] DATA_TRAIN DATA_TEST LANG_DIR HCLG ALI_RSPECIFIER OUT_DIR
"""

import argparse
import logging
import os

import numpy as np

from nnetavg.asr.decode import Decoder, DecodeOptions
from nnetavg.asr.features import add_deltas, compute_features, read_wav, read_wav_scp
from nnetavg.asr.gmm import align_with_gmm, train_mono_gmm
from nnetavg.asr.lang import import_kaldi_hmm_gmm, load_lang
from nnetavg.io.tables import INT_VECTOR, SequentialReader, TableWriter
from nnetavg.log import setup as setup_logging


def mfcc_cmn(data_dir):
    utt2spk = dict(line.split() for line in open(f"{data_dir}/utt2spk"))
    feats = {}
    for utt, path in read_wav_scp(f"{data_dir}/wav.scp"):
        samples, rate = read_wav(path, utt)
        feats[utt] = add_deltas(compute_features(samples, rate, "mfcc"))
    for spk in set(utt2spk.values()):
        utts = [u for u in feats if utt2spk[u] == spk]
        mean = np.concatenate([feats[u] for u in utts]).mean(0)
        for u in utts:
            feats[u] = feats[u] - mean
    return feats


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--num-iters", type=int, default=10)
    p.add_argument("--total-gauss", type=int, default=1000)
    p.add_argument("--realign", default="", help="write GMM alignments of the training data here")
    for a in ("train", "test", "lang", "hclg", "ali", "out_dir"):
        p.add_argument(a)
    args = p.parse_args()
    setup_logging("gmm_baseline.py")
    log = logging.getLogger("nnetavg.recipe")
    lang = load_lang(args.lang)
    train, test = mfcc_cmn(args.train), mfcc_cmn(args.test)
    tid_ali = dict(SequentialReader(args.ali, INT_VECTOR))
    tid_to_pdf = np.asarray(lang.transition_model.transition_id_to_pdf_array())
    pdf_ali = {u: tid_to_pdf[a] for u, a in tid_ali.items()}
    am = train_mono_gmm(lang, train, pdf_ali, args.num_iters, args.total_gauss)
    import_kaldi_hmm_gmm()
    import kaldifst

    decoder = Decoder(kaldifst.StdVectorFst.read(args.hclg), lang, DecodeOptions())
    os.makedirs(args.out_dir, exist_ok=True)
    failed = 0
    with open(f"{args.out_dir}/hyp.txt", "w") as f:
        for utt in sorted(test):
            result = decoder.decode_gmm(utt, am, test[utt])
            if result is None:
                failed += 1
                continue
            f.write(f"{utt} {' '.join(result[0])}\n")
    log.info("GMM: gauss=%d decoded=%d failed=%d", am.num_gauss, len(test) - failed, failed)
    if args.realign:
        texts = {line.split()[0]: line.split()[1:] for line in open(f"{args.train}/text")}
        alis, bad = align_with_gmm(lang, am, train, texts)
        os.makedirs(args.realign, exist_ok=True)
        same_pdf = same_phone = frames = 0
        tm = lang.transition_model
        tid_to_phone = np.array([0] + [tm.transition_id_to_phone(t) for t in range(1, tm.num_transition_ids + 1)])
        with TableWriter(f"ark:{args.realign}/ali.ark", INT_VECTOR) as wa, \
                TableWriter(f"ark:{args.realign}/pdf.ark", INT_VECTOR) as wp:
            for utt in sorted(alis):
                ali = alis[utt]
                wa.write(utt, ali)
                wp.write(utt, tid_to_pdf[ali].astype(np.int32))
                if utt in tid_ali:
                    ref = tid_ali[utt]
                    same_pdf += int((tid_to_pdf[ali] == tid_to_pdf[ref]).sum())
                    same_phone += int((tid_to_phone[ali] == tid_to_phone[ref]).sum())
                    frames += len(ali)
        log.info("GMM alignment of %s: aligned=%d failed=%d frames=%d pdf-agreement=%.4f phone-agreement=%.4f",
                 args.train, len(alis), len(bad), frames, same_pdf / max(frames, 1), same_phone / max(frames, 1))


if __name__ == "__main__":
    main()
