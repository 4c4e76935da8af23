"""Split a data directory into per-archive training lists and a CV list held out by speaker.

\b
Usage:  nnet-split-data [options] DATA_DIR OUT_DIR
e.g.:   nnet-split-data --num-archives=4 --cv-spk-percent=10 data/train egs/lists
\b
Writes OUT_DIR/feats.1.scp ... feats.N.scp (the lines of DATA_DIR/feats.scp for each archive, in
shuffled order, so a sequential read of one visits its utterances shuffled) and OUT_DIR/cv.scp.
"""

import logging
import os

import click

from nnetavg.bin._common import kaldi_command
from nnetavg.data.split import read_kaldi_map, split_data_dir, write_list

log = logging.getLogger("nnetavg.bin")


@kaldi_command(help=__doc__)
@click.option("--num-archives", type=int, default=4, show_default=True)
@click.option("--cv-spk-percent", type=float, default=10.0, show_default=True, help="Percent of speakers held out")
@click.option("--seed", type=int, default=777, show_default=True)
@click.argument("data_dir")
@click.argument("out_dir")
def main(num_archives, cv_spk_percent, seed, data_dir, out_dir, verbose):
    lists, cv = split_data_dir(data_dir, num_archives, cv_spk_percent, seed)
    os.makedirs(out_dir, exist_ok=True)
    scp = read_kaldi_map(os.path.join(data_dir, "feats.scp"))
    for i, utts in enumerate(lists, 1):
        write_list(os.path.join(out_dir, f"feats.{i}.scp"), [f"{u} {scp[u]}" for u in utts])
    write_list(os.path.join(out_dir, "cv.scp"), [f"{u} {scp[u]}" for u in cv])
    log.info("split %s: train-utterances=%d archives=%d cv-utterances=%d", data_dir,
             sum(map(len, lists)), num_archives, len(cv))
