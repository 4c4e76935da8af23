"""Word error rate with kaldialign, as Kaldi's compute-wer (--mode=present) and
compute-wer-bootci (95% confidence interval by bootstrap resampling of utterances, Bisani & Ney 2004)."""

from __future__ import annotations

import io
import math

from dataclasses import dataclass

from nnetavg.errors import NnetavgError


def read_text(spec: str) -> dict[str, list[str]]:
    """``utt word word ...`` lines from a file or a text-archive rspecifier (``ark:FILE``,
    ``ark,p:-`` for standard input, ``"ark:cmd |"``)."""
    from nnetavg.io.kaldi_basic import open_rxfilename  # noqa: PLC0415
    from nnetavg.io.tables import is_rspecifier, parse_rspecifier  # noqa: PLC0415

    name = spec
    if is_rspecifier(spec):
        r = parse_rspecifier(spec)
        if r.kind != "ark":
            raise NnetavgError(f"{spec}: transcripts are read from a text archive (ark:), not an scp")
        name = r.filename
    text = io.TextIOWrapper(open_rxfilename(name), encoding="utf-8")
    out = {}
    try:
        for line in text:
            fields = line.split()
            if fields:
                out[fields[0]] = fields[1:]
    finally:
        if name.strip() in ("", "-"):
            text.detach()      # standard input stays open
        else:
            text.close()
    return out


@dataclass
class WerResult:
    errors: int
    words: int
    ins: int
    dels: int
    subs: int
    sentences: int
    sentence_errors: int
    ci95min: float
    ci95max: float

    @property
    def wer(self) -> float:
        return 100.0 * self.errors / max(self.words, 1)

    def kaldi_lines(self) -> str:
        lines = (f"%WER {self.wer:.2f} [ {self.errors} / {self.words}, {self.ins} ins, {self.dels} del, {self.subs} sub ]\n"
                 f"%SER {100.0 * self.sentence_errors / max(self.sentences, 1):.2f} [ {self.sentence_errors} / {self.sentences} ]")
        if not math.isnan(self.ci95min):   # an interval was computed (--replications > 0)
            lines += f"\n%WER-CI95 [ {self.ci95min:.2f} , {self.ci95max:.2f} ] (bootstrap)"
        return lines


def compute_wer(refs: dict[str, list[str]], hyps: dict[str, list[str]], replications: int = 1000, seed: int = 0) -> WerResult:
    import kaldialign

    keys = [k for k in refs if k in hyps]
    if not keys:
        raise NnetavgError("no utterance is in both the reference and the hypothesis")
    errs = ins = dels = subs = words = sent_err = 0
    for k in keys:
        d = kaldialign.edit_distance(refs[k], hyps[k])
        ins, dels, subs = ins + d["ins"], dels + d["del"], subs + d["sub"]
        errs += d["total"]
        words += len(refs[k])
        sent_err += d["total"] > 0
    if replications <= 0:   # no interval asked for (e.g. many subsets scored): the line is left out
        return WerResult(errs, words, ins, dels, subs, len(keys), sent_err, float("nan"), float("nan"))
    ci = kaldialign.bootstrap_wer_ci([refs[k] for k in keys], [hyps[k] for k in keys], replications=replications, seed=seed)
    # kaldialign gives mean +- 1.96 std, which can dip below 0 for a near-perfect system: clamp.
    return WerResult(errs, words, ins, dels, subs, len(keys), sent_err, max(0.0, 100 * ci["ci95min"]), 100 * ci["ci95max"])


def select_mode(refs: dict[str, list[str]], hyps: dict[str, list[str]], mode: str):
    """Kaldi's compute-wer --mode: ``present`` scores the references that have a hypothesis,
    ``all`` scores every reference (a missing hypothesis is empty: all its words deleted),
    ``strict`` demands a hypothesis for every reference. Returns (refs, hyps) to score."""
    missing = [k for k in refs if k not in hyps]
    if mode == "present":
        return {k: v for k, v in refs.items() if k in hyps}, hyps
    if missing and mode == "strict":
        raise NnetavgError(f"{len(missing)} reference utterances have no hypothesis (e.g. {missing[0]}); "
                           f"--mode=all scores them as empty, --mode=present leaves them out")
    return refs, {**hyps, **{k: [] for k in missing}}
