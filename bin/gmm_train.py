"""GMM systems in Kaldi's formats, trained here (see nnetavg.asr.train_gmm): the flat-start
monophone system, alignment, the triphone system, the decoding graph and GMM decoding. Each command
is one of Kaldi's steps scripts as a program; steps/train_mono.sh, steps/align_si.sh,
steps/train_deltas.sh, steps/mkgraph.sh and steps/decode_gmm.sh run them with Kaldi's arguments."""

import logging
import os
import shutil
import time

import click

from nnetavg.bin._common import fail, kaldi_command
from nnetavg.io.tables import INT_VECTOR, SequentialReader

log = logging.getLogger("nnetavg.bin")


def _lang(lang_dir):
    from nnetavg.asr.lang import load_lang
    return load_lang(lang_dir)


def _utt_list(data, utt_list):
    if not utt_list:
        return data
    return data.keep(line.split()[0] for line in open(utt_list) if line.strip())


def _shortest(data, n):
    if n and n < len(data.utts):
        log.info("using the %d shortest utterances", n)
        return data.keep(sorted(data.utts, key=lambda u: (len(data.feats[u]), u))[:n])
    return data


def _read_alis(ali_dir):
    import glob
    files = sorted(glob.glob(os.path.join(ali_dir, "ali.*.gz")))
    if not files:
        fail(f"{ali_dir}: no ali.*.gz (alignments of a GMM system)")
    alis = {}
    for f in files:
        alis.update(SequentialReader(f"ark:gunzip -c {f} |", INT_VECTOR))
    return alis


def _finish(out_dir, system, alis, failed, t0, what):
    from nnetavg.asr.train_gmm import write_exp_dir
    write_exp_dir(out_dir, system, alis)
    log.info("%s done in %.1fs: pdfs=%d gaussians=%d transition-ids=%d; final alignment of %d utterances "
             "(%d failed) in %s/ali.1.gz", what, time.time() - t0, system.tm.num_pdfs, system.am.num_gauss,
             system.tm.num_tids, len(alis), len(failed), out_dir)


@kaldi_command(help="""Flat-start monophone GMM training (Kaldi's steps/train_mono.sh): no alignments
in, every training utterance equally aligned to its transcript's graph, then NUM_ITERS passes of
accumulate / update (Gaussians grown to --totgauss over --max-iter-inc passes) with realignment on
Kaldi's schedule (passes 1-10, 12, 14, ..., 38). Features: DATA/feats.scp, per-speaker mean
normalisation from DATA/cmvn.scp, deltas and delta-deltas. Writes DIR/final.mdl, DIR/tree,
DIR/ali.1.gz (the final model's alignment of the utterances used), DIR/num_jobs, DIR/phones.txt.

\b
Usage:  gmm-train-mono [options] DATA LANG DIR
e.g.:   gmm-train-mono --totgauss 1000 data/train_mfcc data/lang exp/mono""")
@click.option("--num-iters", type=int, default=40, show_default=True, help="Training passes")
@click.option("--max-iter-inc", type=int, default=30, show_default=True, help="Last pass that adds Gaussians")
@click.option("--totgauss", type=int, default=1000, show_default=True, help="Target number of Gaussians")
@click.option("--power", type=float, default=0.25, show_default=True, help="Exponent of the occupancy in the mix-up")
@click.option("--boost-silence", type=float, default=1.0, show_default=True,
              help="Factor on the silence phones' likelihoods during alignment")
@click.option("--oov", default="", help="Word that replaces words missing from the lexicon (else such utterances are left out)")
@click.option("--shortest", type=int, default=0, help="Train on the N shortest utterances only (0: all)")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the mix-up's perturbations")
@click.argument("data_dir")
@click.argument("lang_dir")
@click.argument("out_dir")
def train_mono_main(num_iters, max_iter_inc, totgauss, power, boost_silence, oov, shortest, seed, data_dir, lang_dir,
                    out_dir, verbose):
    from nnetavg.asr.train_gmm import MONO_REALIGN, MonoOptions, load_data, train_mono, align
    t0 = time.time()
    lang = _lang(lang_dir)
    data = _shortest(load_data(data_dir, lang, oov or None), shortest)
    if not data.utts:
        fail(f"{data_dir}: no utterance to train on")
    log.info("%s: %d utterances, %d frames, feature dim %d", data_dir, len(data.utts), data.num_frames,
             next(iter(data.feats.values())).shape[1])
    opts = MonoOptions(num_iters=num_iters, max_iter_inc=max_iter_inc, totgauss=totgauss, power=power,
                       boost_silence=boost_silence, realign_iters=tuple(x for x in MONO_REALIGN if x < num_iters),
                       seed=seed)
    system, _ = train_mono(lang, data, opts)
    alis, failed = align(system, data, boost_silence)
    _finish(out_dir, system, alis, failed, t0, "monophone training")


@kaldi_command(help="""Align a data dir with a GMM system (Kaldi's steps/align_si.sh, one job):
exact Viterbi through each utterance's training graph; an utterance fails only when it is shorter
than its transcript's shortest path (named in the log). Writes the alignments (transition ids).

\b
Usage:  gmm-align [options] DATA LANG SRC_DIR ALI_WSPECIFIER
e.g.:   gmm-align --utt-list exp/tri1_ali/split/utts.1 data/train_mfcc data/lang exp/tri1 "ark:| gzip -c > exp/tri1_ali/ali.1.gz\"""")
@click.option("--boost-silence", type=float, default=1.0, show_default=True,
              help="Factor on the silence phones' likelihoods")
@click.option("--oov", default="", help="Word that replaces words missing from the lexicon")
@click.option("--utt-list", default="", help="Align only the utterances listed (first field of each line)")
@click.argument("data_dir")
@click.argument("lang_dir")
@click.argument("src_dir")
@click.argument("ali_wspecifier")
def align_main(boost_silence, oov, utt_list, data_dir, lang_dir, src_dir, ali_wspecifier, verbose):
    from nnetavg.asr.models import read_model, read_tree
    from nnetavg.asr.train_gmm import GmmSystem, align, load_data
    from nnetavg.io.tables import TableWriter
    lang = _lang(lang_dir)
    tm, am = read_model(os.path.join(src_dir, "final.mdl"))
    if am is None:
        fail(f"{src_dir}/final.mdl holds no GMM (a transition model only)")
    system = GmmSystem(tm, read_tree(os.path.join(src_dir, "tree")), am, lang)
    data = _utt_list(load_data(data_dir, lang, oov or None), utt_list)
    alis, failed = align(system, data, boost_silence)
    with TableWriter(ali_wspecifier, INT_VECTOR) as w:
        for u in sorted(alis):
            w.write(u, alis[u])
    if failed:
        log.warning("%d utterances not aligned: %s", len(failed), " ".join(failed[:10]))
    if not alis:
        fail("no utterance aligned")


@kaldi_command(help="""Triphone GMM training (Kaldi's steps/train_deltas.sh): tree statistics from
ALI_DIR's alignments, questions from clustering the phone sets plus the lang's extra questions, a
tree of NUM_LEAVES leaves (then leaves of one root merged below the last split's gain), one Gaussian
per leaf from the tree statistics, the alignments converted to the new tree, then 35 passes with
realignment at 10, 20, 30 and Gaussians grown to TOT_GAUSS.

\b
Usage:  gmm-train-deltas [options] NUM_LEAVES TOT_GAUSS DATA LANG ALI_DIR DIR
e.g.:   gmm-train-deltas 300 3000 data/train_mfcc data/lang exp/mono_ali exp/tri1""")
@click.option("--num-iters", type=int, default=35, show_default=True)
@click.option("--max-iter-inc", type=int, default=25, show_default=True)
@click.option("--power", type=float, default=0.25, show_default=True)
@click.option("--boost-silence", type=float, default=1.0, show_default=True)
@click.option("--thresh", type=float, default=300.0, show_default=True, help="Least likelihood gain of a split (build-tree)")
@click.option("--cluster-thresh", type=float, default=-1.0, show_default=True,
              help="Merge leaves below this cost (-1: the last split's gain; 0: no merging)")
@click.option("--oov", default="")
@click.option("--seed", type=int, default=0, show_default=True)
@click.argument("num_leaves", type=int)
@click.argument("tot_gauss", type=int)
@click.argument("data_dir")
@click.argument("lang_dir")
@click.argument("ali_dir")
@click.argument("out_dir")
def train_deltas_main(num_iters, max_iter_inc, power, boost_silence, thresh, cluster_thresh, oov, seed, num_leaves,
                      tot_gauss, data_dir, lang_dir, ali_dir, out_dir, verbose):
    from nnetavg.asr.models import read_model, read_tree
    from nnetavg.asr.train_gmm import DELTAS_REALIGN, DeltasOptions, GmmSystem, align, load_data, train_deltas
    t0 = time.time()
    lang = _lang(lang_dir)
    tm, am = read_model(os.path.join(ali_dir, "final.mdl"))
    prev = GmmSystem(tm, read_tree(os.path.join(ali_dir, "tree")), am, lang)
    data = load_data(data_dir, lang, oov or None)
    alis = _read_alis(ali_dir)
    missing = [u for u in data.utts if u not in alis]
    if missing:
        log.warning("%d utterances have no alignment in %s and are left out (e.g. %s)", len(missing), ali_dir,
                    " ".join(missing[:5]))
    opts = DeltasOptions(num_leaves=num_leaves, totgauss=tot_gauss, num_iters=num_iters, max_iter_inc=max_iter_inc,
                         power=power, boost_silence=boost_silence, thresh=thresh, cluster_thresh=cluster_thresh,
                         realign_iters=tuple(x for x in DELTAS_REALIGN if x < num_iters), seed=seed)
    system, _, _ = train_deltas(lang, data, prev, alis, opts)
    alis, failed = align(system, data, boost_silence)
    _finish(out_dir, system, alis, failed, t0, "triphone training")


@kaldi_command(help="""Build the decoding graph HCLG.fst of a model dir's tree and transition model
with the lang's lexicon and a uniform word loop (Kaldi's utils/mkgraph.sh, for our word-loop
grammar): GRAPH_DIR/HCLG.fst, words.txt, phones.txt.

\b
Usage:  make-graph [options] LANG MODEL_DIR GRAPH_DIR
e.g.:   make-graph data/lang exp/tri1 exp/tri1/graph""")
@click.option("--self-loop-scale", type=float, default=0.1, show_default=True)
@click.argument("lang_dir")
@click.argument("model_dir")
@click.argument("graph_dir")
def mkgraph_main(self_loop_scale, lang_dir, model_dir, graph_dir, verbose):
    from nnetavg.asr.graph import make_graph
    from nnetavg.asr.models import read_transition_model, read_tree
    t0 = time.time()
    lang = _lang(lang_dir)
    tm = read_transition_model(os.path.join(model_dir, "final.mdl"))
    tree = read_tree(os.path.join(model_dir, "tree"))
    hclg = make_graph(lang, tm, tree, self_loop_scale)
    os.makedirs(graph_dir, exist_ok=True)
    tmp = os.path.join(graph_dir, "HCLG.fst.tmp")
    hclg.write(tmp)
    os.replace(tmp, os.path.join(graph_dir, "HCLG.fst"))
    for name in ("words.txt", "phones.txt"):
        shutil.copyfile(os.path.join(lang_dir, name), os.path.join(graph_dir, name))
    log.info("wrote %s/HCLG.fst: states=%d (%.1fs)", graph_dir, hclg.num_states, time.time() - t0)


@kaldi_command(help="""Decode a data dir with a GMM system and a graph from make-graph (Kaldi's
gmm-decode-faster with the features of train_deltas.sh: per-speaker mean normalisation and deltas);
writes the best word sequence of each utterance as text.

\b
Usage:  gmm-decode-faster [options] MODEL_DIR GRAPH_DIR DATA HYP_TEXT
e.g.:   gmm-decode-faster exp/tri1 exp/tri1/graph data/test_mfcc exp/tri1/decode_test/hyp.txt""")
@click.option("--acoustic-scale", type=float, default=0.1, show_default=True)
@click.option("--beam", type=float, default=13.0, show_default=True)
@click.option("--max-active", type=int, default=7000, show_default=True)
@click.option("--utt-list", default="", help="Decode only the utterances listed")
@click.argument("model_dir")
@click.argument("graph_dir")
@click.argument("data_dir")
@click.argument("hyp_text")
def decode_main(acoustic_scale, beam, max_active, utt_list, model_dir, graph_dir, data_dir, hyp_text, verbose):
    from nnetavg.asr.decode import DecodeOptions, FstDecoder
    from nnetavg.asr.gmm_est import GmmScorer
    from nnetavg.asr.lang import import_kaldi_hmm_gmm, read_symbols
    import_kaldi_hmm_gmm()
    import kaldifst

    from nnetavg.asr.models import read_model
    from nnetavg.asr.train_gmm import load_data
    from nnetavg.fileutil import atomic_output
    t0 = time.time()
    tm, am = read_model(os.path.join(model_dir, "final.mdl"))
    if am is None:
        fail(f"{model_dir}/final.mdl holds no GMM")
    words = {i: w for w, i in read_symbols(os.path.join(graph_dir, "words.txt")).items()}
    dec = FstDecoder(kaldifst.StdVectorFst.read(os.path.join(graph_dir, "HCLG.fst")), tm, words,
                     DecodeOptions(beam=beam, max_active=max_active, acoustic_scale=acoustic_scale))
    data = _utt_list(load_data(data_dir, with_text=False), utt_list)
    scorer = GmmScorer(am)
    failed = frames = 0
    with atomic_output(hyp_text) as f:
        for utt in sorted(data.feats):
            x = data.feats[utt]
            frames += len(x)
            result = dec.decode(utt, scorer.pdf_loglikes(scorer.component_loglikes(x)))
            if result is None:
                failed += 1
                log.warning("utterance %s: decoding failed (no final state reached)", utt)
                continue
            f.write(f"{utt} {' '.join(result[0])}\n".encode())
    secs = time.time() - t0
    log.info("decoded %d utterances, %d failed: frames=%d real_time_factor=%.4f", len(data.feats) - failed, failed,
             frames, secs / max(frames * 0.01, 1e-9))
