"""nnet1 components: the maths (forward, backward, parameter gradients) and their file data.

Conventions follow Kaldi nnet1 (``src/nnet/nnet-*.h``):

* Frames are rows: an input ``x`` is N x D_in, an output ``y`` is N x D_out.
* ``<AffineTransform>``: ``y = x W^T + b``, W is D_out x D_in (rows are output neurons).
* ``<Softmax>``'s backward is the identity: it is only used together with the cross-entropy
  objective, whose derivative with respect to the softmax *input* is ``y - t`` (nnet1's ``Xent``
  hands exactly this to the softmax, which passes it through).
* ``<ParametricRelu>``: ``y = alpha * x`` for ``x >= 0`` and ``beta * x`` for ``x < 0``, per
  dimension; ReLU is ``alpha = 1, beta = 0`` with both learning-rate coefficients 0.
* ``<Splice>`` works on whole utterances (frame offsets, clamped at the edges).

Parameters are not owned by components: :class:`nnetavg.nnet.network.Network` allocates one flat
buffer and gives each component views into it (``self.params[name]``). A component built alone
keeps its initial values in ``self.init`` until bound.

All maths uses ``xp = get_array_module(x)`` so the same code runs on numpy and CuPy.
"""

from __future__ import annotations

import numpy as np

from nnetavg import blas
from nnetavg.backend import get_array_module
from nnetavg.errors import FormatError
from nnetavg.io.kaldi_basic import KaldiReader, KaldiWriter
from nnetavg.kernels import sigmoid_backward


class Component:
    """Base class. Subclasses set ``marker`` and override what they need."""

    marker = ""

    def __init__(self, input_dim: int, output_dim: int):
        self.input_dim = int(input_dim)
        self.output_dim = int(output_dim)
        self.params: dict[str, object] = {}
        self.init: dict[str, np.ndarray] = {}

    # -- parameters
    def param_specs(self) -> list[tuple[str, tuple[int, ...]]]:
        """Names and shapes of the parameters kept in the network's flat buffer."""
        return []

    @property
    def num_params(self) -> int:
        return sum(int(np.prod(s)) for _, s in self.param_specs())

    def param(self, name: str):
        return self.params[name] if name in self.params else self.init[name]

    @property
    def updatable(self) -> bool:
        """True when training changes this component's parameters."""
        return False

    def learn_rate_coef(self, name: str) -> float:
        return 0.0

    # -- maths
    def forward(self, x):
        raise TypeError(f"{type(self).__name__} defines no forward")

    def forward_train(self, x):
        """The forward pass in training (differs from :meth:`forward` only for ``<Dropout>``)."""
        return self.forward(x)

    def backward(self, x, y, dy):
        """Derivative of the objective with respect to the input, given it for the output."""
        raise TypeError(f"{type(self).__name__} defines no backward")

    def param_gradients(self, x, y, dy) -> dict[str, object]:
        """Gradient of the objective (summed over frames) for each parameter."""
        return {}

    # -- file data (after the marker and dims)
    def read_data(self, r: KaldiReader) -> None:
        pass

    def write_data(self, w: KaldiWriter) -> None:
        pass

    def topology(self) -> tuple:
        """What must agree for two components to be averaged (type, dims, fixed structure)."""
        return (self.marker, self.input_dim, self.output_dim)

    def info(self) -> str:
        return ""

    def __repr__(self) -> str:
        return f"{self.marker}({self.input_dim}->{self.output_dim})"


def _read_coef_tokens(r: KaldiReader, allowed: dict[str, str], obj) -> None:
    """Reads optional ``<Token> value`` pairs (any order) until the next non-token object."""
    lowered = {k.lower(): v for k, v in allowed.items()}
    while True:
        if r.at_end():
            return
        tok = r.peek_token()
        if not tok.startswith("<") or tok.lower() not in lowered:
            return
        r.read_token()
        setattr(obj, lowered[tok.lower()], r.read_float())


class AffineTransform(Component):
    marker = "<AffineTransform>"

    def __init__(self, input_dim, output_dim, learn_rate_coef=1.0, bias_learn_rate_coef=1.0, max_norm=0.0):
        super().__init__(input_dim, output_dim)
        self.lr_coef = float(learn_rate_coef)
        self.bias_lr_coef = float(bias_learn_rate_coef)
        self.max_norm = float(max_norm)
        self.init = {"linearity": np.zeros((output_dim, input_dim), np.float32),
                     "bias": np.zeros(output_dim, np.float32)}

    def param_specs(self):
        return [("linearity", (self.output_dim, self.input_dim)), ("bias", (self.output_dim,))]

    @property
    def updatable(self):
        return self.lr_coef != 0 or self.bias_lr_coef != 0

    def learn_rate_coef(self, name):
        return self.lr_coef if name == "linearity" else self.bias_lr_coef

    def forward(self, x):
        W, b = self.param("linearity"), self.param("bias")
        if blas.ready(x, W, b):   # y = b, then y += x W^T inside the GEMM (beta = 1): one pass less
            y = np.empty((x.shape[0], W.shape[0]), dtype=x.dtype)
            y[...] = b
            blas.gemm(1.0, x, W, 1.0, y, trans_b=True)
            return y
        y = x @ W.T
        y += b
        return y

    def backward(self, x, y, dy):
        W = self.param("linearity")
        if blas.ready(dy, W):
            dx = np.empty((dy.shape[0], W.shape[1]), dtype=dy.dtype)
            blas.gemm(1.0, dy, W, 0.0, dx)
            return dx
        return dy @ W

    def param_gradients(self, x, y, dy):
        return {"linearity": dy.T @ x, "bias": dy.sum(axis=0)}

    def read_data(self, r):
        _read_coef_tokens(r, {"<LearnRateCoef>": "lr_coef", "<BiasLearnRateCoef>": "bias_lr_coef",
                              "<MaxNorm>": "max_norm"}, self)
        w = r.read_matrix()
        b = r.read_vector()
        if w.shape != (self.output_dim, self.input_dim) or b.shape != (self.output_dim,):
            raise r.fail(f"{self.marker} {self.output_dim} {self.input_dim} holds a {w.shape[0]}x{w.shape[1]} "
                         f"matrix and a bias of {b.shape[0]}")
        self.init = {"linearity": w, "bias": b}

    def write_data(self, w):
        w.write_token("<LearnRateCoef>"); w.write_float(self.lr_coef)
        w.write_token("<BiasLearnRateCoef>"); w.write_float(self.bias_lr_coef)
        w.write_token("<MaxNorm>"); w.write_float(self.max_norm)
        w.newline()
        w.write_matrix(_np(self.param("linearity")))
        w.write_vector(_np(self.param("bias")))

    def info(self):
        W = _np(self.param("linearity")).astype(np.float64)
        b = _np(self.param("bias")).astype(np.float64)
        return (f"linearity-stddev={W.std():.4g} bias-mean={b.mean():.4g} bias-stddev={b.std():.4g} "
                f"learn-rate-coef={self.lr_coef:g} bias-learn-rate-coef={self.bias_lr_coef:g} max-norm={self.max_norm:g}")


def sigmoid(x):
    """``1 / (1 + exp(-x))`` as ``(1 + tanh(x/2)) / 2``: no overflow for large |x|, one
    transcendental, computed in one new array."""
    xp = get_array_module(x)
    y = xp.multiply(x, 0.5)
    xp.tanh(y, out=y)
    y *= 0.5
    y += 0.5
    return y


class Sigmoid(Component):
    marker = "<Sigmoid>"

    def forward(self, x):
        return sigmoid(x)

    def backward(self, x, y, dy):
        return sigmoid_backward(y, dy)  # dy * y * (1 - y), fused


class Tanh(Component):
    marker = "<Tanh>"

    def forward(self, x):
        xp = get_array_module(x)
        return xp.tanh(x)

    def backward(self, x, y, dy):
        return dy * (1.0 - y * y)


class Softmax(Component):
    marker = "<Softmax>"

    def forward(self, x):
        xp = get_array_module(x)
        y = x - x.max(axis=1, keepdims=True)
        xp.exp(y, out=y)
        y /= y.sum(axis=1, keepdims=True)
        return y

    def backward(self, x, y, dy):
        # Identity: used only with cross-entropy, whose dy is already d/d(softmax input) = y - t.
        return dy


class ParametricRelu(Component):
    marker = "<ParametricRelu>"

    def __init__(self, input_dim, output_dim, alpha_learn_rate_coef=0.0, beta_learn_rate_coef=0.0,
                 init_alpha=1.0, init_beta=0.0):
        super().__init__(input_dim, output_dim)
        self.alpha_lr_coef = float(alpha_learn_rate_coef)
        self.beta_lr_coef = float(beta_learn_rate_coef)
        self.init = {"alpha": np.full(output_dim, init_alpha, np.float32),
                     "beta": np.full(output_dim, init_beta, np.float32)}

    def param_specs(self):
        return [("alpha", (self.output_dim,)), ("beta", (self.output_dim,))]

    @property
    def updatable(self):
        return self.alpha_lr_coef != 0 or self.beta_lr_coef != 0

    def learn_rate_coef(self, name):
        return self.alpha_lr_coef if name == "alpha" else self.beta_lr_coef

    def forward(self, x):
        xp = get_array_module(x)
        return xp.where(x >= 0, x * self.param("alpha"), x * self.param("beta"))

    def backward(self, x, y, dy):
        xp = get_array_module(x)
        return dy * xp.where(x >= 0, self.param("alpha"), self.param("beta"))

    def param_gradients(self, x, y, dy):
        pos = x >= 0
        g = dy * x
        return {"alpha": (g * pos).sum(axis=0), "beta": (g * ~pos).sum(axis=0)}

    def read_data(self, r):
        _read_coef_tokens(r, {"<AlphaLearnRateCoef>": "alpha_lr_coef", "<BetaLearnRateCoef>": "beta_lr_coef"}, self)
        alpha, beta = r.read_vector(), r.read_vector()
        if alpha.shape != (self.output_dim,) or beta.shape != (self.output_dim,):
            raise r.fail(f"{self.marker} of dim {self.output_dim} holds vectors of {alpha.shape[0]} and {beta.shape[0]}")
        self.init = {"alpha": alpha, "beta": beta}

    def write_data(self, w):
        w.write_token("<AlphaLearnRateCoef>"); w.write_float(self.alpha_lr_coef)
        w.write_token("<BetaLearnRateCoef>"); w.write_float(self.beta_lr_coef)
        w.newline()
        w.write_vector(_np(self.param("alpha")))
        w.write_vector(_np(self.param("beta")))


class Splice(Component):
    marker = "<Splice>"

    def __init__(self, input_dim, output_dim, offsets=(0,)):
        super().__init__(input_dim, output_dim)
        self.offsets = np.asarray(offsets, dtype=np.int32)

    def forward(self, x):
        xp = get_array_module(x)
        T = x.shape[0]
        idx = xp.clip(xp.arange(T)[:, None] + xp.asarray(self.offsets)[None, :], 0, T - 1)
        return x[idx].reshape(T, -1)

    def backward(self, x, y, dy):
        xp = get_array_module(x)
        T, F = x.shape
        idx = xp.clip(xp.arange(T)[:, None] + xp.asarray(self.offsets)[None, :], 0, T - 1)
        dx = xp.zeros_like(x)
        xp.add.at(dx, idx.reshape(-1), dy.reshape(-1, F))
        return dx

    def read_data(self, r):
        self.offsets = r.read_int_vector()
        if len(self.offsets) * self.input_dim != self.output_dim:
            raise r.fail(f"{self.marker} {self.output_dim} {self.input_dim} with {len(self.offsets)} offsets")

    def write_data(self, w):
        w.write_int_vector(self.offsets)

    def topology(self):
        return super().topology() + (tuple(self.offsets.tolist()),)

    def info(self):
        return "offsets=" + ",".join(str(o) for o in self.offsets.tolist())


class _VectorOp(Component):
    """``<AddShift>`` and ``<Rescale>``: one vector parameter with a learning-rate coefficient."""

    pname = ""

    def __init__(self, input_dim, output_dim, learn_rate_coef=0.0, init_value=0.0):
        super().__init__(input_dim, output_dim)
        self.lr_coef = float(learn_rate_coef)
        self.init = {self.pname: np.full(output_dim, init_value, np.float32)}

    def param_specs(self):
        return [(self.pname, (self.output_dim,))]

    @property
    def updatable(self):
        return self.lr_coef != 0

    def learn_rate_coef(self, name):
        return self.lr_coef

    def read_data(self, r):
        _read_coef_tokens(r, {"<LearnRateCoef>": "lr_coef"}, self)
        v = r.read_vector()
        if v.shape != (self.output_dim,):
            raise r.fail(f"{self.marker} of dim {self.output_dim} holds a vector of {v.shape[0]}")
        self.init = {self.pname: v}

    def write_data(self, w):
        w.write_token("<LearnRateCoef>"); w.write_float(self.lr_coef)
        w.write_vector(_np(self.param(self.pname)))


class AddShift(_VectorOp):
    marker = "<AddShift>"
    pname = "shift"

    def forward(self, x):
        return x + self.param("shift")

    def backward(self, x, y, dy):
        return dy

    def param_gradients(self, x, y, dy):
        return {"shift": dy.sum(axis=0)}


class Rescale(_VectorOp):
    marker = "<Rescale>"
    pname = "scale"

    def __init__(self, input_dim, output_dim, learn_rate_coef=0.0, init_value=1.0):
        super().__init__(input_dim, output_dim, learn_rate_coef, init_value)

    def forward(self, x):
        return x * self.param("scale")

    def backward(self, x, y, dy):
        return dy * self.param("scale")

    def param_gradients(self, x, y, dy):
        return {"scale": (dy * x).sum(axis=0)}


class Rbm(Component):
    """nnet1's ``<Rbm>``: a restricted Boltzmann machine whose forward pass is the hidden
    activation, ``sigmoid(x W^T + b_h)`` for Bernoulli hidden units (``x W^T + b_h`` for
    Gaussian ones). File data: visible type, hidden type (``bern``/``gauss``), W (hidden x
    visible), visible bias, hidden bias. Training is CD-1 (:mod:`nnetavg.rbm`), not back-prop."""

    marker = "<Rbm>"
    TYPES = ("bern", "gauss")

    def __init__(self, input_dim, output_dim, visible_type="bern", hidden_type="bern"):
        super().__init__(input_dim, output_dim)
        self.visible_type, self.hidden_type = visible_type, hidden_type
        self.init = {"weight": np.zeros((output_dim, input_dim), np.float32),
                     "visible_bias": np.zeros(input_dim, np.float32), "hidden_bias": np.zeros(output_dim, np.float32)}

    def param_specs(self):
        return [("weight", (self.output_dim, self.input_dim)), ("visible_bias", (self.input_dim,)),
                ("hidden_bias", (self.output_dim,))]

    def forward(self, x):
        y = x @ self.param("weight").T
        y += self.param("hidden_bias")
        return sigmoid(y) if self.hidden_type == "bern" else y

    def backward(self, x, y, dy):
        d = dy * y * (1.0 - y) if self.hidden_type == "bern" else dy
        return d @ self.param("weight")

    def read_data(self, r):
        vis, hid = r.read_token().lower(), r.read_token().lower()
        if vis not in self.TYPES or hid not in self.TYPES:
            raise r.fail(f"{self.marker} unit types must be bern or gauss, found {vis} {hid}")
        self.visible_type, self.hidden_type = vis, hid
        w, bv, bh = r.read_matrix(), r.read_vector(), r.read_vector()
        if w.shape != (self.output_dim, self.input_dim) or bv.shape != (self.input_dim,) or bh.shape != (self.output_dim,):
            raise r.fail(f"{self.marker} {self.output_dim} {self.input_dim} holds W {w.shape}, biases "
                         f"{bv.shape[0]} and {bh.shape[0]}")
        self.init = {"weight": w, "visible_bias": bv, "hidden_bias": bh}

    def write_data(self, w):
        w.write_token(self.visible_type)
        w.write_token(self.hidden_type)
        w.write_matrix(_np(self.param("weight")))
        w.write_vector(_np(self.param("visible_bias")))
        w.write_vector(_np(self.param("hidden_bias")))

    def topology(self):
        return super().topology() + (self.visible_type, self.hidden_type)

    def info(self):
        return f"visible={self.visible_type} hidden={self.hidden_type}"


class LinearTransform(Component):
    """``<LinearTransform>``: ``y = x W^T`` without a bias (LDA/MLLT feature transforms). File
    data: optional ``<LearnRateCoef>``, then W (D_out x D_in)."""

    marker = "<LinearTransform>"

    def __init__(self, input_dim, output_dim, learn_rate_coef=1.0):
        super().__init__(input_dim, output_dim)
        self.lr_coef = float(learn_rate_coef)
        self.init = {"linearity": np.zeros((output_dim, input_dim), np.float32)}

    def param_specs(self):
        return [("linearity", (self.output_dim, self.input_dim))]

    @property
    def updatable(self):
        return self.lr_coef != 0

    def learn_rate_coef(self, name):
        return self.lr_coef

    def forward(self, x):
        return x @ self.param("linearity").T

    def backward(self, x, y, dy):
        return dy @ self.param("linearity")

    def param_gradients(self, x, y, dy):
        return {"linearity": dy.T @ x}

    def read_data(self, r):
        _read_coef_tokens(r, {"<LearnRateCoef>": "lr_coef"}, self)
        w = r.read_matrix()
        if w.shape != (self.output_dim, self.input_dim):
            raise r.fail(f"{self.marker} {self.output_dim} {self.input_dim} holds a {w.shape[0]}x{w.shape[1]} matrix")
        self.init = {"linearity": w}

    def write_data(self, w):
        w.write_token("<LearnRateCoef>"); w.write_float(self.lr_coef)
        w.newline()
        w.write_matrix(_np(self.param("linearity")))


class Copy(Component):
    """``<Copy>``: output column j is input column ``indices[j]`` (the file holds them 1-based,
    as Kaldi writes them)."""

    marker = "<Copy>"

    def __init__(self, input_dim, output_dim):
        super().__init__(input_dim, output_dim)
        self.indices = np.arange(output_dim, dtype=np.int32) % max(input_dim, 1)
        self._sel = None

    def forward(self, x):
        xp = get_array_module(x)
        return x[:, xp.asarray(self.indices)]

    def backward(self, x, y, dy):   # dx = dy S, S the (out x in) one-hot selection matrix
        xp = get_array_module(dy)
        if self._sel is None or get_array_module(self._sel) is not xp or self._sel.dtype != dy.dtype:
            sel = np.zeros((self.output_dim, self.input_dim), dtype=dy.dtype)
            sel[np.arange(self.output_dim), self.indices] = 1
            self._sel = xp.asarray(sel)
        return dy @ self._sel

    def read_data(self, r):
        v = r.read_int_vector().astype(np.int64) - 1
        if v.shape != (self.output_dim,) or (v.size and (v.min() < 0 or v.max() >= self.input_dim)):
            raise r.fail(f"{self.marker} {self.output_dim} {self.input_dim} needs {self.output_dim} indices in "
                         f"1..{self.input_dim}, found {v.size} in {v.min() + 1 if v.size else '-'}.."
                         f"{v.max() + 1 if v.size else '-'}")
        self.indices = v.astype(np.int32)

    def write_data(self, w):
        w.write_int_vector(self.indices + 1)

    def topology(self):
        return super().topology() + (tuple(self.indices.tolist()),)


class Dropout(Component):
    """``<Dropout>``: the identity when forwarding (nnet-forward, cross-validation); in training
    each unit is kept with probability ``1 - rate`` and scaled by ``1 / (1 - rate)``, as nnet1.
    File data: ``<DropoutRate> r`` (older Kaldi: ``<DropoutRetention> 1-r``)."""

    marker = "<Dropout>"

    def __init__(self, input_dim, output_dim, rate=0.5, seed=777):
        super().__init__(input_dim, output_dim)
        self.rate = float(rate)
        self._rng = np.random.default_rng(seed)
        self._mask = None

    def forward(self, x):
        return x

    def forward_train(self, x):
        if self.rate <= 0:
            self._mask = None
            return x
        xp = get_array_module(x)
        keep = 1.0 - self.rate
        self._mask = xp.asarray((self._rng.random(x.shape) < keep) / keep, dtype=x.dtype)
        return x * self._mask

    def backward(self, x, y, dy):
        return dy if self._mask is None else dy * self._mask

    def read_data(self, r):
        if not r.at_end() and r.peek_token().lower() in ("<dropoutrate>", "<dropoutretention>"):
            tok = r.read_token().lower()
            value = r.read_float()
            self.rate = value if tok == "<dropoutrate>" else 1.0 - value
        if not 0.0 <= self.rate < 1.0:
            raise r.fail(f"{self.marker} with dropout rate {self.rate} (must be in [0, 1))")

    def write_data(self, w):
        w.write_token("<DropoutRate>"); w.write_float(self.rate)

    def info(self):
        return f"dropout-rate={self.rate:g}"


class BlockSoftmax(Component):
    """``<BlockSoftmax>``: a softmax over each block of outputs (multitask nnet1 models). File data:
    the block dims (an int vector). Forwarded and written; its backward is the identity, as
    Softmax's (the multitask objective hands it the derivative)."""

    marker = "<BlockSoftmax>"

    def __init__(self, input_dim, output_dim):
        super().__init__(input_dim, output_dim)
        self.block_dims = np.array([output_dim], np.int32)

    def forward(self, x):
        y = x.copy()
        start = 0
        for d in self.block_dims.tolist():
            y[:, start:start + d] = Softmax.forward(self, x[:, start:start + d])
            start += d
        return y

    def backward(self, x, y, dy):
        return dy

    def read_data(self, r):
        dims = r.read_int_vector()
        if dims.size == 0 or dims.min() <= 0 or int(dims.sum()) != self.output_dim or self.input_dim != self.output_dim:
            raise r.fail(f"{self.marker} {self.output_dim} {self.input_dim} with block dims {dims.tolist()} "
                         f"(they must be positive and sum to {self.output_dim})")
        self.block_dims = dims.astype(np.int32)

    def write_data(self, w):
        w.write_int_vector(self.block_dims)

    def topology(self):
        return super().topology() + (tuple(self.block_dims.tolist()),)

    def info(self):
        return "blocks=" + ",".join(str(d) for d in self.block_dims.tolist())


class ParallelComponent(Component):
    """``<ParallelComponent>``: nested networks side by side; the input columns are split among
    them in order and their outputs concatenated. File data: ``<NestedNnetCount> N``, then N times
    ``<NestedNnet> i <Nnet> ... </Nnet>``, then ``</ParallelComponent>``. The nested networks keep
    their own parameters: the component forwards and back-propagates (its input derivative) and
    is written back unchanged, but training does not update it (learning-rate coefficient 0)."""

    marker = "<ParallelComponent>"

    def __init__(self, input_dim, output_dim):
        super().__init__(input_dim, output_dim)
        self.nested: list = []

    def forward(self, x):
        xp = get_array_module(x)
        outs, start = [], 0
        for net in self.nested:
            outs.append(net.to(xp).forward(x[:, start:start + net.input_dim]))
            start += net.input_dim
        return xp.concatenate(outs, axis=1)

    def backward(self, x, y, dy):
        xp = get_array_module(x)
        dxs, i0, o0 = [], 0, 0
        for net in self.nested:
            net = net.to(xp)
            acts = net.forward_train(x[:, i0:i0 + net.input_dim])
            dxs.append(net.backward(acts, dy[:, o0:o0 + net.output_dim], lambda *a: None,
                                    need_input_derivative=True))
            i0 += net.input_dim
            o0 += net.output_dim
        return xp.concatenate(dxs, axis=1)

    def read_data(self, r):
        from nnetavg.io.nnet1 import read_nested_nnet  # noqa: PLC0415  (nnet1 imports this module)
        if r.read_token() != "<NestedNnetCount>":
            raise r.fail(f"{self.marker}: expected <NestedNnetCount>")
        count = r.read_int()
        if count <= 0 or count > 10000:
            raise r.fail(f"{self.marker}: impossible <NestedNnetCount> {count}")
        self.nested = []
        for i in range(count):
            if r.read_token() != "<NestedNnet>":
                raise r.fail(f"{self.marker}: expected <NestedNnet> {i + 1}")
            r.read_int()
            self.nested.append(read_nested_nnet(r))
        if r.read_token() != "</ParallelComponent>":
            raise r.fail(f"{self.marker}: expected </ParallelComponent> after {count} nested networks")
        ins, outs = sum(n.input_dim for n in self.nested), sum(n.output_dim for n in self.nested)
        if (ins, outs) != (self.input_dim, self.output_dim):
            raise r.fail(f"{self.marker} {self.output_dim} {self.input_dim}: its nested networks take {ins} and "
                         f"give {outs}")

    def write_data(self, w):
        from nnetavg.io.nnet1 import write_nested_nnet  # noqa: PLC0415
        w.write_token("<NestedNnetCount>"); w.write_int(len(self.nested))
        w.newline()
        for i, net in enumerate(self.nested):
            w.write_token("<NestedNnet>"); w.write_int(i + 1)
            w.newline()
            write_nested_nnet(w, net)
        w.write_token("</ParallelComponent>")

    def topology(self):
        return super().topology() + tuple(tuple(c.topology() for c in n.components) for n in self.nested)

    def info(self):
        return "nested=" + ",".join(f"{n.input_dim}->{n.output_dim}" for n in self.nested)


COMPONENT_TYPES: dict[str, type[Component]] = {
    c.marker.lower(): c for c in (AffineTransform, Sigmoid, Tanh, Softmax, ParametricRelu, Splice, AddShift, Rescale,
                                  Rbm, LinearTransform, Copy, Dropout, BlockSoftmax, ParallelComponent)
}

# nnet1 markers we recognise but cannot run (named in the error, so users know it is not a typo).
KNOWN_UNSUPPORTED = ["<ConvolutionalComponent>", "<LstmProjected>", "<LstmProjectedStreams>",
                     "<BlstmProjected>", "<BlstmProjectedStreams>", "<RecurrentComponent>", "<HiddenSoftmax>",
                     "<LengthNormComponent>", "<KlHmm>",
                     "<AveragePoolingComponent>", "<MaxPoolingComponent>", "<SentenceAveragingComponent>",
                     "<SimpleSentenceAveragingComponent>", "<FramePoolingComponent>",
                     "<MultiBasisComponent>"]


def new_component(marker: str, input_dim: int, output_dim: int, where: str = "") -> Component:
    cls = COMPONENT_TYPES.get(marker.lower())
    if cls is None:
        known = marker.lower() in {m.lower() for m in KNOWN_UNSUPPORTED}
        kind = "an nnet1 component nnetavg cannot run yet" if known else "not an nnet1 component marker"
        raise FormatError(f"{where}{marker} is {kind} (supported: "
                          f"{' '.join(c.marker for c in COMPONENT_TYPES.values())})")
    return cls(input_dim, output_dim)


def _np(a) -> np.ndarray:
    from nnetavg.backend import to_numpy  # noqa: PLC0415
    return to_numpy(a)
