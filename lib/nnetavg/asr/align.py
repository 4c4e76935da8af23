"""Frame alignments (transition ids, pdf ids) from known phone timings.

A synthesiser knows where each phone starts; a frame belongs to the phone segment holding the
frame's centre (frame t spans samples [t*shift, t*shift + window) as in Kaldi with snip-edges).
Each phone's frames are split evenly over its HMM states; within a state every frame but the last
takes the self-loop transition and the last one the forward transition, as a Viterbi alignment
through the topology would. A phone shorter than its number of states fills its first states only
(its pdf targets are still right; such a path is not one the decoding graph could take).
"""

from __future__ import annotations

import re

import numpy as np

from nnetavg.asr.lang import Lang, topology_transitions
from nnetavg.errors import NnetavgError

_TUPLE = re.compile(r"phone=(\d+),hmm_state=(\d+)")


def frame_geometry(sample_rate: float, frame_length_ms: float = 25.0, frame_shift_ms: float = 10.0):
    """(window, shift) in samples, rounded as Kaldi's FrameExtractionOptions does."""
    return int(sample_rate * 0.001 * frame_length_ms), int(sample_rate * 0.001 * frame_shift_ms)


def parse_phone_times(line: str, source: str = "phone_times"):
    """``utt dur_ms phone start_ms phone start_ms ...`` -> (utt, dur_ms, [(phone, start_ms)])."""
    fields = line.split()
    if len(fields) < 4 or len(fields) % 2:
        raise NnetavgError(f"{source}: bad line {line[:60].strip()!r}: expected 'utt dur_ms phone start_ms ...'")
    utt = fields[0]
    try:
        dur = float(fields[1])
        segments = [(fields[i], float(fields[i + 1])) for i in range(2, len(fields), 2)]
    except ValueError:
        raise NnetavgError(f"{source}: utterance {utt}: times must be numbers") from None
    starts = [s for _, s in segments]
    if starts != sorted(starts):
        raise NnetavgError(f"{source}: utterance {utt}: phone start times are not increasing")
    return utt, dur, segments


def _state_bounds(start: int, end: int, num_states: int) -> np.ndarray:
    """Frame boundaries of the HMM states of a phone spanning frames [start, end): an even split,
    or one frame for each of the first states when the phone is shorter than its states."""
    if end - start >= num_states:
        return np.linspace(start, end, num_states + 1).round().astype(int)
    return np.r_[np.arange(start, end + 1), [end] * (num_states - (end - start))]


class PhoneTimeAligner:
    """Turns phone segments into transition-id alignments for one lang's transition model."""

    def __init__(self, lang: Lang):
        self.lang = lang
        tm = lang.transition_model
        self.tid_to_pdf = np.asarray(tm.transition_id_to_pdf_array(), dtype=np.int32)
        self.num_pdfs = tm.num_pdfs
        # (phone, hmm_state) -> (self-loop tid, forward tid): a transition id is the transition
        # state's first id plus the transition's index in the topology (Kaldi's silence state 2,
        # for one, lists 1, 2, 3, 4: its self-loop is index 1, its forward transition index 2)
        dests = topology_transitions(lang.topo)
        self.tids: dict[tuple[int, int], tuple[int, int]] = {}
        self.num_states: dict[int, int] = {}
        first = tm.state2id
        for state, tup in enumerate(tm.tuples, start=1):
            m = _TUPLE.search(str(tup))
            phone, hmm_state = int(m.group(1)), int(m.group(2))
            out = dests[phone][hmm_state]
            if hmm_state not in out or hmm_state + 1 not in out:
                raise NnetavgError(f"topology of phone {phone}: state {hmm_state} has no self-loop or no forward "
                                   "transition; alignments from phone times need left-to-right states")
            self.tids[(phone, hmm_state)] = (first[state] + out.index(hmm_state), first[state] + out.index(hmm_state + 1))
            self.num_states[phone] = max(self.num_states.get(phone, 0), hmm_state + 1)

    def align(self, utt: str, segments, num_frames: int, sample_rate: float) -> np.ndarray:
        window, shift = frame_geometry(sample_rate)
        centres_ms = (np.arange(num_frames) * shift + window / 2) * 1000.0 / sample_rate
        starts = np.array([s for _, s in segments])
        phone_ids = []
        for name, _ in segments:
            if name not in self.lang.phones:
                raise NnetavgError(f"utterance {utt}: phone {name!r} is not in the lang's phones.txt")
            phone_ids.append(self.lang.phones[name])
        seg_of_frame = np.searchsorted(starts, centres_ms, side="right") - 1
        if num_frames and seg_of_frame[0] < 0:
            raise NnetavgError(f"utterance {utt}: the first phone starts after the first frame")
        ali = np.empty(num_frames, dtype=np.int32)
        t = 0
        while t < num_frames:
            seg = seg_of_frame[t]
            end = t
            while end < num_frames and seg_of_frame[end] == seg:
                end += 1
            phone = phone_ids[seg]
            n_states = self.num_states[phone]
            bounds = _state_bounds(t, end, n_states)
            for s in range(n_states):
                lo, hi = bounds[s], bounds[s + 1]
                if hi <= lo:
                    continue
                loop_tid, fwd_tid = self.tids[(phone, s)]
                ali[lo:hi - 1] = loop_tid
                ali[hi - 1] = fwd_tid
            t = end
        return ali

    def to_pdfs(self, ali: np.ndarray) -> np.ndarray:
        return self.tid_to_pdf[ali]
