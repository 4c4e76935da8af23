"""Kaldi's lattice generation and the lattice and scoring tools of ``steps/nnet/decode.sh`` and
``steps/score_kaldi.sh``, with Kaldi's arguments and output formats: ``latgen-faster-mapped``,
``lattice-scale``, ``lattice-add-penalty``, ``lattice-best-path``, ``lattice-copy``, ``align-text``
and ``compute-wer-bootci``.

The lattices are Kaldi CompactLattices in text form (:mod:`nnetavg.asr.lattice`); latgen-faster-mapped
writes the decoder's best path only (one arc per frame), not a pruned, determinized lattice."""

import contextlib
import logging
import math
import time

import click
import numpy as np

from nnetavg.bin._common import KALDI_BOOL, fail, kaldi_command
from nnetavg.io.tables import INT_VECTOR, LATTICE, MATRIX, SequentialReader, TableWriter

log = logging.getLogger("nnetavg.bin")


def read_symbol_table(path: str) -> dict[int, str]:
    """``word id`` lines (words.txt) as id -> word."""
    from nnetavg.asr.lang import read_symbols
    try:
        return {i: w for w, i in read_symbols(path).items()}
    except OSError as exc:
        fail(f"cannot read the symbol table {path}: {exc.strerror}")


def _optional_writers(stack: contextlib.ExitStack, *wspecifiers: str) -> list:
    """A TableWriter of int vectors for each non-empty wspecifier (None for an empty one), closed
    (or, on an error, discarded) with ``stack``."""
    return [stack.enter_context(TableWriter(w, INT_VECTOR)) if w else None for w in wspecifiers]


@kaldi_command(help="""Decode log-likelihoods of pdfs (nnet-forward's output) with an HCLG graph and
write a lattice per utterance (Kaldi's latgen-faster-mapped). The graph is Kaldi's (const, as
utils/mkgraph.sh writes it) or ours (vector); its input labels are the transition ids of MODEL.
The lattice written is the best path only (one arc per frame, acoustic costs unscaled), in Kaldi's
text CompactLattice form, which Kaldi's lattice readers accept: scoring over LM weights rescales
that one path. --max-mem and --determinize-lattice are accepted for Kaldi's scripts and have no
effect.

\b
Usage:  latgen-faster-mapped [options] MODEL HCLG_FST LOGLIKES_RSPECIFIER LATTICE_WSPECIFIER [WORDS_WSPECIFIER [ALI_WSPECIFIER]]
e.g.:   nnet-forward ... | latgen-faster-mapped --acoustic-scale=0.1 --word-symbol-table=graph/words.txt \\
          exp/dnn/final.mdl graph/HCLG.fst ark:- "ark:|gzip -c > exp/dnn/decode/lat.1.gz\"""", kaldi_prefix=True)
@click.option("--beam", type=float, default=16.0, show_default=True, help="Decoding beam")
@click.option("--lattice-beam", type=float, default=10.0, show_default=True, help="Lattice beam (no effect: best path only)")
@click.option("--max-active", type=int, default=2147483647, show_default=True, help="Most active states")
@click.option("--min-active", type=int, default=200, show_default=True, help="Fewest active states")
@click.option("--max-mem", type=int, default=50000000, show_default=True, help="Accepted, no effect")
@click.option("--acoustic-scale", type=float, default=0.1, show_default=True, help="Scale of the acoustic log-likelihoods")
@click.option("--allow-partial", type=KALDI_BOOL, default=False, show_default=True,
              help="Output the best partial path when no final state is reached")
@click.option("--determinize-lattice", type=KALDI_BOOL, default=True, show_default=True, help="Accepted, no effect")
@click.option("--word-symbol-table", default="", help="words.txt: log each utterance's words")
@click.argument("model")
@click.argument("hclg_fst")
@click.argument("loglikes_rspecifier")
@click.argument("lattice_wspecifier")
@click.argument("words_wspecifier", required=False, default="")
@click.argument("ali_wspecifier", required=False, default="")
def latgen_faster_mapped(model, hclg_fst, loglikes_rspecifier, lattice_wspecifier, words_wspecifier, ali_wspecifier,
                         beam, lattice_beam, max_active, min_active, max_mem, acoustic_scale, allow_partial,
                         determinize_lattice, word_symbol_table, verbose):
    from nnetavg.asr.decode import DecodeOptions, FstDecoder
    from nnetavg.asr.graph import read_fst
    from nnetavg.asr.models import read_transition_model

    if acoustic_scale <= 0 or beam <= 0:
        fail(f"--acoustic-scale={acoustic_scale} --beam={beam}: both must be positive")
    words = read_symbol_table(word_symbol_table) if word_symbol_table else {}
    decoder = FstDecoder(read_fst(hclg_fst), read_transition_model(model), words,
                         DecodeOptions(beam=beam, lattice_beam=lattice_beam, max_active=max_active,
                                       min_active=min_active, acoustic_scale=acoustic_scale))
    start, done, partial, failed, frames, total_like = time.time(), 0, 0, 0, 0, 0.0
    with contextlib.ExitStack() as stack:
        lat_out = stack.enter_context(TableWriter(lattice_wspecifier, LATTICE))
        words_out, ali_out = _optional_writers(stack, words_wspecifier, ali_wspecifier)
        for utt, loglikes in SequentialReader(loglikes_rspecifier, MATRIX):
            if loglikes.shape[0] == 0:
                log.warning("utterance %s: no frames, skipped", utt)
                failed += 1
                continue
            result = decoder.lattice(utt, loglikes, allow_partial)
            if result is None:
                log.warning("utterance %s: decoding failed (no final state reached%s)", utt,
                            "" if allow_partial else "; --allow-partial=true writes the best partial path")
                failed += 1
                continue
            lat, reached_final = result
            if not reached_final:
                log.warning("utterance %s: no final state reached; writing the best partial path", utt)
                partial += 1
            word_ids, tids, graph, acoustic = lat.best_path()
            like = -(graph + acoustic_scale * acoustic)
            log.info("Log-like per frame for utterance %s is %.6g over %d frames.", utt, like / loglikes.shape[0],
                     loglikes.shape[0])
            if words:
                log.info("%s %s", utt, " ".join(words.get(w, str(w)) for w in word_ids))
            lat_out.write(utt, lat)
            if words_out:
                words_out.write(utt, np.asarray(word_ids, dtype=np.int32))
            if ali_out:
                ali_out.write(utt, np.asarray(tids, dtype=np.int32))
            done, frames, total_like = done + 1, frames + loglikes.shape[0], total_like + like
    secs = time.time() - start
    log.info("Time taken %.2fs: real-time factor assuming 100 frames/sec is %.4f", secs, secs / max(frames * 0.01, 1e-9))
    log.info("Done %d utterances, failed for %d (%d partial)", done, failed, partial)
    log.info("Overall log-likelihood per frame is %.6g over %d frames.", total_like / max(frames, 1), frames)
    if done == 0:
        fail(f"no utterance decoded from {loglikes_rspecifier}")


def _copy_lattices(lattice_rspecifier: str, lattice_wspecifier: str, change) -> int:
    n = 0
    with TableWriter(lattice_wspecifier, LATTICE) as out:
        for utt, lat in SequentialReader(lattice_rspecifier, LATTICE):
            change(lat)
            out.write(utt, lat)
            n += 1
    return n


@kaldi_command(help="""Scale the graph and acoustic costs of lattices (Kaldi's lattice-scale;
--inv-acoustic-scale=N is --acoustic-scale=1/N, as score_kaldi.sh uses it per LM weight).

\b
Usage:  lattice-scale [options] LATTICE_RSPECIFIER LATTICE_WSPECIFIER
e.g.:   lattice-scale --inv-acoustic-scale=10 "ark:gunzip -c lat.1.gz|" ark:-""", kaldi_prefix=True)
@click.option("--acoustic-scale", type=float, default=1.0, show_default=True)
@click.option("--inv-acoustic-scale", type=float, default=1.0, show_default=True, help="Acoustic scale 1/this")
@click.option("--lm-scale", type=float, default=1.0, show_default=True, help="Scale of the graph costs")
@click.argument("lattice_rspecifier")
@click.argument("lattice_wspecifier")
def lattice_scale(acoustic_scale, inv_acoustic_scale, lm_scale, lattice_rspecifier, lattice_wspecifier, verbose):
    if inv_acoustic_scale != 1.0:
        if acoustic_scale != 1.0:
            fail("give --acoustic-scale or --inv-acoustic-scale, not both")
        if inv_acoustic_scale == 0:
            fail("--inv-acoustic-scale=0")
        acoustic_scale = 1.0 / inv_acoustic_scale
    n = _copy_lattices(lattice_rspecifier, lattice_wspecifier, lambda lat: lat.scale(lm_scale, acoustic_scale))
    log.info("Done %d lattices.", n)


@kaldi_command(help="""Add a word insertion penalty to the graph cost of every word arc
(Kaldi's lattice-add-penalty).

\b
Usage:  lattice-add-penalty [options] LATTICE_RSPECIFIER LATTICE_WSPECIFIER
e.g.:   lattice-add-penalty --word-ins-penalty=0.5 ark:- ark:-""", kaldi_prefix=True)
@click.option("--word-ins-penalty", type=float, default=0.0, show_default=True)
@click.argument("lattice_rspecifier")
@click.argument("lattice_wspecifier")
def lattice_add_penalty(word_ins_penalty, lattice_rspecifier, lattice_wspecifier, verbose):
    n = _copy_lattices(lattice_rspecifier, lattice_wspecifier, lambda lat: lat.add_word_insertion_penalty(word_ins_penalty))
    log.info("Done adding word insertion penalty to %d lattices.", n)


@kaldi_command(help="""Copy lattices (Kaldi's lattice-copy; the output is the text form either way).

\b
Usage:  lattice-copy [options] LATTICE_RSPECIFIER LATTICE_WSPECIFIER
e.g.:   lattice-copy "ark:gunzip -c lat.1.gz|" ark,t:-""", kaldi_prefix=True)
@click.argument("lattice_rspecifier")
@click.argument("lattice_wspecifier")
def lattice_copy(lattice_rspecifier, lattice_wspecifier, verbose):
    log.info("Done copying %d lattices.", _copy_lattices(lattice_rspecifier, lattice_wspecifier, lambda lat: None))


@kaldi_command(help="""The best path of each lattice: its words (ids) and optionally its transition
ids (Kaldi's lattice-best-path).

\b
Usage:  lattice-best-path [options] LATTICE_RSPECIFIER [WORDS_WSPECIFIER [ALI_WSPECIFIER]]
e.g.:   lattice-best-path --word-symbol-table=words.txt ark:- ark,t:-""", kaldi_prefix=True)
@click.option("--acoustic-scale", type=float, default=1.0, show_default=True)
@click.option("--lm-scale", type=float, default=1.0, show_default=True)
@click.option("--word-symbol-table", default="", help="words.txt: log each utterance's words")
@click.argument("lattice_rspecifier")
@click.argument("words_wspecifier", required=False, default="")
@click.argument("ali_wspecifier", required=False, default="")
def lattice_best_path(acoustic_scale, lm_scale, word_symbol_table, lattice_rspecifier, words_wspecifier,
                      ali_wspecifier, verbose):
    words = read_symbol_table(word_symbol_table) if word_symbol_table else {}
    n = failed = frames = 0
    total = 0.0
    with contextlib.ExitStack() as stack:
        words_out, ali_out = _optional_writers(stack, words_wspecifier, ali_wspecifier)
        for utt, lat in SequentialReader(lattice_rspecifier, LATTICE):
            if acoustic_scale != 1.0 or lm_scale != 1.0:
                lat.scale(lm_scale, acoustic_scale)
            best = lat.best_path()
            if best is None:
                log.warning("utterance %s: the lattice has no path to a final state", utt)
                failed += 1
                continue
            word_ids, tids, graph, acoustic = best
            if words:
                log.info("%s %s", utt, " ".join(words.get(w, str(w)) for w in word_ids))
            if words_out:
                words_out.write(utt, np.asarray(word_ids, dtype=np.int32))
            if ali_out:
                ali_out.write(utt, np.asarray(tids, dtype=np.int32))
            n, frames, total = n + 1, frames + len(tids), total + graph + acoustic
    log.info("Overall cost per frame is %.6g = %s over %d frames.", total / max(frames, 1),
             f"{total:.6g}", frames)
    log.info("Done %d lattices, failed for %d", n, failed)
    if n == 0:
        fail(f"no lattice read from {lattice_rspecifier}")


@kaldi_command(help="""Align each hypothesis to its reference and write the word pairs
(Kaldi's align-text: ``utt ref hyp ; ref hyp ; ...``, the special symbol for an insertion or a
deletion).

\b
Usage:  align-text [options] TEXT1_RSPECIFIER TEXT2_RSPECIFIER ALIGN_WSPECIFIER
e.g.:   align-text --special-symbol='***' ark:ref.txt ark:hyp.txt ark,t:-""", kaldi_prefix=True)
@click.option("--special-symbol", default="<eps>", show_default=True)
@click.argument("text1_rspecifier")
@click.argument("text2_rspecifier")
@click.argument("align_wspecifier")
def align_text(special_symbol, text1_rspecifier, text2_rspecifier, align_wspecifier, verbose):
    import kaldialign

    from nnetavg.asr.score import read_text
    from nnetavg.io.kaldi_basic import open_wxfilename
    from nnetavg.io.tables import parse_wspecifier

    special = special_symbol.strip("'\"")
    refs, hyps = read_text(text1_rspecifier), read_text(text2_rspecifier)
    out = open_wxfilename(parse_wspecifier(align_wspecifier).ark)
    n = 0
    for utt, ref in refs.items():
        if utt not in hyps:
            log.warning("no hypothesis for utterance %s", utt)
            continue
        pairs = kaldialign.align(ref, hyps[utt], special)
        out.write(f"{utt} {' ; '.join(f'{a} {b}' for a, b in pairs)}\n".encode())
        n += 1
    out.flush()
    log.info("Done %d sentences", n)


@kaldi_command(help="""Word error rate with a bootstrap confidence interval (Kaldi's compute-wer-bootci;
--mode=present scores only the utterances with a hypothesis, all counts the others as deleted).

\b
Usage:  compute-wer-bootci [options] REF_RSPECIFIER HYP_RSPECIFIER
e.g.:   compute-wer-bootci --mode=present ark:test_filt.txt ark:10.txt""", kaldi_prefix=True)
@click.option("--mode", type=click.Choice(["present", "all", "strict"]), default="strict", show_default=True)
@click.option("--replications", type=click.IntRange(min=1), default=10000, show_default=True)
@click.option("--seed", type=int, default=0, show_default=True)
@click.argument("ref_rspecifier")
@click.argument("hyp_rspecifier")
def compute_wer_bootci(mode, replications, seed, ref_rspecifier, hyp_rspecifier, verbose):
    from nnetavg.asr.score import compute_wer, read_text, select_mode

    refs, hyps = select_mode(read_text(ref_rspecifier), read_text(hyp_rspecifier), mode)
    r = compute_wer(refs, hyps, replications, seed)
    half = (r.ci95max - r.ci95min) / 2
    click.echo(f"#Total words in reference: {r.words}\n#Total sentences: {r.sentences}\n"
               f"Set1: %WER {r.wer:.2f} 95% Conf Interval [ {r.ci95min:.2f}, {r.ci95max:.2f} ] (+-{half:.2f})")
    if math.isnan(r.ci95min):
        fail("no interval could be computed")
