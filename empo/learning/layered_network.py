"""One sub-network per layer (:mod:`empo.learning.layered`): the networks of
fitted backward induction, evaluated by layer, with functional parameters."""

from __future__ import annotations

from typing import Any, Callable

import torch
from jaxtyping import Int64
from tensordict import TensorDictBase
from tensordict.nn import TensorDictModule, TensorDictModuleBase, TensorDictSequential
from torch import Tensor, nn

__all__ = ["LayeredNetwork"]


class LayeredNetwork(TensorDictModuleBase):
    """One sub-network per layer; each state is answered by its layer's.

    Parameters
    ----------
    layers
        The sub-networks (TensorDict modules with one output key, the same for
        all), one per layer.
    layer_of
        ``states -> [B]`` layer of each state (:meth:`WorldData.layer`).
    """

    def __init__(
        self,
        layers: list[TensorDictModuleBase],
        layer_of: Callable[[TensorDictBase], Int64[Tensor, " batch"]],
    ):
        super().__init__()
        self.layers = nn.ModuleList(layers)
        self.layer_of = layer_of
        self.in_keys = list(layers[0].in_keys)
        self.out_keys = list(layers[0].out_keys)

    def forward(self, tensordict: TensorDictBase) -> TensorDictBase:
        """Write each state's output from its layer's sub-network."""
        key = self.out_keys[0]
        tensordict.set(key, self.evaluate(None, tensordict))
        return tensordict

    def evaluate(self, params: TensorDictBase | None, states: TensorDictBase) -> Tensor:
        """The output at ``states`` with functional ``params`` (the module's own
        when ``None``), binding only the parameters of the layers present."""
        key = self.out_keys[0]
        shape = states.batch_size
        flat = states.reshape(-1)
        layer = self.layer_of(flat)
        flat = flat.select(*self.in_keys)
        present = torch.unique(layer).tolist()
        out: Tensor | None = None
        for index in present:
            part_states = flat
            rows = None
            if len(present) > 1:
                rows = torch.nonzero(layer == index).squeeze(-1)
                part_states = flat[rows]
            net = self.layers[index]
            if params is None:
                part = _call(net, part_states)[key]
            else:
                with params.get(("layers", str(index))).to_module(net):
                    part = _call(net, part_states)[key]
            if rows is None:
                out = part
                break
            if out is None:
                out = part.new_zeros(flat.shape[0], *part.shape[1:])
            out = out.index_put((rows,), part)
        assert out is not None
        return out.reshape(*shape, *out.shape[1:])


def _call(net: nn.Module, states: TensorDictBase) -> dict[Any, Tensor]:
    """The outputs of a :class:`~tensordict.nn.TensorDictModule` (or a
    :class:`~tensordict.nn.TensorDictSequential` of them) on ``states``, by
    calling the wrapped modules on the key's tensors directly: the same function,
    without building intermediate TensorDicts (most of a small network's time)."""
    values: dict[Any, Tensor] = {key: states.get(key) for key in states.keys()}
    return _run(net, values)


def _run(net: nn.Module, values: dict[Any, Tensor]) -> dict[Any, Tensor]:
    if isinstance(net, TensorDictSequential):
        for part in net.module:
            values = _run(part, values)
        return values
    if isinstance(net, TensorDictModule):
        out = net.module(*[values[key] for key in net.in_keys])
        outs = out if isinstance(out, tuple) else (out,)
        values.update(zip(net.out_keys, outs))
        return values
    raise TypeError(f"cannot call {type(net).__name__} on tensors directly")
