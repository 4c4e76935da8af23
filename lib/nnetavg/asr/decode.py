"""Viterbi decoding with kaldi-hmm-gmm's LatticeFasterDecoder, from a DNN's pdf scores or a GMM.

``decode_mapped`` is Kaldi's ``latgen-faster-mapped``: its input is a (frames x pdfs) matrix of
log-likelihoods (nnet-forward's log-posteriors minus log-priors), scaled by the acoustic scale and
expanded to transition ids (column ``tid - 1`` holds the score of ``pdf(tid)``), which is what
kaldi-hmm-gmm's ``DecodableCtc`` reads. Defaults are those of Kaldi's ``steps/nnet/decode.sh``.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np

from nnetavg.asr.lang import Lang, import_kaldi_hmm_gmm
from nnetavg.errors import NnetavgError


def transition_scores(utt: str, pdf_loglikes: np.ndarray, tid_to_pdf: np.ndarray, num_pdfs: int,
                      acoustic_scale: float) -> np.ndarray:
    """A (T x num_pdfs) log-likelihood matrix, scaled and expanded to transition ids (column
    ``tid - 1`` holds the score of ``pdf(tid)``): what DecodableCtc reads."""
    if pdf_loglikes.ndim != 2 or pdf_loglikes.shape[1] != num_pdfs:
        raise NnetavgError(f"utterance {utt}: log-likelihoods have {pdf_loglikes.shape[-1]} columns, "
                           f"the transition model has {num_pdfs} pdfs")
    return np.ascontiguousarray(acoustic_scale * pdf_loglikes[:, tid_to_pdf], dtype=np.float32)


@dataclass
class DecodeOptions:
    beam: float = 13.0  # decoding beam (Kaldi's steps/nnet/decode.sh)
    lattice_beam: float = 8.0
    max_active: int = 7000
    min_active: int = 200
    acoustic_scale: float = 0.1  # scale of the acoustic log-likelihoods against the graph costs


class Decoder:
    def __init__(self, hclg, lang: Lang, opts: DecodeOptions | None = None):
        khg = import_kaldi_hmm_gmm()
        self.khg, self.lang, self.opts = khg, lang, opts or DecodeOptions()
        tm = lang.transition_model
        self.tm = tm
        self.tid_to_pdf = np.asarray(tm.transition_id_to_pdf_array(), dtype=np.int64)[1:]
        config = khg.LatticeFasterDecoderConfig(
            beam=self.opts.beam, max_active=self.opts.max_active, min_active=self.opts.min_active,
            lattice_beam=self.opts.lattice_beam,
        )
        self.hclg = hclg  # the C++ decoder keeps a pointer to the graph: keep it alive
        self.decoder = khg.LatticeFasterDecoder(hclg, config)
        self.id_to_word = lang.id_to_word

    def _run(self, utt: str, decodable) -> tuple[list[str], float] | None:
        ok, _, word_ids, like = self.khg.decode_utterance_lattice_faster(
            decoder=self.decoder, decodable=decodable, trans_model=self.tm, utt=utt, allow_partial=True
        )
        if not ok:
            return None
        return [self.id_to_word[w] for w in word_ids], float(like)

    def decode_mapped(self, utt: str, pdf_loglikes: np.ndarray):
        """Words and total score for one utterance's (T x num_pdfs) log-likelihoods; None if it failed."""
        scores = transition_scores(utt, pdf_loglikes, self.tid_to_pdf, self.tm.num_pdfs, self.opts.acoustic_scale)
        return self._run(utt, self.khg.DecodableCtc(scores))

    def decode_gmm(self, utt: str, am, feats: np.ndarray):
        decodable = self.khg.DecodableAmDiagGmmScaled(am=am, tm=self.tm, feats=np.ascontiguousarray(feats, np.float32),
                                                      scale=self.opts.acoustic_scale)
        return self._run(utt, decodable)


class FstDecoder:
    """Viterbi decoding (kaldi-hmm-gmm's FasterDecoder) with a graph whose input labels are the
    transition ids of our own transition model (any tree); the best path's words and alignment."""

    def __init__(self, hclg, tm, id_to_word: dict[int, str], opts: DecodeOptions | None = None):
        khg = import_kaldi_hmm_gmm()
        self.khg, self.tm, self.id_to_word = khg, tm, id_to_word
        self.opts = opts or DecodeOptions()
        self.hclg = hclg
        self.decoder = khg.FasterDecoder(hclg, khg.FasterDecoderOptions(
            beam=self.opts.beam, max_active=self.opts.max_active, min_active=self.opts.min_active))
        self.tid_to_pdf = np.asarray(tm.tid2pdf[1:], dtype=np.int64)

    def _best_path(self, utt: str, pdf_loglikes: np.ndarray, allow_partial: bool):
        """The best path as kaldifst text (``src dst tid word graph,acoustic``, acoustic scaled), and
        whether a final state was reached; None if there is no path."""
        scores = transition_scores(utt, pdf_loglikes, self.tid_to_pdf, self.tm.num_pdfs, self.opts.acoustic_scale)
        self.decoder.decode(self.khg.DecodableCtc(scores))
        final = self.decoder.reached_final()
        if not final and not allow_partial:
            return None
        ok, lat = self.decoder.get_best_path()
        return (lat.to_str(), final) if ok else None

    def decode(self, utt: str, pdf_loglikes: np.ndarray):
        """(words, alignment) for a (T x num_pdfs) log-likelihood matrix; None if no final state."""
        path = self._best_path(utt, pdf_loglikes, allow_partial=False)
        if path is None:
            return None
        words, ali = [], []
        for line in path[0].splitlines():
            f = line.split()
            if len(f) >= 4:
                if int(f[2]):
                    ali.append(int(f[2]))
                if int(f[3]):
                    words.append(self.id_to_word[int(f[3])])
        return words, np.array(ali, dtype=np.int32)

    def lattice(self, utt: str, pdf_loglikes: np.ndarray, allow_partial: bool = True):
        """(CompactLattice of the best path with unscaled acoustic costs, reached a final state);
        None if decoding found no path (or no final state and not ``allow_partial``)."""
        from nnetavg.asr.lattice import read_lattice  # noqa: PLC0415
        path = self._best_path(utt, pdf_loglikes, allow_partial)
        if path is None:
            return None
        lat = read_lattice(io.BytesIO(b"\n" + path[0].encode() + b"\n"))
        lat.scale(1.0, 1.0 / self.opts.acoustic_scale)
        return lat, path[1]
