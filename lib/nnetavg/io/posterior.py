"""Kaldi's ``Posterior`` objects (``src/hmm/posterior.h``): per frame, a list of (pdf id, weight).

Training targets in nnet1 are Posterior tables (``ali-to-post`` of a pdf alignment gives one
(id, 1.0) pair per frame; soft targets give several). Encoding, as Kaldi's ``PosteriorHolder``:

* binary: int32 frames, then per frame int32 count followed by ``count`` pairs (int32 id, float
  weight); every basic value is preceded by its size byte (4);
* text: one line ``[ id w id w ] [ id w ] ...`` (one bracket group per frame).

In memory a :class:`Posterior` is two padded arrays, ``ids`` and ``weights`` of shape
(frames, K), K the largest count in the utterance; unused slots have weight 0. Reading a binary
archive of one-pair frames (what ``ali-to-post`` writes) takes a vectorised fast path.
"""

from __future__ import annotations

import dataclasses
import struct
from typing import BinaryIO

import numpy as np

from nnetavg.errors import FormatError

# A frame of one pair in binary: \4 count(=1) \4 id \4 weight -> 15 bytes.
_ONE_PAIR = np.dtype([("s0", "u1"), ("count", "<i4"), ("s1", "u1"), ("id", "<i4"), ("s2", "u1"), ("w", "<f4")])


@dataclasses.dataclass
class Posterior:
    ids: np.ndarray       # (T, K) int32
    weights: np.ndarray   # (T, K) float32, 0 in unused slots

    def __len__(self) -> int:
        return self.ids.shape[0]

    @property
    def shape(self) -> tuple[int, ...]:   # so length checks treat it like an alignment
        return (len(self),)

    @classmethod
    def from_alignment(cls, ali: np.ndarray) -> "Posterior":
        ali = np.asarray(ali, dtype=np.int32).reshape(-1, 1)
        return cls(ali.copy(), np.ones(ali.shape, dtype=np.float32))

    @classmethod
    def from_pairs(cls, frames: list[list[tuple[int, float]]]) -> "Posterior":
        k = max((len(f) for f in frames), default=1) or 1
        ids = np.zeros((len(frames), k), dtype=np.int32)
        w = np.zeros((len(frames), k), dtype=np.float32)
        for t, pairs in enumerate(frames):
            for j, (i, x) in enumerate(pairs):
                ids[t, j], w[t, j] = i, x
        return cls(ids, w)

    def pairs(self) -> list[list[tuple[int, float]]]:
        return [[(int(i), float(x)) for i, x in zip(ids, w) if x != 0.0] for ids, w in zip(self.ids, self.weights)]

    def __getitem__(self, index) -> "Posterior":
        return Posterior(self.ids[index], self.weights[index])

    def min(self) -> int:
        used = self.weights != 0
        return int(self.ids[used].min()) if used.any() else 0

    def max(self) -> int:
        used = self.weights != 0
        return int(self.ids[used].max()) if used.any() else 0

    def as_alignment(self) -> np.ndarray | None:
        """The pdf alignment when every frame is exactly one (id, 1.0) pair (``ali-to-post``
        output), else None."""
        if self.ids.shape[1] != 1 or not np.all(self.weights == 1.0):
            return None
        return self.ids[:, 0].copy()


def read_posterior(f: BinaryIO, binary: bool) -> Posterior:
    if binary:
        return _read_binary(f)
    line = f.readline().decode(errors="replace")
    frames: list[list[tuple[int, float]]] = []
    for group in line.replace("]", "]\n").splitlines():
        group = group.strip()
        if not group:
            continue
        if not group.startswith("[") or not group.endswith("]"):
            raise FormatError(f"expected a text posterior '[ id weight ... ]', found {group[:60]!r}")
        toks = group[1:-1].split()
        if len(toks) % 2:
            raise FormatError(f"a text posterior frame needs (id, weight) pairs, found {group[:60]!r}")
        try:
            frames.append([(int(toks[j]), float(toks[j + 1])) for j in range(0, len(toks), 2)])
        except ValueError:
            raise FormatError(f"a text posterior frame holds a non-number: {group[:60]!r}") from None
    return Posterior.from_pairs(frames)


def _exact(f: BinaryIO, n: int, what: str) -> bytes:
    data = f.read(n)
    if len(data) < n:
        raise FormatError(f"posterior truncated in {what}")
    return data


def _read_int(f: BinaryIO, what: str) -> int:
    raw = _exact(f, 5, what)
    if raw[0] != 4:
        raise FormatError(f"posterior: expected an int32 (size byte 4) for {what}, found size byte {raw[0]}")
    return struct.unpack("<i", raw[1:])[0]


def _read_binary(f: BinaryIO) -> Posterior:
    frames = _read_int(f, "its number of frames")
    if frames < 0:
        raise FormatError(f"posterior with a negative number of frames ({frames})")
    peek = getattr(f, "peek", None)
    if frames and peek is not None and len(peek(5)) >= 5 and peek(5)[:5] == b"\x04\x01\x00\x00\x00":
        raw = f.read(15 * frames)
        rec = np.frombuffer(raw[: len(raw) - len(raw) % 15], dtype=_ONE_PAIR)
        ok = (len(raw) == 15 * frames and np.all(rec["count"] == 1) and np.all(rec["s0"] == 4)
              and np.all(rec["s1"] == 4) and np.all(rec["s2"] == 4))
        if ok:
            return Posterior(rec["id"].astype(np.int32).reshape(-1, 1), rec["w"].astype(np.float32).reshape(-1, 1))
        return _read_frames(_Prefixed(raw, f), frames)
    return _read_frames(f, frames)


class _Prefixed:
    """``data`` followed by the rest of ``f``: re-parses bytes the fast path already read."""

    def __init__(self, data: bytes, f: BinaryIO):
        self.data, self.pos, self.f = data, 0, f

    def read(self, n: int) -> bytes:
        out = self.data[self.pos:self.pos + n]
        self.pos += len(out)
        return out + (self.f.read(n - len(out)) if len(out) < n else b"")


def _read_frames(f, frames: int) -> Posterior:
    out: list[list[tuple[int, float]]] = []
    for t in range(frames):
        count = _read_int(f, f"the count of frame {t}")
        if count < 0 or count > 1_000_000:
            raise FormatError(f"posterior frame {t} has an impossible count {count}")
        pairs = []
        for _ in range(count):
            i = _read_int(f, f"an id of frame {t}")
            raw = _exact(f, 1, f"a weight of frame {t}")
            if raw[0] == 4:
                x = struct.unpack("<f", _exact(f, 4, f"a weight of frame {t}"))[0]
            elif raw[0] == 8:
                x = struct.unpack("<d", _exact(f, 8, f"a weight of frame {t}"))[0]
            else:
                raise FormatError(f"posterior frame {t}: a weight with size byte {raw[0]} (expected 4 or 8)")
            pairs.append((i, x))
        out.append(pairs)
    return Posterior.from_pairs(out)


def write_posterior(f: BinaryIO, post: Posterior, binary: bool) -> None:
    if binary:
        one = post.ids.shape[1] == 1 and np.all(post.weights != 0)
        if one:
            rec = np.empty(len(post), dtype=_ONE_PAIR)
            rec["s0"] = rec["s1"] = rec["s2"] = 4
            rec["count"] = 1
            rec["id"] = post.ids[:, 0]
            rec["w"] = post.weights[:, 0]
            f.write(b"\0B\x04" + struct.pack("<i", len(post)) + rec.tobytes())
            return
        parts = [b"\0B\x04" + struct.pack("<i", len(post))]
        for pairs in post.pairs():
            parts.append(b"\x04" + struct.pack("<i", len(pairs)))
            parts.extend(b"\x04" + struct.pack("<i", i) + b"\x04" + struct.pack("<f", x) for i, x in pairs)
        f.write(b"".join(parts))
        return
    groups = ("[ " + "".join(f"{i} {x:.7g} " for i, x in pairs) + "]" for pairs in post.pairs())
    f.write((" ".join(groups) + " \n").encode())


def looks_like_posterior(head: bytes) -> bool:
    """Whether the bytes after an archive key start a Posterior rather than an int32 vector
    (both begin ``\\0B\\4 <int32>``): in a Posterior the third value after the length is a float
    weight, whose bits as an int32 are far above any pdf id; a text posterior starts with '['."""
    if head[:1] == b"[" or head.lstrip()[:1] == b"[":
        return True
    if head[:3] != b"\0B\x04" or len(head) < 23:
        return False
    if struct.unpack("<i", head[3:7])[0] == 0:
        return False
    if head[7] != 4 or head[12] != 4 or head[17] != 4:
        return False
    count = struct.unpack("<i", head[8:12])[0]
    weight_bits = struct.unpack("<i", head[18:22])[0]
    return 1 <= count <= 1_000_000 and weight_bits >= 0x30000000
