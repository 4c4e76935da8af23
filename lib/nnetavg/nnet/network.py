"""A feed-forward network of nnet1 components whose parameters live in one flat buffer.

Seam 1 of the design: every weight matrix and bias vector is a view into ``Network.params``, one
contiguous 1-D array (float32 by default). Averaging, MPI all-reduce, butterfly/ring mixing,
checkpoints and the parameter server all handle that one array, with no packing copies.
:meth:`Network.views` lays any buffer of the same size out the same way (gradients, momentum).

Seam 2: :meth:`Network.backward` hands the caller, per updatable component, the component's input
``x`` and output derivative ``dy`` (for an affine layer: the X and G of the NG-SGD papers) before
anything is multiplied, so plain SGD forms ``G^T X`` while natural gradient preconditions X and G
first.
"""

from __future__ import annotations

import types
from typing import Callable, Sequence

import numpy as np

from nnetavg.backend import get_array_module, to_device, to_numpy
from nnetavg.errors import TopologyError
from nnetavg.nnet.components import Component, Softmax


class Network:
    def __init__(self, components: Sequence[Component], xp: types.ModuleType = np, dtype=np.float32):
        self.components = list(components)
        for i in range(1, len(self.components)):
            a, b = self.components[i - 1], self.components[i]
            if a.output_dim != b.input_dim:
                raise TopologyError(f"component {i} {a.marker} outputs dim {a.output_dim} but component "
                                    f"{i + 1} {b.marker} takes dim {b.input_dim}")
        self.xp = xp
        self.dtype = np.dtype(dtype)
        self._layout: list[list[tuple[str, int, tuple[int, ...]]]] = []
        offset = 0
        for comp in self.components:
            entries = []
            for name, shape in comp.param_specs():
                entries.append((name, offset, shape))
                offset += int(np.prod(shape))
            self._layout.append(entries)
        self.num_params = offset
        host = np.zeros(offset, dtype=self.dtype)
        for comp, entries in zip(self.components, self._layout):
            for name, off, shape in entries:
                host[off:off + int(np.prod(shape))] = np.asarray(comp.param(name), dtype=self.dtype).reshape(-1)
        self.params = to_device(host, xp)
        for comp, views in zip(self.components, self.views(self.params)):
            comp.params = views
            comp.init = {}

    # ------------------------------------------------------------------ structure
    @property
    def input_dim(self) -> int:
        return self.components[0].input_dim if self.components else 0

    @property
    def output_dim(self) -> int:
        return self.components[-1].output_dim if self.components else 0

    def views(self, flat) -> list[dict[str, object]]:
        """Per component, a dict of views into ``flat`` (laid out like ``params``)."""
        if flat.shape != (self.num_params,):
            raise ValueError(f"buffer of shape {flat.shape} for {self.num_params} parameters")
        return [{name: flat[off:off + int(np.prod(shape))].reshape(shape) for name, off, shape in entries}
                for entries in self._layout]

    def param_ranges(self) -> list[tuple[int, int, int]]:
        """``(component index, start, end)`` of each component with parameters in the flat buffer."""
        out = []
        for i, entries in enumerate(self._layout):
            if entries:
                start = entries[0][1]
                end = entries[-1][1] + int(np.prod(entries[-1][2]))
                out.append((i, start, end))
        return out

    def topology(self) -> tuple:
        return tuple(c.topology() for c in self.components)

    def check_same_topology(self, other: "Network", what: str = "") -> None:
        if self.topology() != other.topology():
            mine, theirs = self.topology(), other.topology()
            for i, (a, b) in enumerate(zip(mine, theirs)):
                if a != b:
                    raise TopologyError(f"{what}component {i + 1} is {a[0]} {a[1]}->{a[2]} in one network and "
                                        f"{b[0]} {b[1]}->{b[2]} in the other")
            raise TopologyError(f"{what}networks have {len(mine)} and {len(theirs)} components")

    def ends_in_softmax(self) -> bool:
        return bool(self.components) and isinstance(self.components[-1], Softmax)

    def to(self, xp: types.ModuleType) -> "Network":
        """This network with its buffer on the device of ``xp`` (self when already there)."""
        if xp is self.xp:
            return self
        return Network(self._detached_components(), xp=xp, dtype=self.dtype)

    def copy(self) -> "Network":
        return Network(self._detached_components(), xp=self.xp, dtype=self.dtype)

    def _detached_components(self) -> list[Component]:
        import copy  # noqa: PLC0415
        out = []
        for comp in self.components:
            c = copy.copy(comp)
            c.init = {k: to_numpy(v).copy() for k, v in comp.params.items()}
            c.params = {}
            out.append(c)
        return out

    # ------------------------------------------------------------------ computation
    def forward(self, x):
        for comp in self.components:
            x = comp.forward(x)
        return x

    def forward_train(self, x) -> list:
        """All activations: ``acts[0] = x``, ``acts[i + 1]`` = output of component i."""
        acts = [x]
        for comp in self.components:
            acts.append(comp.forward_train(acts[-1]))
        return acts

    def backward(self, acts: list, dy, on_update: Callable[..., None], need_input_derivative: bool = False,
                 free_inputs: bool = False):
        """Back-propagates ``dy`` (derivative for the network output).

        For every updatable component ``on_update(index, component, x, y, dy)`` is called after
        that component's input derivative has been computed with the parameters as they were,
        as nnet1 does, so the callback may update the parameters in place, and may overwrite
        ``dy`` (nothing reads it afterwards) but not ``x`` (the next component down needs it).

        ``free_inputs``: the caller gives the activations up (nothing reads ``acts`` after this
        call). The callback then gets a sixth argument, ``x_free``: True when ``x`` may be
        overwritten too. That is so when the component below has no parameters and its output is
        not a view of its input: the update is then called after that component has
        back-propagated (its backward reads its output, our ``x``), which changes nothing else,
        since it has no parameters. The network's input (``acts[0]``) is never free.
        """
        xp = get_array_module(dy)
        pending = None     # (index, comp, x, y, dy) of an update waiting for the component below
        for i in range(len(self.components) - 1, -1, -1):
            comp = self.components[i]
            x, y = acts[i], acts[i + 1]
            dx = comp.backward(x, y, dy) if (i > 0 or need_input_derivative) else None
            if pending is not None:    # the component below has back-propagated: its output is free
                on_update(*pending, True)
                pending = None
            if comp.updatable:
                if not free_inputs:
                    on_update(i, comp, x, y, dy)
                elif i > 0 and not self.components[i - 1].updatable and not xp.may_share_memory(x, acts[i - 1]):
                    pending = (i, comp, x, y, dy)
                else:
                    on_update(i, comp, x, y, dy, False)
            dy = dx
        return dy

    # ------------------------------------------------------------------ summaries
    def info(self) -> str:
        lines = [f"num-components {len(self.components)}", f"input-dim {self.input_dim}",
                 f"output-dim {self.output_dim}", f"number-of-parameters {self.num_params}"]
        for i, c in enumerate(self.components, 1):
            extra = c.info()
            lines.append(f"component {i} : {c.marker}, input-dim {c.input_dim}, output-dim {c.output_dim}"
                         + (f", {extra}" if extra else ""))
        return "\n".join(lines)


def concat(networks: Sequence[Network]) -> Network:
    """One network running the given ones in sequence (``nnet-concat``)."""
    comps = []
    for n in networks:
        comps.extend(n._detached_components())
    xp = networks[0].xp if networks else np
    return Network(comps, xp=xp, dtype=networks[0].dtype if networks else np.float32)
