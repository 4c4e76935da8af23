"""Kaldi's basic object I/O (``src/base/io-funcs``, ``src/matrix/kaldi-{matrix,vector}.cc``).

Everything a Kaldi object file is built from, in both modes:

=============  ====================================  ======================================
object         binary                                text
=============  ====================================  ======================================
header         ``\\0B`` at the start of the file     nothing
token          ``<Tok>`` + space                     ``<Tok>`` + space
int32          size byte 4 + little-endian int32     decimal + space
float          size byte 4 (or 8) + IEEE value       ``%.7g`` + space (C++ precision 7)
matrix         ``FM `` / ``DM `` rows cols data      `` [\\n  a b \\n  c d ]\\n``
vector         ``FV `` / ``DV `` dim data            `` [ a b c ]\\n``
int vector     byte 4, raw int32 length, raw data    ``[ a b c ]\\n``
=============  ====================================  ======================================

:class:`KaldiReader` reads any of these from a byte buffer, raising :class:`FormatError` (with the
file name given to it) on anything unexpected, including truncation. :class:`KaldiWriter` writes
them. Rx/wx file names (``-``, pipes, ``file:offset``) are opened by :func:`open_rxfilename` and
:func:`open_wxfilename`.
"""

from __future__ import annotations

import io
import re
import struct
import subprocess
import sys
from typing import BinaryIO

import numpy as np

from nnetavg.errors import FormatError, NnetavgError

_WS = b" \t\n\r"
_OFFSET_RE = re.compile(r"^(.*):(\d+)$")


# --------------------------------------------------------------------------- rx/wx file names

class _PipeReader(io.RawIOBase):
    """A pipe's stdout that checks the command's exit status when closed. A reader that stops
    before the end (``feat-to-dim "ark:copy-feats ... |"`` reads one matrix) breaks the pipe on
    purpose: the writer's failure then is not an error, as with Kaldi's own binaries, whose
    writers die of SIGPIPE."""

    def __init__(self, cmd: str):
        self.cmd = cmd
        self.proc = subprocess.Popen(cmd, shell=True, stdout=subprocess.PIPE)
        self.stream = self.proc.stdout
        self.at_eof = False

    def readable(self):
        return True

    def readinto(self, b):
        data = self.stream.read(len(b))
        n = len(data)
        b[:n] = data
        if n == 0 and len(b):
            self.at_eof = True
        return n

    def close(self):
        if not self.closed:
            self.stream.close()
            rc = self.proc.wait()
            super().close()
            if rc != 0 and self.at_eof:
                raise NnetavgError(f"command in pipe failed with exit status {rc}: {self.cmd}")


def open_rxfilename(rxfilename: str) -> BinaryIO:
    """Opens a Kaldi rxfilename for reading: a file, ``-`` (stdin), ``cmd |``, or ``file:offset``."""
    name = rxfilename.strip()
    if name in ("", "-"):
        return sys.stdin.buffer
    if name.endswith("|"):
        return io.BufferedReader(_PipeReader(name[:-1]))
    m = _OFFSET_RE.match(name)
    path, offset = (m.group(1), int(m.group(2))) if m else (name, 0)
    try:
        f = open(path, "rb")
    except OSError as exc:
        raise NnetavgError(f"cannot open {path}: {exc.strerror}") from None
    if offset:
        f.seek(offset)
    return f


def open_wxfilename(wxfilename: str) -> BinaryIO:
    """Opens a Kaldi wxfilename for writing: a file, ``-`` (stdout) or ``| cmd``.

    Model files should instead go through :func:`nnetavg.fileutil.atomic_output`.
    """
    name = wxfilename.strip()
    if name in ("", "-"):
        return sys.stdout.buffer
    if name.startswith("|"):
        proc = subprocess.Popen(name[1:], shell=True, stdin=subprocess.PIPE)
        return _PipeWriter(proc, name[1:])
    try:
        return open(name, "wb")
    except OSError as exc:
        raise NnetavgError(f"cannot open {name} for writing: {exc.strerror}") from None


class _PipeWriter(io.BufferedWriter):
    def __init__(self, proc, cmd):
        super().__init__(proc.stdin)
        self.proc, self.cmd = proc, cmd

    def close(self):
        if not self.closed:
            super().close()
            rc = self.proc.wait()
            if rc != 0 and self.at_eof:
                raise NnetavgError(f"command in pipe failed with exit status {rc}: {self.cmd}")


def read_rxfilename(rxfilename: str) -> bytes:
    """The whole content of an rxfilename (models and small objects are read in one go)."""
    f = open_rxfilename(rxfilename)
    try:
        return f.read()
    finally:
        if f is not sys.stdin.buffer:
            f.close()


# --------------------------------------------------------------------------- reading

class KaldiReader:
    """Reads Kaldi basic objects from ``data`` starting at ``pos``; ``name`` is used in errors."""

    def __init__(self, data: bytes, name: str = "<input>", pos: int = 0, binary: bool | None = None):
        self.data = data
        self.name = name
        self.pos = pos
        if binary is None:
            binary = data[pos:pos + 2] == b"\0B"
            if binary:
                self.pos += 2
        self.binary = binary

    # -- helpers
    def fail(self, what: str) -> FormatError:
        state = "end of file" if self.pos >= len(self.data) else f"byte offset {self.pos}"
        return FormatError(f"{self.name}: {what} (at {state}; truncated or corrupt file?)")

    def _skip_ws(self) -> None:
        data, n, p = self.data, len(self.data), self.pos
        while p < n and data[p] in _WS:
            p += 1
        self.pos = p

    def _take(self, n: int) -> bytes:
        if self.pos + n > len(self.data):
            raise self.fail(f"expected {n} more bytes")
        b = self.data[self.pos:self.pos + n]
        self.pos += n
        return b

    def at_end(self) -> bool:
        self._skip_ws()
        return self.pos >= len(self.data)

    # -- tokens
    def read_token(self) -> str:
        self._skip_ws()
        data, n, start = self.data, len(self.data), self.pos
        p = start
        while p < n and data[p] not in _WS:
            p += 1
        if p == start:
            raise self.fail("expected a token")
        self.pos = p + 1 if p < n else p  # eat the one space that follows a token
        try:
            return data[start:p].decode()
        except UnicodeDecodeError:
            raise self.fail("expected a token, found binary data") from None

    def peek_token(self) -> str:
        save = self.pos
        try:
            return self.read_token()
        finally:
            self.pos = save

    def expect_token(self, token: str) -> None:
        got = self.read_token()
        if got.lower() != token.lower():
            raise self.fail(f"expected {token}, found {got[:40]}")

    # -- scalars
    def read_int(self) -> int:
        if self.binary:
            size = self._take(1)[0]
            if size != 4:
                raise self.fail(f"expected a 4-byte integer, size byte is {size}")
            return struct.unpack("<i", self._take(4))[0]
        tok = self.read_token()
        try:
            return int(tok)
        except ValueError:
            raise self.fail(f"expected an integer, found {tok[:40]!r}") from None

    def read_float(self) -> float:
        if self.binary:
            size = self._take(1)[0]
            if size == 4:
                return struct.unpack("<f", self._take(4))[0]
            if size == 8:
                return struct.unpack("<d", self._take(8))[0]
            raise self.fail(f"expected a float, size byte is {size}")
        tok = self.read_token()
        try:
            return float(tok)
        except ValueError:
            raise self.fail(f"expected a number, found {tok[:40]!r}") from None

    # -- matrices and vectors
    def read_matrix(self) -> np.ndarray:
        if self.binary:
            tok = self.read_token()
            if tok not in ("FM", "DM"):
                if tok in ("CM", "CM2", "CM3"):
                    raise self.fail("compressed matrix where a model parameter was expected")
                raise self.fail(f"expected a matrix (FM or DM), found {tok[:40]!r}")
            rows, cols = self.read_int(), self.read_int()
            if rows < 0 or cols < 0:
                raise self.fail(f"negative matrix size {rows}x{cols}")
            dtype = np.dtype("<f4") if tok == "FM" else np.dtype("<f8")
            raw = self._take(rows * cols * dtype.itemsize)
            return np.frombuffer(raw, dtype=dtype).reshape(rows, cols).astype(np.float32)
        body = self._bracketed("matrix")
        lines = [ln for ln in re.split(rb"[\n;]", body) if ln.strip()]
        if not lines:
            return np.zeros((0, 0), dtype=np.float32)
        cols = len(lines[0].split())
        values = self._parse_numbers(body, np.float32)
        if values.size != cols * len(lines) or any(len(ln.split()) != cols for ln in lines):
            raise self.fail("matrix rows of unequal length")
        return values.reshape(len(lines), cols)

    def read_vector(self) -> np.ndarray:
        if self.binary:
            tok = self.read_token()
            if tok not in ("FV", "DV"):
                raise self.fail(f"expected a vector (FV or DV), found {tok[:40]!r}")
            dim = self.read_int()
            if dim < 0:
                raise self.fail(f"negative vector size {dim}")
            dtype = np.dtype("<f4") if tok == "FV" else np.dtype("<f8")
            return np.frombuffer(self._take(dim * dtype.itemsize), dtype=dtype).astype(np.float32)
        return self._parse_numbers(self._bracketed("vector"), np.float32)

    def read_int_vector(self) -> np.ndarray:
        if self.binary:
            size = self._take(1)[0]
            if size != 4:
                raise self.fail(f"expected an int32 vector, element size byte is {size}")
            n = struct.unpack("<i", self._take(4))[0]
            if n < 0:
                raise self.fail(f"negative vector size {n}")
            return np.frombuffer(self._take(4 * n), dtype="<i4").astype(np.int32)
        values = self._parse_numbers(self._bracketed("integer vector"), np.float64)
        if values.size and not np.all(values == np.round(values)):
            raise self.fail("non-integer value in an integer vector")
        return values.astype(np.int32)

    def _bracketed(self, what: str) -> bytes:
        self._skip_ws()
        if self.pos >= len(self.data) or self.data[self.pos:self.pos + 1] != b"[":
            raise self.fail(f"expected '[' starting a {what}")
        end = self.data.find(b"]", self.pos)
        if end < 0:
            raise self.fail(f"no ']' closing a {what}")
        body = self.data[self.pos + 1:end]
        self.pos = end + 1
        # Kaldi eats one newline after ']'.
        if self.data[self.pos:self.pos + 2] == b"\r\n":
            self.pos += 2
        elif self.data[self.pos:self.pos + 1] == b"\n":
            self.pos += 1
        return body

    def _parse_numbers(self, body: bytes, dtype) -> np.ndarray:
        parts = body.split()
        try:
            return np.array(parts, dtype=np.float64).astype(dtype)
        except ValueError:
            bad = next((p for p in parts if not _is_number(p)), b"?")
            raise self.fail(f"not a number: {bad[:40].decode(errors='replace')!r}") from None


def _is_number(tok: bytes) -> bool:
    try:
        float(tok)
        return True
    except ValueError:
        return False


# --------------------------------------------------------------------------- writing

def _fmt(x: float) -> str:
    return "%.7g" % x


class KaldiWriter:
    """Writes Kaldi basic objects to a binary file object, in binary or text mode."""

    def __init__(self, f: BinaryIO, binary: bool = True):
        self.f = f
        self.binary = binary

    def write_header(self) -> None:
        if self.binary:
            self.f.write(b"\0B")

    def write_token(self, token: str) -> None:
        self.f.write(token.encode() + b" ")

    def newline(self) -> None:
        if not self.binary:
            self.f.write(b"\n")

    def write_int(self, value: int) -> None:
        if self.binary:
            self.f.write(b"\x04" + struct.pack("<i", int(value)))
        else:
            self.f.write(f"{int(value)} ".encode())

    def write_float(self, value: float) -> None:
        if self.binary:
            self.f.write(b"\x04" + struct.pack("<f", float(value)))
        else:
            self.f.write((_fmt(float(value)) + " ").encode())

    def write_matrix(self, m: np.ndarray) -> None:
        m = np.asarray(m)
        if self.binary:
            self.write_token("FM")
            self.write_int(m.shape[0])
            self.write_int(m.shape[1])
            self.f.write(np.ascontiguousarray(m, dtype="<f4").tobytes())
            return
        if m.size == 0:
            self.f.write(b" [ ]\n")
            return
        out = [" ["]
        for row in np.asarray(m, dtype=np.float32):
            out.append("\n  " + "".join(_fmt(x) + " " for x in row.tolist()))
        out.append("]\n")
        self.f.write("".join(out).encode())

    def write_vector(self, v: np.ndarray) -> None:
        v = np.asarray(v)
        if self.binary:
            self.write_token("FV")
            self.write_int(v.shape[0])
            self.f.write(np.ascontiguousarray(v, dtype="<f4").tobytes())
            return
        self.f.write((" [ " + "".join(_fmt(x) + " " for x in np.asarray(v, np.float32).tolist()) + "]\n").encode())

    def write_int_vector(self, v) -> None:
        v = np.asarray(v, dtype=np.int32)
        if self.binary:
            self.f.write(b"\x04" + struct.pack("<i", v.shape[0]) + v.astype("<i4").tobytes())
            return
        self.f.write(("[ " + "".join(f"{int(x)} " for x in v.tolist()) + "]\n").encode())
