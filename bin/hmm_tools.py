"""Kaldi's tools on GMM-system model files (``final.mdl``, ``tree``), with Kaldi's options and output:
``hmm-info``, ``tree-info``, ``ali-to-pdf``, ``ali-to-phones``, ``copy-transition-model``,
``show-transitions``. The models are read by :mod:`nnetavg.asr.models` (text or binary, as written
by Kaldi or by nnetavg's own GMM steps)."""

import logging
import sys

import click
import numpy as np

from nnetavg.asr.models import read_transition_model, read_tree, write_model
from nnetavg.bin._common import KALDI_BOOL, fail, kaldi_command
from nnetavg.io.tables import INT_VECTOR, SequentialReader, TableWriter

log = logging.getLogger("nnetavg.bin")


@kaldi_command(help="""Print the numbers of phones, pdfs, transition ids and transition states of a
model (Kaldi's hmm-info).

\b
Usage:  hmm-info [options] MODEL_IN
e.g.:   hmm-info exp/tri1/final.mdl""", kaldi_prefix=True)
@click.argument("model_in")
def hmm_info(model_in, verbose):
    tm = read_transition_model(model_in)
    sys.stdout.write(f"number of phones {len(tm.topo.phones)}\nnumber of pdfs {tm.num_pdfs}\n"
                     f"number of transition-ids {tm.num_tids}\nnumber of transition-states {tm.num_transition_states}\n")


@kaldi_command(help="""Print the number of pdfs, the context width and the central position of a
tree (Kaldi's tree-info).

\b
Usage:  tree-info [options] TREE_IN
e.g.:   tree-info exp/tri1/tree""", kaldi_prefix=True)
@click.argument("tree_in")
def tree_info(tree_in, verbose):
    tree = read_tree(tree_in)
    sys.stdout.write(f"num-pdfs {tree.num_pdfs}\ncontext-width {tree.N}\ncentral-position {tree.P}\n")


@kaldi_command(help="""Map transition-id alignments to pdf ids (Kaldi's ali-to-pdf).

\b
Usage:  ali-to-pdf [options] MODEL ALIGNMENTS_RSPECIFIER PDFS_WSPECIFIER
e.g.:   ali-to-pdf exp/tri1/final.mdl "ark:gunzip -c exp/tri1/ali.1.gz|" ark,t:-""", kaldi_prefix=True)
@click.argument("model")
@click.argument("ali_rspecifier")
@click.argument("pdfs_wspecifier")
def ali_to_pdf(model, ali_rspecifier, pdfs_wspecifier, verbose):
    tm = read_transition_model(model)
    n = 0
    with TableWriter(pdfs_wspecifier, INT_VECTOR) as w:
        for utt, ali in SequentialReader(ali_rspecifier, INT_VECTOR):
            _check_tids(utt, ali, tm, model)
            w.write(utt, tm.tid2pdf[ali].astype(np.int32))
            n += 1
    log.info("Converted %d alignments to pdf sequences.", n)


def _check_tids(utt, ali, tm, model):
    if len(ali) and (ali.min() < 1 or ali.max() > tm.num_tids):
        fail(f"utterance {utt}: transition id {int(ali.max() if ali.max() > tm.num_tids else ali.min())} out of "
             f"range 1..{tm.num_tids} of {model} (alignment from another model?)")


def phone_sequence(tm, ali: np.ndarray) -> list[tuple[int, int]]:
    """(phone, number of frames) of each phone of an alignment (Kaldi's SplitToPhones)."""
    from nnetavg.asr.tree_build import phone_instances
    return [(p, b - a) for p, a, b in phone_instances(ali, tm)]


@kaldi_command(help="""Convert transition-id alignments to phone sequences, or with --per-frame one
phone per frame (Kaldi's ali-to-phones). --write-lengths writes "phone length ;" pairs (text
archives); --ctm-output writes CTM lines (utt 1 start duration phone) instead of an archive.

\b
Usage:  ali-to-phones [options] MODEL ALIGNMENTS_RSPECIFIER PHONES_WSPECIFIER|CTM_WXFILENAME
e.g.:   ali-to-phones --per-frame=true exp/tri1/final.mdl "ark:gunzip -c exp/tri1/ali.1.gz|" ark,t:-""",
                kaldi_prefix=True)
@click.option("--per-frame", type=KALDI_BOOL, default=False, show_default=True, help="One phone per frame")
@click.option("--write-lengths", type=KALDI_BOOL, default=False, show_default=True,
              help="Write (phone, length) pairs (text: 'p n ; p n')")
@click.option("--ctm-output", type=KALDI_BOOL, default=False, show_default=True, help="Write CTM lines")
@click.option("--frame-shift", type=float, default=0.01, show_default=True, help="Frame shift in seconds (CTM)")
@click.argument("model")
@click.argument("ali_rspecifier")
@click.argument("out")
def ali_to_phones(per_frame, write_lengths, ctm_output, frame_shift, model, ali_rspecifier, out, verbose):
    if per_frame + write_lengths + ctm_output > 1:
        fail("--per-frame, --write-lengths and --ctm-output exclude each other")
    tm = read_transition_model(model)
    n = 0
    if ctm_output or write_lengths:
        from nnetavg.io.kaldi_basic import open_wxfilename
        f = open_wxfilename(out if ctm_output else out.split(":", 1)[-1])
        try:
            for utt, ali in SequentialReader(ali_rspecifier, INT_VECTOR):
                _check_tids(utt, ali, tm, model)
                seq = phone_sequence(tm, ali)
                if ctm_output:
                    t = 0
                    for p, length in seq:
                        f.write(f"{utt} 1 {t * frame_shift:.2f} {length * frame_shift:.2f} {p}\n".encode())
                        t += length
                else:
                    f.write((utt + " " + " ; ".join(f"{p} {length}" for p, length in seq) + " \n").encode())
                n += 1
        finally:
            f.close()
    else:
        with TableWriter(out, INT_VECTOR) as w:
            for utt, ali in SequentialReader(ali_rspecifier, INT_VECTOR):
                _check_tids(utt, ali, tm, model)
                if per_frame:
                    w.write(utt, tm.tid2phone[ali].astype(np.int32))
                else:
                    w.write(utt, np.array([p for p, _ in phone_sequence(tm, ali)], dtype=np.int32))
                n += 1
    log.info("Done %d utterances.", n)


@kaldi_command(help="""Copy the transition model of a model file (dropping the acoustic model), in
binary or text (Kaldi's copy-transition-model).

\b
Usage:  copy-transition-model [options] TRANSITION_MODEL_IN TRANSITION_MODEL_OUT
e.g.:   copy-transition-model --binary=false exp/tri1/final.mdl exp/dnn/final.mdl""", kaldi_prefix=True)
@click.option("--binary", type=KALDI_BOOL, default=True, show_default=True, help="Write in binary mode")
@click.argument("model_in")
@click.argument("model_out")
def copy_transition_model(binary, model_in, model_out, verbose):
    write_model(model_out, read_transition_model(model_in), None, binary)
    log.info("Copied transition model.")


@kaldi_command(help="""Print the transition states of a model with their phone, HMM state, pdf and
transition probabilities (Kaldi's show-transitions); with OCCS_FILE (gmm-est --write-occs), each
pdf's occupancy.

\b
Usage:  show-transitions PHONES_SYMTAB TRANSITION_MODEL [OCCS_FILE]
e.g.:   show-transitions data/lang/phones.txt exp/tri1/final.mdl exp/tri1/final.occs""", kaldi_prefix=True)
@click.argument("phones_symtab")
@click.argument("model")
@click.argument("occs", required=False)
def show_transitions(phones_symtab, model, occs, verbose):
    from nnetavg.asr.lang import read_symbols
    names = {i: s for s, i in read_symbols(phones_symtab).items()}
    tm = read_transition_model(model)
    occ = None
    if occs:
        from nnetavg.io.kaldi_basic import KaldiReader, read_rxfilename
        occ = KaldiReader(read_rxfilename(occs), occs).read_vector()
    out = []
    for ts, (phone, hs, pdf) in enumerate(tm.triples, start=1):
        if phone not in names:
            fail(f"{phones_symtab}: no phone {phone} (used by {model})")
        out.append(f"Transition-state {ts}: phone = {names[phone]} hmm-state = {hs} pdf = {pdf}\n")
        entry = tm.topo.entry(phone)
        for t in range(tm.state2id[ts], tm.state2id[ts + 1]):
            line = f" Transition-id = {t} p = {np.exp(tm.log_probs[t]):.6g}"
            if occ is not None and pdf < len(occ):
                line += f" count of pdf = {occ[pdf]:.6g}"
            if tm.is_self_loop[t]:
                out.append(line + " [self-loop]\n")
            else:
                out.append(line + f" [{hs} -> {entry[hs].transitions[tm.id2index[t]][0]}]\n")
    sys.stdout.write("".join(out))
