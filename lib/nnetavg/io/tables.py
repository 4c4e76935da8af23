"""Kaldi tables: every read and write of an archive or script file goes through this module.

Specifiers follow Kaldi (``src/util/kaldi-table.h``):

* rspecifier: ``ark:FILE``, ``scp:FILE``, ``ark:-`` (stdin), ``"ark:cmd ... |"`` (pipe), with the
  options ``o s cs p bg b t`` and their negations accepted before the colon (``p`` = permissive:
  unreadable entries are treated as absent; the rest only promise things about order and are
  accepted and ignored, as Kaldi ignores ``b``/``t`` when reading).
* wspecifier: ``ark:FILE``, ``ark,t:FILE`` (text), ``ark,scp:ARK,SCP``, ``ark:-``,
  ``"ark:| cmd"``, with ``f``/``nf`` (flush) and ``p``.

Objects are lattices (Kaldi's text CompactLattice, :mod:`nnetavg.asr.lattice`), matrices (features, CMVN stats; compressed matrices are read too), float vectors,
int32 vectors (pdf alignments as ``ali-to-pdf`` writes them: binary with a size byte per element,
text as ``key 0 0 5 5 ...``) and Posteriors (:mod:`nnetavg.io.posterior`; the holder ``TARGETS``
reads either an alignment or a Posterior, so every trainer takes both). Matrix and float-vector encoding is done by kaldiio; int vectors,
specifier parsing, scp indexing and error messages are ours.

Every error names the specifier and, where there is one, the key.
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import os
import re
import struct
import sys
from typing import BinaryIO, Iterator

import numpy as np
from kaldiio import matio as _kio

from nnetavg.errors import FormatError, NnetavgError
from nnetavg.io.kaldi_basic import KaldiReader, KaldiWriter, open_rxfilename, open_wxfilename
from nnetavg.io.posterior import looks_like_posterior, read_posterior, write_posterior

MATRIX, VECTOR, INT_VECTOR = "matrix", "vector", "int_vector"
POSTERIOR = "posterior"
FLOAT = "float"       # one float per key (BasicHolder<float>: utterance weights)
INT32 = "int32"       # one int32 per key (Int32Writer: feat-to-len, feat-to-dim)
LATTICE = "lattice"   # a CompactLattice (nnetavg.asr.lattice), Kaldi's text form
TARGETS = "targets"   # reading only: a pdf alignment (int32 vector) or a Posterior, told apart per entry
_READ_OPTS = {"o", "no", "s", "ns", "cs", "ncs", "p", "np", "bg", "b", "t"}
_WRITE_OPTS = {"t", "b", "f", "nf", "p"}


@dataclasses.dataclass
class Rspecifier:
    kind: str            # "ark" or "scp"
    filename: str        # rxfilename
    permissive: bool = False
    text: str = ""       # the specifier as given, for messages

    def __str__(self) -> str:
        return self.text


@dataclasses.dataclass
class Wspecifier:
    ark: str | None
    scp: str | None
    binary: bool = True
    flush: bool = False
    text: str = ""

    def __str__(self) -> str:
        return self.text


def _split(spec: str) -> tuple[list[str], str]:
    if ":" not in spec:
        raise NnetavgError(f"{spec!r} is not a table specifier (expected e.g. ark:file.ark or scp:file.scp)")
    head, rest = spec.split(":", 1)
    opts = [o for o in head.replace(" ", ",").split(",") if o]
    return opts, rest


def is_rspecifier(spec: str) -> bool:
    try:
        parse_rspecifier(spec)
        return True
    except NnetavgError:
        return False


def is_wspecifier(spec: str) -> bool:
    try:
        parse_wspecifier(spec)
        return True
    except NnetavgError:
        return False


def parse_rspecifier(spec: str) -> Rspecifier:
    opts, rest = _split(spec)
    kinds = [o for o in opts if o in ("ark", "scp")]
    bad = [o for o in opts if o not in ("ark", "scp") and o not in _READ_OPTS]
    if len(kinds) != 1 or bad or spec != spec.rstrip(" "):
        raise NnetavgError(f"invalid rspecifier {spec!r}: need exactly one of ark/scp, options from "
                           f"{','.join(sorted(_READ_OPTS))}")
    return Rspecifier(kinds[0], rest, permissive="p" in opts and "np" not in opts, text=spec)


def parse_wspecifier(spec: str) -> Wspecifier:
    opts, rest = _split(spec)
    kinds = [o for o in opts if o in ("ark", "scp")]
    bad = [o for o in opts if o not in ("ark", "scp") and o not in _WRITE_OPTS]
    if bad or not kinds or len(kinds) != len(set(kinds)):
        raise NnetavgError(f"invalid wspecifier {spec!r}: use ark:, ark,t:, ark,scp:ARK,SCP")
    ark = scp = None
    if kinds == ["ark", "scp"]:
        if "," not in rest:
            raise NnetavgError(f"invalid wspecifier {spec!r}: ark,scp needs two file names ARK,SCP")
        ark, scp = rest.split(",", 1)
    elif kinds == ["scp", "ark"]:
        raise NnetavgError(f"invalid wspecifier {spec!r}: write ark before scp (ark,scp:ARK,SCP)")
    elif kinds == ["ark"]:
        ark = rest
    else:
        raise NnetavgError(f"invalid wspecifier {spec!r}: writing through an existing scp is not "
                           f"supported; use ark,scp:ARK,SCP")
    return Wspecifier(ark, scp, binary="t" not in opts, flush="f" in opts and "nf" not in opts, text=spec)


# --------------------------------------------------------------------------- object codecs

def _read_key(f: BinaryIO) -> str | None:
    chars = bytearray()
    while True:
        c = f.read(1)
        if not c:
            if chars.strip():
                raise FormatError(f"archive ends after the key {chars.decode(errors='replace')!r}")
            return None
        if c == b" ":
            if chars:
                break
            continue
        if c in b"\n\r\t" and not chars:
            continue
        chars += c
    return chars.decode(errors="replace")


def _is_binary_next(f: BinaryIO) -> bool:
    peek = getattr(f, "peek", None)
    head = peek(2)[:2] if peek is not None else b""
    return head[:1] == b"\0"


def _read_int_vector(f: BinaryIO) -> np.ndarray:
    if _is_binary_next(f):
        head = f.read(3)
        if head != b"\0B\x04":
            raise FormatError(f"expected an int32 vector (size byte 4), found {head!r}")
        raw = f.read(4)
        if len(raw) < 4:
            raise FormatError("int32 vector truncated in its length")
        n = struct.unpack("<i", raw)[0]
        body = f.read(5 * n)
        if len(body) < 5 * n or n < 0:
            raise FormatError(f"int32 vector of length {n} truncated")
        rec = np.frombuffer(body, dtype=np.uint8).reshape(n, 5)
        if n and not np.all(rec[:, 0] == 4):
            raise FormatError("int32 vector with an element whose size byte is not 4")
        return np.ascontiguousarray(rec[:, 1:]).view("<i4").reshape(n).astype(np.int32)
    text = f.readline().decode(errors="replace").strip()
    if text.startswith("["):
        text = text.strip("[]")
    try:
        return np.array([int(t) for t in text.split()], dtype=np.int32)
    except ValueError:
        raise FormatError(f"expected integers, found {text[:60]!r}") from None


def _read_int32(f: BinaryIO) -> np.ndarray:
    if _is_binary_next(f):
        raw = f.read(7)
        if raw[:3] != b"\0B\x04" or len(raw) < 7:
            raise FormatError(f"expected a binary int32 (size byte 4), found {raw[:3]!r}")
        return np.array(struct.unpack("<i", raw[3:]), dtype=np.int64)
    text = f.readline().decode(errors="replace").strip()
    try:
        return np.array([int(text)], dtype=np.int64)
    except ValueError:
        raise FormatError(f"expected one integer, found {text[:60]!r}") from None


def _read_float(f: BinaryIO) -> np.ndarray:
    if _is_binary_next(f):
        head = f.read(3)
        size = head[2:3]
        raw = f.read(4 if size == b"\x04" else 8 if size == b"\x08" else 0)
        if head[:2] != b"\0B" or len(raw) not in (4, 8) or len(raw) != head[2]:
            raise FormatError(f"expected a binary float (size byte 4 or 8), found {head!r}")
        return np.array(struct.unpack("<f" if len(raw) == 4 else "<d", raw), dtype=np.float64)
    text = f.readline().decode(errors="replace").strip()
    try:
        return np.array([float(text)], dtype=np.float64)
    except ValueError:
        raise FormatError(f"expected one number, found {text[:60]!r}") from None


def _read_text_object(f: BinaryIO, holder: str) -> np.ndarray:
    """A text matrix `` [\n  a b \n  c d ]`` or vector `` [ a b ]``, read line by line."""
    lines = []
    while True:
        line = f.readline()
        if not line:
            raise FormatError(f"text {holder} without its closing ']'")
        lines.append(line)
        if b"]" in line:
            break
    r = KaldiReader(b"".join(lines), binary=False)
    return r.read_matrix() if holder == MATRIX else r.read_vector()


def _read_object(f: BinaryIO, holder: str) -> np.ndarray:
    if holder == TARGETS:
        peek = getattr(f, "peek", None)
        holder = POSTERIOR if peek is not None and looks_like_posterior(peek(23)[:23]) else INT_VECTOR
    if holder == INT_VECTOR:
        return _read_int_vector(f)
    if holder == LATTICE:
        from nnetavg.asr.lattice import read_lattice  # noqa: PLC0415
        return read_lattice(f)
    if holder == FLOAT:
        return _read_float(f)
    if holder == INT32:
        return _read_int32(f)
    if holder == POSTERIOR:
        binary = _is_binary_next(f)
        if binary and f.read(2) != b"\0B":
            raise FormatError("expected a binary posterior")
        return read_posterior(f, binary)
    if not _is_binary_next(f):
        obj = _read_text_object(f, holder)
        return obj
    try:
        obj = _kio.read_kaldi(f)
    except Exception:  # kaldiio asserts, struct and buffer-size errors on corrupt or cut data
        raise FormatError(f"the {holder} data is truncated or corrupt (not a complete Kaldi {holder})") from None
    if not isinstance(obj, np.ndarray):
        raise FormatError(f"expected a {holder}, found {type(obj).__name__}")
    if holder == MATRIX and obj.ndim != 2:
        raise FormatError(f"expected a matrix, found an object with {obj.ndim} dimension(s)")
    if holder == VECTOR and obj.ndim != 1:
        raise FormatError(f"expected a vector, found an object with {obj.ndim} dimension(s)")
    return obj


def _write_object(f: BinaryIO, obj: np.ndarray, holder: str, binary: bool, compression: int = 0) -> None:
    if holder == POSTERIOR:
        write_posterior(f, obj, binary)
        return
    if holder == LATTICE:   # always the text form: Kaldi's readers take it inside binary archives too
        from nnetavg.asr.lattice import write_lattice  # noqa: PLC0415
        write_lattice(f, obj)
        return
    if holder == INT32:
        i = int(np.asarray(obj).reshape(-1)[0])
        f.write(b"\0B\x04" + struct.pack("<i", i) if binary else f"{i}\n".encode())
        return
    if holder == FLOAT:
        x = float(np.asarray(obj).reshape(-1)[0])
        f.write(b"\0B\x04" + struct.pack("<f", x) if binary else f"{x:.7g}\n".encode())
        return
    if holder == INT_VECTOR:
        v = np.asarray(obj, dtype=np.int32).reshape(-1)
        if binary:
            rec = np.empty((v.size, 5), dtype=np.uint8)
            rec[:, 0] = 4
            rec[:, 1:] = v.astype("<i4").view(np.uint8).reshape(-1, 4)
            f.write(b"\0B\x04" + struct.pack("<i", v.size) + rec.tobytes())
        else:
            f.write((" ".join(str(int(x)) for x in v.tolist()) + "\n").encode())
        return
    arr = np.asarray(obj)
    if arr.dtype not in (np.float32, np.float64):
        arr = arr.astype(np.float32)
    if binary:
        if compression and arr.ndim == 2:   # Kaldi's CompressedMatrix (CM/CM2/CM3), as copy-feats --compress
            _kio.write_array(f, arr, compression_method=compression)
        else:
            _kio.write_array(f, arr)
    elif arr.ndim == 2:
        KaldiWriter(f, binary=False).write_matrix(arr)
    else:
        KaldiWriter(f, binary=False).write_vector(arr)


# --------------------------------------------------------------------------- readers

class SequentialReader:
    """Iterates ``(key, object)`` over an archive or the entries of an scp file, in order."""

    def __init__(self, rspecifier: str, holder: str = MATRIX):
        self.spec = parse_rspecifier(rspecifier)
        self.holder = holder

    def __iter__(self) -> Iterator[tuple[str, np.ndarray]]:
        if self.spec.kind == "scp":
            for key, rx in _read_scp(self.spec):
                try:
                    obj = _read_rx_object(rx, self.holder)
                except NnetavgError as exc:
                    if self.spec.permissive:
                        continue
                    raise NnetavgError(f"{self.spec}: cannot read {key!r} from {rx}: {exc}") from None
                yield key, obj
            return
        f = open_rxfilename(self.spec.filename)
        key = None
        try:
            while True:
                try:
                    key = _read_key(f)
                    if key is None:
                        break
                    obj = _read_object(f, self.holder)
                except FormatError as exc:
                    if self.spec.permissive:
                        break
                    where = f"after key {key!r}" if key else "at its start"
                    raise FormatError(f"{self.spec}: bad archive entry {where}: {exc}") from None
                yield key, obj
        finally:
            if f is not sys.stdin.buffer:
                f.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def _read_scp(spec: Rspecifier) -> Iterator[tuple[str, str]]:
    f = open_rxfilename(spec.filename)
    try:
        for lineno, raw in enumerate(io.TextIOWrapper(f, encoding="utf-8", errors="replace"), 1):
            line = raw.strip()
            if not line:
                continue
            parts = line.split(None, 1)
            if len(parts) != 2:
                raise FormatError(f"{spec}: line {lineno} has a key but no file name: {line[:80]!r}")
            yield parts[0], parts[1].strip()
    finally:
        if f is not sys.stdin.buffer:
            f.close()


def _read_rx_object(rx: str, holder: str) -> np.ndarray:
    if holder in (MATRIX, VECTOR) and not rx.endswith("|"):
        try:
            return np.asarray(_kio.load_mat(rx))  # offsets and [row,col] ranges
        except FileNotFoundError as exc:
            raise NnetavgError(f"no such file: {exc.filename}") from None
        except Exception:
            where = "at that offset (wrong scp offset?)" if re.search(r":\d+(\[.*\])?$", rx) else ""
            raise FormatError(f"no complete Kaldi {holder} {where}".rstrip() +
                              " (truncated, corrupt, or not a Kaldi archive)") from None
    f = open_rxfilename(rx)
    try:
        return _read_object(f, holder)
    finally:
        if f is not sys.stdin.buffer:
            f.close()


def count_rows(rspecifier: str) -> int | None:
    """Total rows (frames) of the matrices an ``scp:`` rspecifier lists, from their binary headers
    only (``FM``/``DM``/compressed ``CM*``), without reading the data; None when that is not
    possible (an archive, a pipe, text matrices, a row range): callers use it for progress only."""
    try:
        spec = parse_rspecifier(rspecifier)
    except NnetavgError:
        return None
    if spec.kind != "scp" or spec.filename.endswith("|") or spec.filename in ("-", ""):
        return None
    total = 0
    try:
        for _, rx in _read_scp(spec):
            if rx.endswith("|") or rx.endswith("]"):  # a pipe or a row range: the header does not tell
                return None
            path, _, offset = rx.rpartition(":") if re.search(r":\d+$", rx) else (rx, "", "0")
            with open(path, "rb") as f:
                f.seek(int(offset))
                head = f.read(32)
            if head[:2] != b"\0B":
                return None
            if head[2:5] in (b"FM ", b"DM "):         # \0B FM <4> rows <4> cols
                total += struct.unpack("<i", head[6:10])[0]
            elif head[2:4] == b"CM":                  # \0B CM[23] then min, range (floats), rows, cols
                start = 5 if head[4:5] == b" " else 6
                total += struct.unpack("<i", head[start + 8:start + 12])[0]
            else:
                return None
    except (OSError, ValueError, struct.error, NnetavgError):
        return None
    return total


class RandomAccessReader:
    """Looks objects up by key. ``scp:`` is indexed and read on demand; an archive is read once,
    whole, into memory (use scp for large feature sets, as Kaldi recommends)."""

    def __init__(self, rspecifier: str, holder: str = MATRIX):
        self.spec = parse_rspecifier(rspecifier)
        self.holder = holder
        self._index: dict[str, str] | None = None
        self._cache: dict[str, np.ndarray] | None = None

    def _load(self) -> None:
        if self.spec.kind == "scp":
            if self._index is None:
                self._index = {}
                for key, rx in _read_scp(self.spec):
                    self._index[key] = rx
        elif self._cache is None:
            self._cache = dict(SequentialReader(self.spec.text, self.holder))

    def __contains__(self, key: str) -> bool:
        self._load()
        return key in (self._index if self.spec.kind == "scp" else self._cache)

    def keys(self) -> list[str]:
        self._load()
        return list(self._index if self.spec.kind == "scp" else self._cache)

    def get(self, key: str) -> np.ndarray | None:
        """The object for ``key``, or None when absent (or unreadable, with ``p``)."""
        self._load()
        if self.spec.kind != "scp":
            return self._cache.get(key)
        rx = self._index.get(key)
        if rx is None:
            return None
        try:
            return _read_rx_object(rx, self.holder)
        except NnetavgError as exc:
            if self.spec.permissive:
                return None
            raise NnetavgError(f"{self.spec}: cannot read {key!r} from {rx}: {exc}") from None

    def __getitem__(self, key: str) -> np.ndarray:
        obj = self.get(key)
        if obj is None:
            raise NnetavgError(f"{self.spec}: no entry for key {key!r}")
        return obj


# --------------------------------------------------------------------------- writer

class TableWriter:
    """Writes ``(key, object)`` pairs to an archive (and its scp, with ``ark,scp:``).

    An archive or scp that is a regular file is written under a temporary name beside it and
    renamed when the writer is closed without an error: a command that fails leaves no output
    (no 0-byte or half archive). Leaving the ``with`` block by an exception removes the temporary
    files. Standard output, pipes and devices (``/dev/null``) are written directly."""

    def __init__(self, wspecifier: str, holder: str = MATRIX, compression: int = 0):
        """``compression``: Kaldi's ``--compression-method`` for matrices in binary archives
        (1 automatic, 2 speech feature, 3-7 two/one-byte methods; 0: none)."""
        self.spec = parse_wspecifier(wspecifier)
        self.holder = holder
        if compression and not 1 <= compression <= 7:
            raise NnetavgError(f"--compression-method must be 1..7, not {compression}")
        self.compression = compression
        self._renames: list[tuple[str, str]] = []
        self._scp = None
        if self.spec.scp is not None:
            if self.spec.ark.strip() in ("", "-") or self.spec.ark.strip().startswith("|"):
                raise NnetavgError(f"{self.spec}: an scp needs a real archive file to point into")
            self._ark_path = self.spec.ark.strip()
        self._ark = open_wxfilename(self._staged(self.spec.ark))
        if self.spec.scp is not None:
            self._scp = open(self._staged(self.spec.scp), "w", encoding="utf-8")

    def _staged(self, name: str) -> str:
        path = name.strip()
        if path in ("", "-") or path.startswith("|") or (os.path.exists(path) and not os.path.isfile(path)):
            return name
        directory = os.path.dirname(os.path.abspath(path))
        if not os.path.isdir(directory):
            raise NnetavgError(f"cannot write {path}: no directory {directory}")
        tmp = os.path.join(directory, f".{os.path.basename(path)}.{os.getpid()}.tmp")
        self._renames.append((tmp, path))
        return tmp

    def write(self, key: str, obj) -> None:
        if not key or any(c.isspace() for c in key):
            raise NnetavgError(f"{self.spec}: invalid key {key!r} (keys must be non-empty, without spaces)")
        self._ark.write(key.encode() + b" ")
        if self._scp is not None:
            self._scp.write(f"{key} {self._ark_path}:{self._ark.tell()}\n")
        _write_object(self._ark, obj, self.holder, self.spec.binary, self.compression)
        if self.spec.flush:
            self._ark.flush()

    __setitem__ = write

    def _close_files(self) -> None:
        if self._ark is not sys.stdout.buffer:
            self._ark.close()
        else:
            self._ark.flush()
        if self._scp is not None:
            self._scp.close()

    def close(self) -> None:
        """Closes and, for files, moves the output into place."""
        self._close_files()
        for tmp, path in self._renames:
            os.replace(tmp, path)
        self._renames = []

    def discard(self) -> None:
        """Closes and removes what was written (the command failed)."""
        try:
            self._close_files()
        except NnetavgError:
            pass
        for tmp, _ in self._renames:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
        self._renames = []

    def __enter__(self):
        return self

    def __exit__(self, exc_type, *rest):
        if exc_type is None:
            self.close()
        else:
            self.discard()
        return False


def read_single(rxfilename: str, holder: str = MATRIX) -> np.ndarray:
    """Reads one object from a plain (non-table) Kaldi file, e.g. global CMVN stats."""
    f = open_rxfilename(rxfilename)
    try:
        try:
            return _read_object(f, holder)
        except FormatError as exc:
            raise FormatError(f"{rxfilename}: {exc}") from None
    finally:
        if f is not sys.stdin.buffer:
            f.close()


def write_single(wxfilename: str, obj, holder: str = MATRIX, binary: bool = True) -> None:
    """Writes one object as a plain Kaldi file (atomically, unless it is stdout or a pipe)."""
    from nnetavg.fileutil import atomic_output  # noqa: PLC0415
    name = wxfilename.strip()
    if name.startswith("|"):
        f = open_wxfilename(name)
        _write_object(f, obj, holder, binary)
        f.close()
        return
    with atomic_output(name) as f:
        _write_object(f, obj, holder, binary)


def job_substitute(spec: str, job: int) -> str:
    """Replaces the token ``JOB`` in a specifier by the job number (as run.pl does)."""
    return spec.replace("JOB", str(job))
