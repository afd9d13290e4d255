"""Reuse of the previous layer's successors for states that repeat its configurations.

In many layered worlds the layer column is a clock that the dynamics only count:
a world model with ``layer_invariant = True`` declares that two non-terminal states
differing only in the layer column, by ``d``, have the same allowed actions, action
effects and successors (same order, same probabilities) except that every
successor's layer column differs by ``d`` too. In MultiGrid worlds, where every
agent may stay still, most states of a layer repeat a *configuration* (the state
without its time step) of the previous layer: key_door's 82,658 states have only
15,920 configurations.

:class:`LayerRepeats` keeps what the enumeration
(:func:`~empo.worlds.layers.enumerate_layers`) needs of one layer to reuse it for the
next: its configurations, the distinct successors it found per target layer and,
where transitions are kept on disk
(:class:`~empo.worlds.transition_cache.TransitionCache`), where each state's bases
lie in the files. When every configuration of the previous layer recurs in the
current one (and no state of either is terminal), the current layer's recurring
states contribute exactly the previous layer's successors shifted by one layer
difference, and their bases' kept transitions are copies of the previous layer's,
shifted alike: only the new configurations are expanded and sent to the world model.
A layer that does not qualify is expanded in full. Memory: a few tens of bytes per
state of the two largest adjacent layers (configurations, offsets into the files,
distinct successors).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from jaxtyping import Bool, Float, Int64
from torch import Tensor

from empo.worlds.hashing import KeyCodec
from empo.worlds.transition_cache import TransitionCache


def _exclusive(counts: Int64[Tensor, " n"]) -> Int64[Tensor, " n"]:
    """Exclusive cumulative sum."""
    return torch.cumsum(counts, 0) - counts


def _ranges(
    start: Int64[Tensor, " n"], length: Int64[Tensor, " n"]
) -> Int64[Tensor, " total"]:
    """Concatenation of ``arange(start[i], start[i] + length[i])`` over ``i``."""
    total = int(length.sum())
    shift = torch.repeat_interleave(
        start - _exclusive(length), length, output_size=total
    )
    return shift + torch.arange(total, device=start.device)


@dataclass
class Block:
    """Kept transitions of consecutive states (as the cache stores them).

    Attributes
    ----------
    state_bases
        ``[n]`` bases of each state.
    counts
        ``[base]`` live successors of each base.
    keys, probabilities
        ``[entry]`` the live successors, base by base.
    """

    state_bases: Int64[Tensor, " n"]
    counts: Int64[Tensor, " base"]
    keys: Int64[Tensor, " entry"]
    probabilities: Float[Tensor, " entry"]

    @classmethod
    def empty(cls, states: int, device: torch.device) -> "Block":
        """The block of ``states`` states without bases."""
        none = torch.zeros(0, dtype=torch.int64, device=device)
        return cls(
            torch.zeros(states, dtype=torch.int64, device=device),
            none,
            none,
            none.to(torch.float64),
        )

    @property
    def state_entries(self) -> Int64[Tensor, " n"]:
        """``[n]`` live successors of each state's bases together."""
        state = torch.repeat_interleave(
            torch.arange(len(self.state_bases), device=self.counts.device),
            self.state_bases,
            output_size=len(self.counts),
        )
        out = torch.zeros_like(self.state_bases)
        return out.index_add_(0, state, self.counts)


def fresh_block(
    states: int,
    base_state: Int64[Tensor, " base"],
    keys: Int64[Tensor, "base k"],
    probabilities: Float[Tensor, "base k"],
) -> Block:
    """The :class:`Block` of ``states`` states from their bases' merged successors
    (live entries first, as :func:`~empo.worlds.layers.base_successors` returns)."""
    live = probabilities > 0
    return Block(
        torch.bincount(base_state, minlength=states),
        live.sum(dim=1),
        keys[live],
        probabilities[live],
    )


def interleave(hit: Bool[Tensor, " n"], repeated: Block, fresh: Block) -> Block:
    """One block of ``n`` states from the blocks of the states where ``hit`` (in
    order) and of the others."""
    n = len(hit)
    state_bases = torch.empty(n, dtype=torch.int64, device=hit.device)
    state_bases[hit] = repeated.state_bases
    state_bases[~hit] = fresh.state_bases
    start = torch.empty_like(state_bases)
    start[hit] = _exclusive(repeated.state_bases)
    start[~hit] = _exclusive(fresh.state_bases) + len(repeated.counts)
    base = _ranges(start, state_bases)
    counts = torch.cat([repeated.counts, fresh.counts])
    entry = _ranges(
        _exclusive(counts).index_select(0, base), counts.index_select(0, base)
    )
    return Block(
        state_bases,
        counts.index_select(0, base),
        torch.cat([repeated.keys, fresh.keys]).index_select(0, entry),
        torch.cat([repeated.probabilities, fresh.probabilities]).index_select(0, entry),
    )


class LayerRepeats:
    """One layer's configurations and successors, for the next layer (see the
    module docstring).

    Parameters
    ----------
    codec
        The exact key codec.
    column
        The layer column.
    value
        The layer's value.
    keys
        The layer's sorted keys.
    """

    def __init__(self, codec: KeyCodec, column: int, value: int, keys: Tensor) -> None:
        self.codec, self.column, self.value = codec, column, value
        self.configurations = keys - self.offset(value)
        self.found: dict[int, Tensor] = {}
        self.state_bases: list[Tensor] = []
        self.state_entries: list[Tensor] = []
        self.base_offsets: Tensor | None = None
        self.entry_offsets: Tensor | None = None

    def offset(self, value: int) -> int:
        """The part of a key of layer ``value`` that holds the layer column."""
        column = self.column
        return (value - int(self.codec.low[column])) * int(self.codec.stride[column])

    def record(self, block: Block) -> None:
        """Note where the next states' bases lie in the layer's files."""
        self.state_bases.append(block.state_bases)
        self.state_entries.append(block.state_entries)

    def close(self) -> None:
        """Turn the recorded blocks into per-state offsets."""
        for name, parts in (
            ("base_offsets", self.state_bases),
            ("entry_offsets", self.state_entries),
        ):
            counts = torch.cat(parts) if parts else self.configurations.new_zeros(0)
            offsets = counts.new_zeros(len(counts) + 1)
            torch.cumsum(counts, 0, out=offsets[1:])
            setattr(self, name, offsets)
        self.state_bases, self.state_entries = [], []

    def match(self, keys: Tensor, value: int) -> Bool[Tensor, " n"] | None:
        """Which of layer ``value``'s sorted ``keys`` repeat a configuration of this
        layer, or ``None`` unless every configuration of this layer recurs there
        and every shifted successor stays within the layer column's bounds."""
        configurations = keys - self.offset(value)
        known = self.configurations
        if len(known) == 0 or len(known) > len(keys):
            return None
        position = torch.searchsorted(configurations, known)
        position.clamp_(max=len(keys) - 1)
        if not torch.equal(configurations.index_select(0, position), known):
            return None
        highest = max(self.found, default=value) + value - self.value
        if highest > int(self.codec.high[self.column]):
            return None
        hit = torch.zeros(len(keys), dtype=torch.bool, device=keys.device)
        hit[position] = True
        return hit

    def successors(self, value: int) -> dict[int, Tensor]:
        """This layer's distinct successors per target layer, shifted to layer
        ``value``."""
        shift = value - self.value
        delta = shift * int(self.codec.stride[self.column])
        return {target + shift: keys + delta for target, keys in self.found.items()}

    def block(
        self, cache: TransitionCache, layer: int, first: int, last: int, value: int
    ) -> Block:
        """The kept transitions of this layer's states ``first:last`` (index
        ``layer`` in the cache), shifted to layer ``value``."""
        bases, entries = self.base_offsets, self.entry_offsets
        device = self.configurations.device
        counts, keys, probabilities = cache.segment(
            layer,
            (int(bases[first]), int(bases[last])),
            (int(entries[first]), int(entries[last])),
            device,
        )
        delta = (value - self.value) * int(self.codec.stride[self.column])
        return Block(
            (bases[first + 1 : last + 1] - bases[first:last]).to(device),
            counts,
            keys + delta,
            probabilities,
        )
