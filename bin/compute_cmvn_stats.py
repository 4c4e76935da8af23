"""Accumulate CMVN statistics (Kaldi format: 2 x (dim+1) double matrix) per utterance, per
speaker (--spk2utt), or globally (when the output is a file name, not a wspecifier).

\b
Usage:  compute-cmvn-stats [options] FEATS_RSPECIFIER (STATS_WSPECIFIER | STATS_WXFILENAME)
e.g.:   compute-cmvn-stats --spk2utt=ark:data/train/spk2utt scp:data/train/feats.scp \\
          ark,scp:data/train/cmvn.ark,data/train/cmvn.scp
        compute-cmvn-stats scp:data/train/feats.scp global.cmvn
"""

import logging

import click

from nnetavg.bin._common import binary_option, fail, kaldi_command
from nnetavg.data.cmvn import stats_of
from nnetavg.io.tables import MATRIX, RandomAccessReader, SequentialReader, TableWriter, parse_wspecifier, write_single

log = logging.getLogger("nnetavg.bin")


def _read_spk2utt(spec: str) -> list[tuple[str, list[str]]]:
    from nnetavg.io.kaldi_basic import read_rxfilename  # noqa: PLC0415
    name = spec.split(":", 1)[1] if spec.startswith("ark:") else spec
    out = []
    for line in read_rxfilename(name).decode().splitlines():
        parts = line.split()
        if parts:
            out.append((parts[0], parts[1:]))
    return out


@kaldi_command(help=__doc__)
@binary_option
@click.option("--spk2utt", type=str, default="", help="rspecifier of speaker-to-utterances map (per-speaker stats)")
@click.argument("feats_rspecifier")
@click.argument("stats_out")
def main(binary, spk2utt, feats_rspecifier, stats_out, verbose):
    is_table = True
    try:
        parse_wspecifier(stats_out)
    except Exception:
        is_table = False
    if not is_table:
        acc = None
        n = 0
        for _, x in SequentialReader(feats_rspecifier, MATRIX):
            s = stats_of(x)
            acc = s if acc is None else acc + s
            n += 1
        if acc is None:
            fail(f"no features in {feats_rspecifier}")
        write_single(stats_out, acc, MATRIX, binary)
        log.info("global stats over %d utterances, %d frames", n, int(acc[0, -1]))
        return
    with TableWriter(stats_out if binary else stats_out.replace(":", ",t:", 1), MATRIX) as w:
        if spk2utt:
            feats = RandomAccessReader(feats_rspecifier, MATRIX)
            for spk, utts in _read_spk2utt(spk2utt):
                acc = None
                for u in utts:
                    x = feats.get(u)
                    if x is None:
                        log.warning("no features for utterance %s of speaker %s", u, spk)
                        continue
                    s = stats_of(x)
                    acc = s if acc is None else acc + s
                if acc is None:
                    log.warning("speaker %s has no features; no stats written", spk)
                    continue
                w.write(spk, acc)
        else:
            for key, x in SequentialReader(feats_rspecifier, MATRIX):
                w.write(key, stats_of(x))
