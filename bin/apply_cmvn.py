"""Apply CMVN: subtract the mean (and with --norm-vars divide by the standard deviation).

\b
Usage:  apply-cmvn [options] (STATS_RSPECIFIER | STATS_RXFILENAME) FEATS_RSPECIFIER FEATS_WSPECIFIER
e.g.:   apply-cmvn --utt2spk=ark:data/train/utt2spk scp:data/train/cmvn.scp scp:data/train/feats.scp ark:-
"""

import logging

import click

from nnetavg.bin._common import KALDI_BOOL, kaldi_command
from nnetavg.data.cmvn import apply_cmvn
from nnetavg.data.split import read_kaldi_map
from nnetavg.errors import NnetavgError
from nnetavg.io.tables import MATRIX, RandomAccessReader, SequentialReader, TableWriter, is_rspecifier, read_single

log = logging.getLogger("nnetavg.bin")


@kaldi_command(help=__doc__)
@click.option("--utt2spk", type=str, default="", help="rspecifier of the utterance-to-speaker map")
@click.option("--norm-means", type=KALDI_BOOL, default=True, show_default=True)
@click.option("--norm-vars", type=KALDI_BOOL, default=False, show_default=True)
@click.argument("stats")
@click.argument("feats_rspecifier")
@click.argument("feats_wspecifier")
def main(utt2spk, norm_means, norm_vars, stats, feats_rspecifier, feats_wspecifier, verbose):
    u2s = read_kaldi_map(utt2spk.split(":", 1)[1]) if utt2spk else {}
    table = RandomAccessReader(stats, MATRIX) if is_rspecifier(stats) else None
    glob = None if table is not None else read_single(stats, MATRIX)
    done = missing = 0
    with TableWriter(feats_wspecifier, MATRIX) as w:
        for key, x in SequentialReader(feats_rspecifier, MATRIX):
            if not norm_means:
                w.write(key, x)
                done += 1
                continue
            if table is not None:
                spk = u2s.get(key, key) if utt2spk else key
                s = table.get(spk)
                if s is None:
                    missing += 1
                    log.warning("no CMVN stats for %s (utterance %s) in %s, skipped", spk, key, stats)
                    continue
            else:
                s = glob
            try:
                w.write(key, apply_cmvn(x, s, norm_vars, name=f"{stats} for {key}"))
            except NnetavgError as exc:
                raise NnetavgError(f"utterance {key}: {exc}") from None
            done += 1
    log.info("applied CMVN to %d utterances, %d without stats", done, missing)
    if done == 0:
        raise NnetavgError(f"no utterance normalised from {feats_rspecifier}")
