"""Splitting a Kaldi data directory into a cross-validation set and per-job training lists.

As nnet1's ``utils/subset_data_dir_tr_cv.sh``, the CV set is about ``cv_spk_percent`` % of the
*speakers* (so CV frame accuracy measures generalisation to new speakers); the training
utterances are shuffled with ``seed`` and cut into ``num_archives`` lists of nearly equal size.
"""

from __future__ import annotations

import math
import os

import numpy as np

from nnetavg.errors import NnetavgError


def read_kaldi_map(path: str) -> dict[str, str]:
    """A two-column Kaldi text file (``utt2spk``, ``feats.scp``): first field -> rest of line."""
    out: dict[str, str] = {}
    try:
        with open(path, encoding="utf-8") as f:
            for lineno, line in enumerate(f, 1):
                parts = line.strip().split(None, 1)
                if not parts:
                    continue
                if len(parts) != 2:
                    raise NnetavgError(f"{path}:{lineno}: expected 'key value', found {line.strip()[:60]!r}")
                if parts[0] in out:
                    raise NnetavgError(f"{path}:{lineno}: key {parts[0]} appears twice")
                out[parts[0]] = parts[1]
    except OSError as exc:
        raise NnetavgError(f"cannot read {path}: {exc.strerror}") from None
    return out


def split_data_dir(data_dir: str, num_archives: int, cv_spk_percent: float = 10.0,
                   seed: int = 777) -> tuple[list[list[str]], list[str]]:
    """Returns (training utterance lists, one per archive; CV utterance list)."""
    if num_archives < 1:
        raise NnetavgError(f"the number of archives must be at least 1, not {num_archives}")
    feats = read_kaldi_map(os.path.join(data_dir, "feats.scp"))
    utts = sorted(feats)
    u2s_path = os.path.join(data_dir, "utt2spk")
    utt2spk = read_kaldi_map(u2s_path) if os.path.exists(u2s_path) else {u: u for u in utts}
    missing = [u for u in utts if u not in utt2spk]
    if missing:
        raise NnetavgError(f"{u2s_path}: no speaker for utterance {missing[0]} ({len(missing)} in all)")
    speakers = sorted({utt2spk[u] for u in utts})
    rng = np.random.default_rng(seed)
    cv_spk: set[str] = set()
    if cv_spk_percent > 0:
        if len(speakers) < 2:
            raise NnetavgError(f"{data_dir}: a CV set held out by speaker needs at least 2 speakers, "
                               f"found {len(speakers)}")
        n_cv = min(len(speakers) - 1, max(1, int(math.ceil(len(speakers) * cv_spk_percent / 100.0))))
        cv_spk = set(rng.permutation(speakers)[:n_cv].tolist())
    cv = [u for u in utts if utt2spk[u] in cv_spk]
    train = [u for u in utts if utt2spk[u] not in cv_spk]
    if len(train) < num_archives:
        raise NnetavgError(f"{data_dir}: {len(train)} training utterances cannot fill {num_archives} archives")
    train = rng.permutation(train).tolist()
    bounds = np.linspace(0, len(train), num_archives + 1).round().astype(int)
    return [train[bounds[i]:bounds[i + 1]] for i in range(num_archives)], cv


def write_list(path: str, items: list[str]) -> None:
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        f.writelines(f"{x}\n" for x in items)
    os.replace(tmp, path)


def read_list(path: str) -> list[str]:
    """First fields of the non-empty lines (an utterance list, or the keys of an scp)."""
    try:
        with open(path, encoding="utf-8") as f:
            return [ln.split()[0] for ln in f if ln.strip()]
    except OSError as exc:
        raise NnetavgError(f"cannot read {path}: {exc.strerror}") from None
