"""Kaldi nnet1 model files (``src/nnet/nnet-nnet.cc``, ``nnet-component.cc``), text and binary.

Layout::

    [\\0B]  <Nnet>  { <Marker> OutputDim InputDim  data  <!EndOfComponent> }*  </Nnet>

Note that the file gives the *output* dimension first. On reading, ``<Nnet>`` and
``<!EndOfComponent>`` are optional, markers are case-insensitive, and reading stops at ``</Nnet>``
or at the end of the file, exactly as Kaldi's ``Nnet::Read``. Writing produces the bytes Kaldi's
``Nnet::Write`` produces (binary by default, ``--binary=false`` for text).

A model file read here is a :class:`Network`; a component we cannot run, a truncated file or
inconsistent dimensions give a :class:`FormatError` naming the file and the component.
"""

from __future__ import annotations

import types

import numpy as np

from nnetavg.errors import FormatError, NnetavgError
from nnetavg.fileutil import atomic_output
from nnetavg.io.kaldi_basic import KaldiReader, KaldiWriter, read_rxfilename
from nnetavg.nnet.components import Component, new_component
from nnetavg.nnet.network import Network


def read_components(data: bytes, name: str) -> list[Component]:
    r = KaldiReader(data, name)
    if r.at_end():
        raise FormatError(f"{name}: empty model file")
    return _read_components(r, name, len(data))


def read_nested_nnet(r: KaldiReader) -> Network:
    """A ``<Nnet> ... </Nnet>`` inside another component (``<ParallelComponent>``)."""
    return Network(_read_components(r, r.name, len(r.data), nested=True))


def write_nested_nnet(w: KaldiWriter, nnet: Network) -> None:
    _write_body(w, nnet)


def _read_components(r: KaldiReader, name: str, size: int, nested: bool = False) -> list[Component]:
    data_len = size
    comps: list[Component] = []
    tok = r.read_token()
    opened = tok.lower() == "<nnet>"
    if nested and not opened:
        raise FormatError(f"{name}: a nested network must start with <Nnet>, found {tok[:40]!r}")
    if opened:
        tok = None
    while True:
        if tok is None:
            if r.at_end():
                if opened:  # Kaldi always writes </Nnet>; without it the file was cut short
                    raise FormatError(f"{name}: no </Nnet> after component {len(comps)} "
                                      f"(truncated or corrupt file?)")
                break
            tok = r.read_token()
        if tok.lower() == "</nnet>":
            break
        if tok.startswith("<") and not tok.endswith(">"):
            raise FormatError(f"{name}: component {len(comps) + 1}: unfinished marker {tok[:40]!r} "
                              f"(truncated or corrupt file?)")
        if tok.lower() == "<!endofcomponent>":
            tok = None
            continue
        where = f"{name}: component {len(comps) + 1}: "
        if not tok.startswith("<"):
            raise FormatError(f"{where}expected a component marker, found {tok[:40]!r} (not an nnet1 model?)")
        new_component(tok, 1, 1, where)  # an unknown marker fails here, before its data is parsed
        out_dim, in_dim = r.read_int(), r.read_int()
        if out_dim <= 0 or in_dim <= 0:
            raise FormatError(f"{where}{tok} has invalid dimensions {out_dim} {in_dim}")
        try:
            comp = new_component(tok, in_dim, out_dim, where)
            comp.read_data(r)
        except FormatError as exc:
            raise FormatError(f"{where}{tok}: {exc}") from None
        except MemoryError:   # dims from a corrupt header: no such matrix can be in this file
            raise FormatError(f"{where}{tok} claims dimensions {out_dim} x {in_dim}, impossible for a file of "
                              f"{data_len} bytes (corrupt header?)") from None
        comps.append(comp)
        tok = None
    if not comps:
        raise FormatError(f"{name}: no components in the model file")
    return comps


def read_nnet(rxfilename: str, xp: types.ModuleType = np, dtype=np.float32) -> Network:
    """Reads a Kaldi nnet1 model (text or binary) into a :class:`Network`."""
    data = read_rxfilename(rxfilename)
    comps = read_components(data, rxfilename)
    try:
        return Network(comps, xp=xp, dtype=dtype)
    except NnetavgError as exc:
        raise FormatError(f"{rxfilename}: {exc}") from None


def write_nnet_to(f, nnet: Network, binary: bool = True) -> None:
    w = KaldiWriter(f, binary)
    w.write_header()
    _write_body(w, nnet)


def _write_body(w: KaldiWriter, nnet: Network) -> None:
    w.write_token("<Nnet>")
    w.newline()
    for comp in nnet.components:
        w.write_token(comp.marker)
        w.write_int(comp.output_dim)
        w.write_int(comp.input_dim)
        w.newline()
        comp.write_data(w)
        w.write_token("<!EndOfComponent>")
        w.newline()
    w.write_token("</Nnet>")
    w.newline()


def write_nnet(nnet: Network, wxfilename: str, binary: bool = True, allow_non_finite: bool = False) -> None:
    """Writes ``nnet`` atomically (temporary file + rename) in Kaldi nnet1 format.

    Refuses to write a network with a NaN or infinite parameter: such a model is never useful and
    would silently poison averaging. ``allow_non_finite``: write it anyway (``nnet-copy``, to
    inspect a diverged model).
    """
    xp = nnet.xp
    if not allow_non_finite and not bool(xp.all(xp.isfinite(nnet.params))):
        raise NnetavgError(f"refusing to write {wxfilename}: the network has NaN or infinite parameters")
    with atomic_output(wxfilename) as f:
        write_nnet_to(f, nnet, binary)
