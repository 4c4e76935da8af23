"""Kaldi ``<NnetProto>`` prototypes (``nnet-initialize``) and the prototype writer of
``utils/nnet/make_nnet_proto.py``.

A prototype has one component per line; note that it gives ``<InputDim>`` before ``<OutputDim>``
(the model file does the opposite)::

    <NnetProto>
    <AffineTransform> <InputDim> 440 <OutputDim> 1024 <BiasMean> -2.0 <BiasRange> 4.0 <ParamStddev> 0.0317 <MaxNorm> 0.0
    <Sigmoid> <InputDim> 1024 <OutputDim> 1024
    <AffineTransform> <InputDim> 1024 <OutputDim> 3000 <BiasMean> 0.0 <BiasRange> 0.0 <ParamStddev> 0.1 <LearnRateCoef> 1.0 <BiasLearnRateCoef> 0.1
    <Softmax> <InputDim> 3000 <OutputDim> 3000
    </NnetProto>

Initialisation follows ``AffineTransform::InitData``: weights ~ N(0, ParamStddev^2), biases
~ U(BiasMean - BiasRange/2, BiasMean + BiasRange/2), defaults BiasMean -2, BiasRange 2,
ParamStddev 0.1. ``<Splice>`` takes ``<BuildVector> -5:5 </BuildVector>`` (Matlab-like ranges
``a:b`` and ``a:step:b``, comma- or space-separated) or ``<ReadVector> [ ... ]``. What
``utils/nnet/make_nnet_proto.py`` writes beyond that is read too: ``<LinearTransform>
<ParamStddev> s [<LearnRateCoef> c]`` (``--bn-dim``), ``<BlockSoftmax> <BlockDims> d1:d2``
(``--block-softmax-dims``), ``<Dropout> <DropoutRate> r`` (``--dropout-opts``), and ``<Copy>
<BuildVector> 1:5,7 </BuildVector>`` (1-based input columns) and ``<ParallelComponent>
<NestedNnetFilename> a.nnet b.nnet </NestedNnetFilename>`` (or ``<NestedNnetProto> a.proto
b.proto </NestedNnetProto>``).
"""

from __future__ import annotations

import math
import re

import numpy as np

from nnetavg.errors import FormatError, NnetavgError
from nnetavg.nnet.components import (AddShift, AffineTransform, BlockSoftmax, Component, Copy, Dropout,
                                     LinearTransform, ParallelComponent, ParametricRelu, Rescale, Splice,
                                     new_component)

NONLINEARITIES = {"sigmoid": "<Sigmoid>", "tanh": "<Tanh>", "relu": "<ParametricRelu>"}


def parse_build_vector(text: str) -> list[int]:
    out: list[int] = []
    for item in re.split(r"[,\s]+", text.strip()):
        if not item:
            continue
        parts = item.split(":")
        try:
            nums = [int(p) for p in parts]
        except ValueError:
            raise FormatError(f"bad <BuildVector> element {item!r}") from None
        if len(nums) == 1:
            out.append(nums[0])
        elif len(nums) == 2:
            out.extend(range(nums[0], nums[1] + 1))
        elif len(nums) == 3 and nums[1] != 0:
            out.extend(range(nums[0], nums[2] + (1 if nums[1] > 0 else -1), nums[1]))
        else:
            raise FormatError(f"bad <BuildVector> element {item!r}")
    return out


def _proto_line_options(line: str, where: str) -> tuple[str, dict[str, str]]:
    # Keep bracketed / BuildVector payloads as single values.
    m = re.match(r"\s*(<[^>\s]+>)(.*)$", line)
    if not m:
        raise FormatError(f"{where}: expected a component marker, found {line.strip()[:60]!r}")
    marker, rest = m.group(1), m.group(2)
    opts: dict[str, str] = {}
    for tag in ("BuildVector", "NestedNnetFilename", "NestedNnetProto"):
        bv = re.search(rf"<{tag}>(.*?)</{tag}>", rest, re.I)
        if bv:
            opts[f"<{tag.lower()}>"] = bv.group(1)
            rest = rest[:bv.start()] + rest[bv.end():]
    rv = re.search(r"<ReadVector>\s*\[(.*?)\]", rest, re.I)
    if rv:
        opts["<readvector>"] = rv.group(1)
        rest = rest[:rv.start()] + rest[rv.end():]
    toks = rest.split()
    if len(toks) % 2:
        raise FormatError(f"{where}: options must come in '<Name> value' pairs: {rest.strip()[:80]!r}")
    for k, v in zip(toks[::2], toks[1::2]):
        if not k.startswith("<"):
            raise FormatError(f"{where}: expected an option like <InputDim>, found {k!r}")
        opts[k.lower()] = v
    return marker, opts


def _float(opts, key, default, where):
    try:
        return float(opts.pop(key.lower(), default))
    except ValueError:
        raise FormatError(f"{where}: {key} needs a number") from None


def init_from_proto(text: str, seed: int = 777, name: str = "<proto>") -> list[Component]:
    """Components initialised from a prototype, with random numbers from ``seed``."""
    rng = np.random.default_rng(seed)
    comps: list[Component] = []
    for lineno, line in enumerate(text.splitlines(), 1):
        s = line.strip()
        if not s or s.startswith("#") or s.lower() in ("<nnetproto>", "</nnetproto>"):
            continue
        where = f"{name}:{lineno}"
        marker, opts = _proto_line_options(s, where)
        try:
            in_dim, out_dim = int(opts.pop("<inputdim>")), int(opts.pop("<outputdim>"))
        except (KeyError, ValueError):
            raise FormatError(f"{where}: {marker} needs <InputDim> and <OutputDim>") from None
        if marker.lower() == "<rbm>":
            comps.append(_rbm_from_proto(opts, in_dim, out_dim, int(rng.integers(2 ** 31)), where))
            if opts:
                raise FormatError(f"{where}: unknown option(s) for {marker}: {' '.join(opts)}")
            continue
        comp = new_component(marker, in_dim, out_dim, f"{where}: ")
        if isinstance(comp, AffineTransform):
            mean = _float(opts, "<BiasMean>", -2.0, where)
            rng_b = _float(opts, "<BiasRange>", 2.0, where)
            std = _float(opts, "<ParamStddev>", 0.1, where)
            comp.lr_coef = _float(opts, "<LearnRateCoef>", 1.0, where)
            comp.bias_lr_coef = _float(opts, "<BiasLearnRateCoef>", 1.0, where)
            comp.max_norm = _float(opts, "<MaxNorm>", 0.0, where)
            comp.init = {"linearity": (rng.standard_normal((out_dim, in_dim)) * std).astype(np.float32),
                         "bias": (mean + (rng.random(out_dim) - 0.5) * rng_b).astype(np.float32)}
        elif isinstance(comp, ParametricRelu):
            comp.alpha_lr_coef = _float(opts, "<AlphaLearnRateCoef>", 0.0, where)
            comp.beta_lr_coef = _float(opts, "<BetaLearnRateCoef>", 0.0, where)
            comp.init = {"alpha": np.full(out_dim, _float(opts, "<InitAlpha>", 1.0, where), np.float32),
                         "beta": np.full(out_dim, _float(opts, "<InitBeta>", 0.0, where), np.float32)}
        elif isinstance(comp, Splice):
            if "<buildvector>" in opts:
                offsets = parse_build_vector(opts.pop("<buildvector>"))
            elif "<readvector>" in opts:
                offsets = [int(v) for v in opts.pop("<readvector>").split()]
            else:
                raise FormatError(f"{where}: <Splice> needs <BuildVector> a:b </BuildVector>")
            if len(offsets) * in_dim != out_dim:
                raise FormatError(f"{where}: <Splice> with {len(offsets)} offsets of {in_dim} dims gives "
                                  f"{len(offsets) * in_dim}, not <OutputDim> {out_dim}")
            comp.offsets = np.asarray(offsets, np.int32)
        elif isinstance(comp, LinearTransform):
            std = _float(opts, "<ParamStddev>", 0.1, where)
            comp.lr_coef = _float(opts, "<LearnRateCoef>", 1.0, where)
            comp.init = {"linearity": (rng.standard_normal((out_dim, in_dim)) * std).astype(np.float32)}
        elif isinstance(comp, BlockSoftmax):
            try:
                dims = [int(d) for d in re.split(r"[,:]", opts.pop("<blockdims>", str(out_dim)))]
            except ValueError:
                raise FormatError(f"{where}: <BlockDims> needs dims like 10:20") from None
            if min(dims) <= 0 or sum(dims) != out_dim or in_dim != out_dim:
                raise FormatError(f"{where}: <BlockDims> {dims} must be positive and sum to {out_dim}")
            comp.block_dims = np.asarray(dims, np.int32)
        elif isinstance(comp, Dropout):
            if "<dropoutretention>" in opts:
                comp.rate = 1.0 - _float(opts, "<DropoutRetention>", 0.5, where)
            comp.rate = _float(opts, "<DropoutRate>", comp.rate, where)
            if not 0.0 <= comp.rate < 1.0:
                raise FormatError(f"{where}: <DropoutRate> {comp.rate} must be in [0, 1)")
        elif isinstance(comp, Copy):
            if "<buildvector>" not in opts:
                raise FormatError(f"{where}: <Copy> needs <BuildVector> (1-based input columns) </BuildVector>")
            idx = np.asarray(parse_build_vector(opts.pop("<buildvector>")), np.int64) - 1
            if idx.shape != (out_dim,) or idx.min() < 0 or idx.max() >= in_dim:
                raise FormatError(f"{where}: <Copy> needs {out_dim} columns in 1..{in_dim}, got {idx.size}")
            comp.indices = idx.astype(np.int32)
        elif isinstance(comp, ParallelComponent):
            comp.nested = _nested_nnets(opts, seed=int(rng.integers(2 ** 31)), where=where)
            if sum(n.input_dim for n in comp.nested) != in_dim or sum(n.output_dim for n in comp.nested) != out_dim:
                raise FormatError(f"{where}: the nested networks take {sum(n.input_dim for n in comp.nested)} inputs "
                                  f"and give {sum(n.output_dim for n in comp.nested)} outputs, not {in_dim} -> {out_dim}")
        elif isinstance(comp, (AddShift, Rescale)):
            comp.lr_coef = _float(opts, "<LearnRateCoef>", 0.0, where)
            comp.init = {comp.pname: np.full(out_dim, _float(opts, "<InitParam>", comp.init[comp.pname][0]
                                                             if out_dim else 0.0, where), np.float32)}
        if opts:
            raise FormatError(f"{where}: unknown option(s) for {marker}: {' '.join(opts)}")
        comps.append(comp)
    if not comps:
        raise FormatError(f"{name}: the prototype has no components")
    return comps


def _nested_nnets(opts: dict, seed: int, where: str) -> list:
    """The networks of a <ParallelComponent> prototype: model files or prototypes (initialised)."""
    from nnetavg.io.nnet1 import read_nnet
    from nnetavg.nnet.network import Network

    if "<nestednnetfilename>" in opts:
        return [read_nnet(f) for f in opts.pop("<nestednnetfilename>").split()]
    if "<nestednnetproto>" in opts:
        nets = []
        for i, f in enumerate(opts.pop("<nestednnetproto>").split()):
            try:
                with open(f, encoding="utf-8") as fh:
                    text = fh.read()
            except OSError as e:
                raise FormatError(f"{where}: cannot read nested prototype {f}: {e.strerror}") from None
            nets.append(Network(init_from_proto(text, seed + i, f)))
        return nets
    raise FormatError(f"{where}: <ParallelComponent> needs <NestedNnetFilename> ... </NestedNnetFilename> "
                      "or <NestedNnetProto> ... </NestedNnetProto>")


def _rbm_from_proto(opts: dict, in_dim: int, out_dim: int, seed: int, where: str):
    """``<Rbm> <VisibleType> bern|gauss <HiddenType> bern|gauss <ParamStddev> s
    [<VisibleBiasCmvnFilename> f]`` (nnet1's ``Rbm::InitData``): W ~ N(0, s^2), biases zero, or
    the visible bias from the mean in a cmvn-to-nnet file (logit of the mean activation)."""
    from nnetavg.rbm import new_rbm, visible_bias_from_mean  # noqa: PLC0415  (rbm imports nnet)
    vis = opts.pop("<visibletype>", "bern").lower()
    hid = opts.pop("<hiddentype>", "bern").lower()
    std = _float(opts, "<ParamStddev>", 0.1, where)
    bias = None
    cmvn_file = opts.pop("<visiblebiascmvnfilename>", "")
    if cmvn_file:
        from nnetavg.io.nnet1 import read_nnet  # noqa: PLC0415
        shift = next((c for c in read_nnet(cmvn_file).components if isinstance(c, AddShift)), None)
        if shift is None or shift.output_dim != in_dim:
            raise FormatError(f"{where}: {cmvn_file} has no <AddShift> of dim {in_dim} (expected cmvn-to-nnet output)")
        bias = visible_bias_from_mean(-np.asarray(shift.param("shift"), dtype=np.float64))
    try:
        return new_rbm(in_dim, out_dim, vis, hid, std, seed, bias).components[0]
    except NnetavgError as exc:
        raise FormatError(f"{where}: {exc}") from None


def glorot(d_in: int, d_out: int) -> float:
    return 35.0 * math.sqrt(2.0 / (d_in + d_out))


def make_proto(input_dim: int, output_dim: int, hidden_layers: int, hidden_dim: int,
               nonlinearity: str = "sigmoid", param_stddev_factor: float = 0.1,
               smaller_input_weights: bool = True, max_norm: float = 0.0) -> str:
    """A prototype as ``utils/nnet/make_nnet_proto.py`` writes it.

    Hidden biases: sigmoid uses nnet1's mean -2, range 4 (units start mostly off); tanh and ReLU
    use mean 0 range 0.2 and mean 0.1 range 0.1 (a small positive bias keeps ReLUs alive).
    Weights: stddev = factor * 35 * sqrt(2 / (d_in + d_out)); the first layer times sqrt(1/12)
    (nnet1's default for unit-variance inputs spliced 11 times).
    """
    if nonlinearity not in NONLINEARITIES:
        raise FormatError(f"--nonlinearity must be one of {', '.join(NONLINEARITIES)}, not {nonlinearity!r}")
    bias_mean, bias_range = {"sigmoid": (-2.0, 4.0), "tanh": (0.0, 0.2), "relu": (0.1, 0.1)}[nonlinearity]
    act = NONLINEARITIES[nonlinearity]
    lines = ["<NnetProto>"]
    d = input_dim
    for layer in range(hidden_layers):
        std = param_stddev_factor * glorot(d, hidden_dim) * (math.sqrt(1 / 12) if layer == 0 and smaller_input_weights else 1)
        lines.append(f"<AffineTransform> <InputDim> {d} <OutputDim> {hidden_dim} <BiasMean> {bias_mean} "
                     f"<BiasRange> {bias_range} <ParamStddev> {std:.6f} <MaxNorm> {max_norm}")
        lines.append(f"{act} <InputDim> {hidden_dim} <OutputDim> {hidden_dim}")
        d = hidden_dim
    std = param_stddev_factor * glorot(d, output_dim) * (math.sqrt(1 / 12) if hidden_layers == 0 and smaller_input_weights else 1)
    lines.append(f"<AffineTransform> <InputDim> {d} <OutputDim> {output_dim} <BiasMean> 0.0 <BiasRange> 0.0 "
                 f"<ParamStddev> {std:.6f} <LearnRateCoef> 1.0 <BiasLearnRateCoef> 0.1")
    lines.append(f"<Softmax> <InputDim> {output_dim} <OutputDim> {output_dim}")
    lines.append("</NnetProto>")
    return "\n".join(lines) + "\n"
