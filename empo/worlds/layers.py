"""Reachable states grouped by layer, as packed keys, and their expansion.

A world whose states carry a *layer* (a column that every transition increases, e.g.
the time step of MultiGrid and transport worlds, ``model.layer_column``) can be
enumerated one layer at a time: all predecessors of a layer lie in earlier layers, so
once those are expanded the layer is complete. :func:`enumerate_layers` keeps only
each layer's sorted state keys (8 bytes per state when the world gives
``state_bounds()``, :class:`~empo.worlds.hashing.KeyCodec`), never a transition.

:func:`expand` lists the (state, joint action) pairs that need to be computed: where
the model offers ``canonical_actions(states)`` (an action with the same effect for
every action, e.g. ``still`` for the no-ops of a gridworld), only distinct canonical
joint actions are expanded and every joint action points at its canonical pair.
:func:`outcomes` computes their successor keys with repeated successors merged. The
layered exact solver (:mod:`empo.exact.layered`) regenerates a layer's transitions
with the same two functions.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
from jaxtyping import Bool, Float, Int64
from torch import Tensor

from empo.utils.memory import rss_gib
from empo.worlds.budget import StateBudget, WorldSize, layered_bytes
from empo.worlds.hashing import KeyCodec
from empo.worlds.layer_repeats import Block, LayerRepeats, fresh_block, interleave
from empo.worlds.transition_cache import SENTINEL, TransitionCache

logger = logging.getLogger(__name__)

_NETWORK_WIDTH = 8
_MIX = 0x9E3779B97F4A7C15 - (1 << 64)
PAIRS_PER_BATCH = 1 << 20
"""(state, joint action) cells of the joint-action masks per enumeration batch."""


def is_layered(model: Any) -> bool:
    """Whether ``model`` is a world model with a layer column (and can be layered)."""
    return hasattr(model, "transitions") and hasattr(model, "layer_column")


def model_codec(model: Any, device: torch.device | str | None = None) -> KeyCodec:
    """The key codec of a world model (exact packing where it has state bounds)."""
    bounds = model.state_bounds() if hasattr(model, "state_bounds") else None
    return KeyCodec(bounds, model.state_dim, device=device)


def per_agent_actions(
    counts: list[int], device: torch.device | str | None = None
) -> Int64[Tensor, "joint agent"]:
    """Per-agent actions of every joint action (mixed radix, agent 0 first)."""
    num_joint = math.prod(counts)
    per_agent = torch.empty(num_joint, len(counts), dtype=torch.int64, device=device)
    rest = torch.arange(num_joint, device=device)
    for agent in reversed(range(len(counts))):
        per_agent[:, agent] = rest % counts[agent]
        rest = torch.div(rest, counts[agent], rounding_mode="floor")
    return per_agent


def _product(parts: list[Tensor]) -> Tensor:
    """``[n, prod(sizes)]`` outer AND of per-agent ``[n, size]`` masks (agent 0 first)."""
    out = parts[0]
    for part in parts[1:]:
        out = (out[:, :, None] & part[:, None, :]).flatten(1)
    return out


@dataclass
class Expansion:
    """The work a batch of states needs (see :func:`expand`).

    A *base* is a (state, canonical joint action) pair whose successors the model
    computes; a *variant* is a distinct joint effect: the successors of its base
    with every key shifted by ``variant_shift``.

    Attributes
    ----------
    terminal
        ``[n]`` terminal states.
    mask
        ``[n, agent, action]`` allowed actions (none at terminal states).
    base_state, base_actions
        Per base, its state (index into the batch) and per-agent actions.
    variant_state, variant_base, variant_shift
        Per variant, its state, its base and the shift of its successors' keys.
    slot
        ``[n, joint]``: the variant of each joint action, -1 where it is not
        allowed (only with ``slots=True``).
    """

    terminal: Bool[Tensor, " n"]
    mask: Bool[Tensor, "n agent action"]
    base_state: Int64[Tensor, " base"]
    base_actions: Int64[Tensor, "base agent"]
    variant_state: Int64[Tensor, " variant"]
    variant_base: Int64[Tensor, " variant"]
    variant_shift: Int64[Tensor, " variant"]
    slot: Int64[Tensor, "n joint"] | None = None


def _effects(
    model: Any, rows: Int64[Tensor, "n dim"], mask: Tensor, codec: KeyCodec
) -> tuple[Int64[Tensor, "n agent action"], Int64[Tensor, "n agent action"]]:
    """Canonical actions and key shifts of every action.

    ``model.action_effects(rows)`` gives ``(canonical, column, delta)``
    (``column`` broadcastable to the others' ``[n, agent, action]``): the
    successors of an action are those of its canonical action with ``delta`` added
    to ``column``. Without it every action is its own canonical action; with
    hashed keys (which do not shift) so is every shifted action.
    """
    every = torch.arange(mask.shape[2], device=rows.device).expand(mask.shape)
    if not hasattr(model, "action_effects"):
        return every, torch.zeros_like(every)
    canonical, column, delta = model.action_effects(rows)
    if not codec.exact:
        return torch.where(delta != 0, every, canonical), torch.zeros_like(every)
    return canonical, delta * codec.stride[column]


def expand(
    model: Any,
    rows: Int64[Tensor, "n dim"],
    per_agent: Int64[Tensor, "joint agent"],
    codec: KeyCodec,
    slots: bool = False,
) -> Expansion:
    """List the bases and variants of ``rows`` (see :class:`Expansion`).

    Per agent, actions with the same canonical action and shift are one effect;
    the variants are the products of the agents' effects, the bases the products
    of their canonical actions.

    Raises
    ------
    ValueError
        If a non-terminal state allows no joint action, or an allowed action's
        canonical action is not allowed.
    """
    counts = [len(names) for names in model.action_names]
    device = rows.device
    terminal = model.is_terminal(rows).to(torch.bool)
    if bool(terminal.all()):
        none = torch.zeros(0, dtype=torch.int64, device=device)
        shape = (len(rows), len(counts), max(counts))
        return Expansion(
            terminal=terminal,
            mask=torch.zeros(shape, dtype=torch.bool, device=device),
            base_state=none,
            base_actions=none.view(0, len(counts)),
            variant_state=none,
            variant_base=none,
            variant_shift=none,
            slot=none.new_full((len(rows), len(per_agent)), -1) if slots else None,
        )
    mask = model.action_mask(rows).to(torch.bool) & ~terminal[:, None, None]
    canonical, shift = _effects(model, rows, mask, codec)
    code = shift + canonical * _MIX
    same = (code[..., :, None] == code[..., None, :]) & mask[..., None, :]
    effect = same.to(torch.int8).argmax(dim=-1)
    differ = (canonical.gather(2, effect) != canonical) | (
        shift.gather(2, effect) != shift
    )
    if bool((differ & mask).any()):
        raise RuntimeError("two action effects share a code; report this world")
    is_base = torch.zeros(mask.shape, dtype=torch.int8, device=device)
    is_base = is_base.scatter_reduce_(2, canonical, mask.to(torch.int8), "amax") > 0
    if bool((mask & ~is_base.gather(2, canonical)).any()):
        raise ValueError("action_effects maps an allowed action to a disallowed one")
    every = torch.arange(mask.shape[2], device=device)
    is_variant = mask & (effect == every)
    stuck = ~terminal & ~mask.any(dim=2).all(dim=1)
    if bool(stuck.any()):
        raise ValueError(
            f"non-terminal state {rows[int(torch.nonzero(stuck)[0])].tolist()} "
            "allows no joint action"
        )
    base_rank = _ranks(is_base, counts)
    num_joint = per_agent.shape[0]
    bases = torch.nonzero(
        _product([is_base[:, a, :c] for a, c in enumerate(counts)]).flatten()
    ).flatten()
    base_state = torch.div(bases, num_joint, rounding_mode="floor")
    flat = torch.nonzero(
        _product([is_variant[:, a, :c] for a, c in enumerate(counts)]).flatten()
    ).flatten()
    variant_state = torch.div(flat, num_joint, rounding_mode="floor")
    # per (state, joint action): its base's rank within the state and its shift
    of_base = base_rank.place.gather(2, canonical)
    of_base = _sum_product([of_base[:, a, :c] for a, c in enumerate(counts)])
    joint_shift = _sum_product([shift[:, a, :c] for a, c in enumerate(counts)])
    result = Expansion(
        terminal=terminal,
        mask=mask,
        base_state=base_state,
        base_actions=per_agent.index_select(0, bases - base_state * num_joint),
        variant_state=variant_state,
        variant_base=base_rank.offset.index_select(0, variant_state)
        + of_base.flatten().index_select(0, flat),
        variant_shift=joint_shift.flatten().index_select(0, flat),
    )
    if slots:
        variant_rank = _ranks(is_variant, counts)
        place = variant_rank.place.gather(2, effect)
        slot = _sum_product([place[:, a, :c] for a, c in enumerate(counts)])
        slot += variant_rank.offset[:, None]
        if not bool(mask.all()):
            allowed = _product([mask[:, a, :c] for a, c in enumerate(counts)])
            slot.masked_fill_(~allowed, -1)
        result.slot = slot
    return result


@dataclass
class _Ranks:
    """Mixed-radix numbering of the products of per-agent action subsets.

    ``place[n, agent, a]`` is the rank of action ``a`` among the agent's chosen
    actions times the number of combinations of the later agents, so that the
    index of a chosen joint action is ``offset[n] + sum_agent place``; ``count[n]``
    is the number of chosen joint actions and ``offset`` their exclusive cumsum.
    """

    place: Int64[Tensor, "n agent action"]
    count: Int64[Tensor, " n"]
    offset: Int64[Tensor, " n"]


def _ranks(chosen: Bool[Tensor, "n agent action"], counts: list[int]) -> _Ranks:
    """:class:`_Ranks` of per-agent chosen actions (agent 0 most significant)."""
    rank = torch.cumsum(chosen, dim=2) - 1
    per_agent = chosen.sum(dim=2)
    later = torch.ones_like(per_agent)
    for agent in reversed(range(len(counts) - 1)):
        later[:, agent] = later[:, agent + 1] * per_agent[:, agent + 1]
    count = later[:, 0] * per_agent[:, 0]
    offset = torch.cumsum(count, dim=0) - count
    return _Ranks(rank * later[:, :, None], count, offset)


def _sum_product(parts: list[Tensor]) -> Tensor:
    """``[n, prod(sizes)]`` outer sum of per-agent ``[n, size]`` terms (agent 0
    first)."""
    out = parts[0]
    for part in parts[1:]:
        out = (out[:, :, None] + part[:, None, :]).flatten(1)
    return out


def base_successors(
    model: Any,
    rows: Int64[Tensor, "n dim"],
    expansion: Expansion,
    codec: KeyCodec,
    merge: bool = True,
) -> tuple[
    Int64[Tensor, "base k"], Float[Tensor, "base k"], Int64[Tensor, "base k dim"]
]:
    """Successor keys, probabilities and rows of the bases of ``expansion``.

    With ``merge``, repeated successors of a base are merged (probabilities
    summed) into its leading columns, in key order. Entries of probability 0 have
    key :data:`SENTINEL`; their rows are replaced by the first successor's (a valid
    row).
    """
    if len(expansion.base_state) == 0:
        empty = rows.new_zeros(0, 1)
        return empty, empty.to(torch.float64), rows.new_zeros(0, 1, rows.shape[1])
    successor_rows, probabilities = model.transitions(
        rows.index_select(0, expansion.base_state), expansion.base_actions
    )
    successor_rows = successor_rows.to(torch.int64)
    probabilities = probabilities.to(torch.float64)
    used = torch.nonzero((probabilities > 0).any(dim=0)).flatten()
    if 0 < len(used) < probabilities.shape[1]:
        successor_rows = successor_rows.index_select(1, used)
        probabilities = probabilities.index_select(1, used)
    keys = codec.keys(successor_rows)
    if not merge:
        keys = keys.masked_fill(probabilities <= 0, SENTINEL)
        return keys, probabilities, successor_rows
    keys, probabilities, source = merge_outcomes(keys, probabilities)
    width = max(int((probabilities > 0).sum(dim=1).max()), 1)
    keys, probabilities = keys[:, :width], probabilities[:, :width]
    source = torch.where(probabilities > 0, source[:, :width], source[:, :1])
    pairs = torch.arange(len(keys), device=keys.device)[:, None]
    return keys, probabilities, successor_rows[pairs, source]


def variant_successors(
    keys: Int64[Tensor, "base k"],
    probabilities: Float[Tensor, "base k"],
    expansion: Expansion,
) -> tuple[Int64[Tensor, "variant k"], Float[Tensor, "variant k"]]:
    """The variants' successor keys and probabilities from their bases' (keys
    shifted by ``variant_shift``; :data:`SENTINEL` where the probability is 0)."""
    keys = keys.index_select(0, expansion.variant_base)
    probabilities = probabilities.index_select(0, expansion.variant_base)
    shifted = keys + expansion.variant_shift[:, None]
    return torch.where(probabilities > 0, shifted, SENTINEL), probabilities


def successor_keys(
    model: Any,
    rows: Int64[Tensor, "n dim"],
    expansion: Expansion,
    codec: KeyCodec,
    merge: bool = True,
) -> tuple[
    Int64[Tensor, "variant k"], Float[Tensor, "variant k"], Int64[Tensor, "base k dim"]
]:
    """Successor keys and probabilities of the variants of ``expansion``.

    The world model computes the bases' successors (:func:`base_successors`, with
    ``merge`` as there) and each variant shifts its base's keys. Entries of
    probability 0 have key :data:`SENTINEL`. Also returns the rows of the bases'
    successors.
    """
    keys, probabilities, successor_rows = base_successors(
        model, rows, expansion, codec, merge
    )
    keys, probabilities = variant_successors(keys, probabilities, expansion)
    return keys, probabilities, successor_rows


def _sort_outcomes(
    keys: Int64[Tensor, "pair k"], probabilities: Float[Tensor, "pair k"]
) -> tuple[Int64[Tensor, "pair k"], Float[Tensor, "pair k"], Int64[Tensor, "pair k"]]:
    """Stable sort of each pair's outcomes by key; returns keys, probs and order.

    Few outcomes are sorted by an odd-even transposition network of elementwise
    compare-exchanges (stable: equal keys are never swapped), many by
    :func:`torch.sort`.
    """
    width = keys.shape[1]
    if width > _NETWORK_WIDTH:
        keys, order = torch.sort(keys, dim=1, stable=True)
        return keys, torch.gather(probabilities, 1, order), order
    columns = [
        [keys[:, j], probabilities[:, j], torch.full_like(keys[:, 0], j)]
        for j in range(width)
    ]
    for step in range(width):
        for left in range(step % 2, width - 1, 2):
            swap = columns[left][0] > columns[left + 1][0]
            for part in range(3):
                low, high = columns[left][part], columns[left + 1][part]
                columns[left][part] = torch.where(swap, high, low)
                columns[left + 1][part] = torch.where(swap, low, high)
    return tuple(
        torch.stack([column[part] for column in columns], dim=1) for part in range(3)
    )


def _merge_sorted(
    sorted_keys: Int64[Tensor, "pair k"],
    sorted_probs: Float[Tensor, "pair k"],
    order: Int64[Tensor, "pair k"],
) -> tuple[Int64[Tensor, "pair k"], Float[Tensor, "pair k"], Int64[Tensor, "pair k"]]:
    """Merge runs of equal keys of key-sorted outcomes into the leading columns."""
    merged_keys = torch.full_like(sorted_keys, SENTINEL)
    merged_probs = torch.zeros_like(sorted_probs)
    source = torch.zeros_like(order)
    merged_keys[:, 0], merged_probs[:, 0], source[:, 0] = (
        sorted_keys[:, 0],
        sorted_probs[:, 0],
        order[:, 0],
    )
    width = sorted_keys.shape[1]
    flat = torch.arange(len(sorted_keys), device=sorted_keys.device) * width
    for j in range(1, width):
        flat = flat + (sorted_keys[:, j] != sorted_keys[:, j - 1])
        merged_keys.view(-1)[flat] = sorted_keys[:, j]
        merged_probs.view(-1).index_put_((flat,), sorted_probs[:, j], accumulate=True)
        source.view(-1)[flat] = order[:, j]
    return merged_keys, merged_probs, source


def merge_outcomes(
    keys: Int64[Tensor, "pair k"], probabilities: Float[Tensor, "pair k"]
) -> tuple[Int64[Tensor, "pair k"], Float[Tensor, "pair k"], Int64[Tensor, "pair k"]]:
    """Merge repeated successors of each pair, sorted by key, live entries first.

    Returns the merged keys (``int64`` max where dead), summed probabilities (added
    in the original outcome order) and, per merged entry, the index (along ``k``) of
    one original entry carrying that key. Pairs with at most one positive outcome
    (deterministic transitions) skip the sort.
    """
    positive = probabilities > 0
    keys = torch.where(positive, keys, SENTINEL)
    if keys.shape[1] == 1:
        return keys, probabilities * positive, torch.zeros_like(keys)
    merged_keys = torch.full_like(keys, SENTINEL)
    merged_probs = torch.zeros_like(probabilities)
    source = torch.zeros_like(keys)
    for j in reversed(range(keys.shape[1])):
        merged_keys[:, 0] = torch.where(positive[:, j], keys[:, j], merged_keys[:, 0])
        merged_probs[:, 0] = torch.where(
            positive[:, j], probabilities[:, j], merged_probs[:, 0]
        )
        source[:, 0].masked_fill_(positive[:, j], j)
    several = torch.nonzero(positive.sum(dim=1) > 1).flatten()
    if several.numel() > 0:
        merged = _merge_sorted(
            *_sort_outcomes(
                keys.index_select(0, several), probabilities.index_select(0, several)
            )
        )
        for target, value in zip((merged_keys, merged_probs, source), merged):
            target.index_copy_(0, several, value)
    live = merged_probs > 0
    return torch.where(live, merged_keys, SENTINEL), merged_probs * live, source


@dataclass
class StateLayers:
    """The reachable states of a layered world, layer by layer.

    Attributes
    ----------
    codec
        How rows become keys.
    layer_column
        The state column holding the layer.
    values
        Layer value (e.g. the time step) of each layer, increasing.
    keys
        Per layer, the sorted keys of its states.
    rows_by_layer
        Per layer, its rows in key order, kept only for hashed keys.
    first_reader
        Per layer, the index of the earliest layer with a transition into it (its
        own index if none): its values can be freed once that layer is solved.
    initial_layer, initial_position
        Where the (first) initial state is.
    max_outcomes
        Most distinct successors of one (state, joint action) seen.
    transitions
        The bases' successors kept by the enumeration for the solver's backward
        pass (``None`` if not kept).
    seconds
        Wall-clock time of the enumeration.
    """

    codec: KeyCodec
    layer_column: int = 0
    values: list[int] = field(default_factory=list)
    keys: list[Tensor] = field(default_factory=list)
    rows_by_layer: list[Tensor] | None = None
    first_reader: list[int] = field(default_factory=list)
    initial_layer: int = 0
    initial_position: int = 0
    max_outcomes: int = 1
    transitions: TransitionCache | None = None
    seconds: float = 0.0
    _index_of_value: dict[int, int] = field(default_factory=dict, repr=False)

    @property
    def sizes(self) -> list[int]:
        """States per layer."""
        return [len(keys) for keys in self.keys]

    @property
    def num_states(self) -> int:
        """Number of states."""
        return sum(self.sizes)

    @property
    def offsets(self) -> list[int]:
        """Global id of each layer's first state (layers in order, keys sorted)."""
        out = [0]
        for size in self.sizes:
            out.append(out[-1] + size)
        return out

    def rows(self, layer: int) -> Int64[Tensor, "n dim"]:
        """Rows of a layer's states, in key order."""
        if self.rows_by_layer is not None:
            return self.rows_by_layer[layer]
        return self.codec.rows(self.keys[layer])

    def layer_index(self, value: int) -> int | None:
        """Index of the layer with layer value ``value`` (``None`` if none)."""
        if len(self._index_of_value) != len(self.values):
            self._index_of_value = {v: i for i, v in enumerate(self.values)}
        return self._index_of_value.get(value)

    def locate(
        self, layer: int, keys: Int64[Tensor, " n"], rows: Tensor | None = None
    ) -> Int64[Tensor, " n"]:
        """Positions of ``keys`` within layer ``layer``.

        With hashed keys, ``rows`` are compared with the stored rows (a hash
        collision raises instead of mixing two states).

        Raises
        ------
        KeyError
            Naming a state that is not in the layer.
        """
        known = self.keys[layer]
        position = searchsorted(known, keys).clamp_(max=max(len(known) - 1, 0))
        missing = (known.index_select(0, position) != keys) if len(known) else None
        if missing is None or bool(missing.any()):
            first = 0 if missing is None else int(torch.nonzero(missing)[0])
            row = (
                rows[first]
                if rows is not None
                else self.codec.rows(keys[first:][:1])[0]
            )
            raise KeyError(f"state {row.tolist()} is not among the enumerated states")
        if self.rows_by_layer is not None and rows is not None:
            stored = self.rows_by_layer[layer].index_select(0, position)
            if not torch.equal(stored, rows):
                raise RuntimeError("hash collision between two states")
        return position

    def layer_values(
        self, keys: Int64[Tensor, " n"], rows: Tensor | None = None
    ) -> Int64[Tensor, " n"]:
        """Layer value of each state (decoded from exact keys, else from ``rows``)."""
        codec, column = self.codec, self.layer_column
        if rows is not None:
            return rows[:, column]
        value = torch.div(keys, codec.stride[column], rounding_mode="floor")
        return value.remainder_(codec.radix[column]) + int(codec.low[column])

    def find(
        self,
        keys: Int64[Tensor, " n"],
        rows: Tensor | None,
        held: dict[int, int],
    ) -> Int64[Tensor, " n"]:
        """Position of each state in the concatenation of the layers ``held``.

        Parameters
        ----------
        keys
            State keys.
        rows
            Their rows (needed for hashed keys, else optional).
        held
            Layer index -> offset of its first state.

        Raises
        ------
        KeyError
            Naming a state that is in none of the held layers.
        """
        value = self.layer_values(keys, rows)
        ids = torch.empty_like(keys)
        if len(keys) == 0:
            return ids
        lowest, highest = (int(x) for x in torch.aminmax(value))
        targets = [lowest] if lowest == highest else value.unique().tolist()
        for layer_value in targets:
            if lowest == highest:
                chosen = torch.arange(len(keys), device=keys.device)
            else:
                chosen = torch.nonzero(value == layer_value).flatten()
            part = rows.index_select(0, chosen) if rows is not None else None
            index = self.layer_index(layer_value)
            if index not in held:
                row = (
                    part[0]
                    if part is not None
                    else self.codec.rows(keys[chosen[:1]])[0]
                )
                raise KeyError(f"state {row.tolist()} is not among the held layers")
            found = self.locate(index, keys.index_select(0, chosen), part)
            ids.index_copy_(0, chosen, found + held[index])
        return ids


def searchsorted(
    sorted_keys: Int64[Tensor, " m"], keys: Int64[Tensor, " n"]
) -> Int64[Tensor, " n"]:
    """Left insertion points of ``keys`` in ``sorted_keys`` (NumPy's on the CPU)."""
    if sorted_keys.device.type == "cpu":
        return torch.from_numpy(np.searchsorted(sorted_keys.numpy(), keys.numpy()))
    return torch.searchsorted(sorted_keys, keys)


def _distinct(
    keys: Int64[Tensor, " n"], rows: Tensor | None
) -> tuple[Tensor, Tensor | None]:
    """Sorted distinct keys (and one row each); equal keys must mean equal rows."""
    if rows is None:
        if keys.device.type != "cpu":
            return torch.unique(keys), None
        ordered = np.sort(keys.numpy())
        new = np.empty(len(ordered), dtype=bool)
        new[:1] = True
        np.not_equal(ordered[1:], ordered[:-1], out=new[1:])
        return torch.from_numpy(ordered[new]), None
    unique, inverse = torch.unique(keys, return_inverse=True)
    first = torch.full_like(unique, len(keys)).scatter_reduce_(
        0, inverse, torch.arange(len(keys), device=keys.device), "amin"
    )
    distinct_rows = rows.index_select(0, first)
    if not torch.equal(distinct_rows.index_select(0, inverse), rows):
        raise RuntimeError("hash collision between two states; change the encoding")
    return unique, distinct_rows


class _Pending:
    """Successor keys found for one later layer, compacted as they accumulate."""

    def __init__(self) -> None:
        self.keys: list[Tensor] = []
        self.rows: list[Tensor] = []
        self.size = 0
        self.compacted = 0

    def add(self, keys: Tensor, rows: Tensor | None) -> None:
        self.keys.append(keys)
        if rows is not None:
            self.rows.append(rows)
        self.size += len(keys)

    def compact(self) -> tuple[Tensor, Tensor | None]:
        keys, rows = _distinct(
            torch.cat(self.keys), torch.cat(self.rows) if self.rows else None
        )
        self.keys, self.rows = [keys], [rows] if rows is not None else []
        self.size = self.compacted = len(keys)
        return keys, rows


def world_size(model: Any, outcomes: int, item: int = 8) -> WorldSize:
    """The :class:`~empo.worlds.budget.WorldSize` of a world model."""
    counts = [len(names) for names in model.action_names]
    return WorldSize(
        joint=math.prod(counts),
        outcomes=outcomes,
        humans=len(model.humans),
        goals=int(model.goal_weights.shape[1]),
        human_actions=max(counts[h] for h in model.humans),
        robot_actions=math.prod(counts[r] for r in model.robots),
        state_dim=model.state_dim,
        item=item,
    )


def enumerate_layers(
    model: Any,
    *,
    budget: StateBudget | None = None,
    device: torch.device | str | None = None,
    chunk_bytes: int = 0,
    stored: int = 0,
    on_layer: Callable[[int, int, int, float], None] | None = None,
    cache: TransitionCache | None = None,
    reuse: bool = True,
) -> StateLayers:
    """Enumerate the reachable states of a layered world model, layer by layer.

    Parameters
    ----------
    model
        A world model with ``layer_column``: every successor of a non-terminal
        state lies in a later layer (checked).
    budget
        Checked as states are found: the states reachable so far and the memory
        of the layered solver for them (:func:`~empo.worlds.budget.layered_bytes`).
    device
        Where the keys live.
    chunk_bytes
        Working memory of one solver chunk (part of the memory estimate).
    stored
        Floats per state of the quantities the solver stores besides the values
        (part of the memory estimate).
    on_layer
        Called after each layer with ``(layer value, its states, states so far,
        seconds so far)``.
    cache
        Where to keep every base's successors for the layered solver's backward
        pass (:class:`~empo.worlds.transition_cache.TransitionCache`; exact keys
        only, ignored for hashed keys); the result's ``transitions``.
    reuse
        For models with ``layer_invariant = True`` (and exact keys), expand only
        the states whose configuration the previous layer lacks and reuse its
        successors for the others (:mod:`empo.worlds.layer_repeats`); the result
        is the same either way.

    Returns
    -------
    StateLayers
        Sorted keys per layer.

    Raises
    ------
    BudgetExceededError
        As soon as the budget is exceeded.
    ValueError
        If a successor lies in the same or an earlier layer, or outside the
        world's ``state_bounds()``.
    """
    started = time.perf_counter()
    device = torch.device(device) if device is not None else torch.device("cpu")
    budget = budget or StateBudget()
    codec = model_codec(model, device)
    counts = [len(names) for names in model.action_names]
    per_agent = per_agent_actions(counts, device)
    states_per_batch = max(1, PAIRS_PER_BATCH // per_agent.shape[0])
    column = model.layer_column
    initial = model.initial_states().to(device=device, dtype=torch.int64)
    if initial.ndim != 2 or len(initial) == 0:
        raise ValueError(
            "model.initial_states() must return a non-empty [n, state_dim] tensor, "
            f"got shape {tuple(initial.shape)}"
        )
    codec.check_rows(initial)
    layers = StateLayers(
        codec, layer_column=column, rows_by_layer=None if codec.exact else []
    )
    if codec.exact:
        layers.transitions = cache
    pending: dict[int, _Pending] = {}
    reader: dict[int, int] = {}
    for value in initial[:, column].unique().tolist():
        chosen = initial[initial[:, column] == value]
        pending.setdefault(value, _Pending()).add(
            codec.keys(chosen), None if codec.exact else chosen
        )
    total = 0
    largest = 0

    def check(states: int, layer_states: int, where: str) -> None:
        budget.check_states(states, where)
        size = world_size(model, layers.max_outcomes)
        needed = layered_bytes(
            size, states, max(largest, layer_states), codec.exact, chunk_bytes, stored
        )
        budget.check_memory(states, needed, where, "layered")

    def add(target: int, part: Tensor, part_rows: Tensor | None, index: int) -> None:
        """Add distinct successors found for layer ``target``."""
        entry = pending.setdefault(target, _Pending())
        entry.add(part, part_rows)
        reader.setdefault(target, index)
        if here is not None:
            here.found.setdefault(target, _Pending()).add(part, None)
        if entry.size > 2 * max(entry.compacted, states_per_batch):
            distinct, _ = entry.compact()
            check(total + len(distinct), len(distinct), f"layer {target}")

    def expand_batch(
        batch: Tensor, value: int, index: int
    ) -> tuple[Tensor, Tensor, Tensor] | None:
        """Expand states of layer ``value``; add their successors; return their
        bases' states and merged successors where kept."""
        expansion = expand(model, batch, per_agent, codec)
        if len(expansion.base_state) == 0:
            return None
        found, probabilities, base_rows = base_successors(
            model, batch, expansion, codec, merge=layers.transitions is not None
        )
        kept = (expansion.base_state, found, probabilities)
        positive = probabilities > 0
        if not bool(positive.any()):
            return kept
        layers.max_outcomes = max(layers.max_outcomes, int(positive.sum(dim=1).max()))
        codec.check_rows(base_rows)
        # the variants' live successors (every base has at least one variant)
        found = found.index_select(0, expansion.variant_base)
        found = found.add_(expansion.variant_shift[:, None])
        positive = positive.index_select(0, expansion.variant_base)
        found = found[positive]
        found_rows = successor_layer = None
        if codec.exact and column == 0:
            # the most significant column: the keys' order is the layers' order
            ends = layers.layer_values(torch.stack(torch.aminmax(found)))
            lowest, highest = ends.tolist()
            if lowest != highest:
                successor_layer = layers.layer_values(found)
        else:
            if codec.exact:
                successor_layer = layers.layer_values(found)
            else:
                found_rows = base_rows.index_select(0, expansion.variant_base)
                found_rows = found_rows[positive]
                successor_layer = found_rows[:, column]
            lowest, highest = (int(x) for x in torch.aminmax(successor_layer))
        if lowest <= value:
            raise ValueError(
                f"a transition from layer {value} leads to layer {lowest}: "
                f"layer column {column} must grow with every step"
            )
        targets = [lowest] if lowest == highest else successor_layer.unique()
        for target in [int(t) for t in targets]:
            if lowest == highest:
                part, part_rows = _distinct(found, found_rows)
            else:
                chosen = successor_layer == target
                part_rows = None if found_rows is None else found_rows[chosen]
                part, part_rows = _distinct(found[chosen], part_rows)
            add(target, part, part_rows, index)
        return kept

    invariant = reuse and codec.exact and bool(getattr(model, "layer_invariant", False))
    previous: LayerRepeats | None = None
    here: LayerRepeats | None = None
    # inference tensors skip autograd bookkeeping (a tenth of the time); the kept
    # keys and rows are cloned into ordinary tensors afterwards
    with torch.inference_mode():
        while pending:
            value = min(pending)
            keys, rows = pending.pop(value).compact()
            index = len(layers.keys)
            layers.values.append(value)
            layers.keys.append(keys)
            layers.first_reader.append(reader.pop(value, index))
            if rows is None:
                rows = codec.rows(keys)
            else:
                layers.rows_by_layer.append(rows)
            total += len(keys)
            largest = max(largest, len(keys))
            check(total, len(keys), f"layer {value}")
            here = None
            if invariant and not bool(model.is_terminal(rows).any()):
                here = LayerRepeats(codec, column, value, keys)
            hit = None
            if here is not None and previous is not None:
                hit = previous.match(keys, value)
            size = states_per_batch
            if hit is not None:
                for target, part in previous.successors(value).items():
                    add(target, part, None, index)
                fresh = len(keys) - len(previous.configurations)
                size *= max(1, min(8, len(keys) // max(fresh, 1)))
            repeated = 0
            for low in range(0, len(keys), size):
                batch = rows[low : low + size]
                chosen = None if hit is None else hit[low : low + size]
                if chosen is not None:
                    batch = batch[~chosen]
                kept = expand_batch(batch, value, index) if len(batch) else None
                if layers.transitions is None:
                    continue
                if kept is None:
                    block = Block.empty(len(batch), rows.device)
                else:
                    block = fresh_block(len(batch), *kept)
                if chosen is not None:
                    last = repeated + int(chosen.sum())
                    old = previous.block(
                        layers.transitions, index - 1, repeated, last, value
                    )
                    block, repeated = interleave(chosen, old, block), last
                layers.transitions.append_flat(
                    index, block.counts, block.keys, block.probabilities
                )
                if here is not None:
                    here.record(block)
            if here is not None:
                here.found = {t: entry.compact()[0] for t, entry in here.found.items()}
                here.close()
            previous = here
            seconds = time.perf_counter() - started
            if on_layer is not None:
                on_layer(value, len(keys), total, seconds)
            if logger.isEnabledFor(logging.INFO):
                logger.info(
                    "enumerated layer %d: %d states, %d in all, %.1f s, RSS %.2f GiB",
                    value,
                    len(keys),
                    total,
                    seconds,
                    rss_gib(),
                )
    layers.keys = [keys.clone() for keys in layers.keys]
    if layers.rows_by_layer is not None:
        layers.rows_by_layer = [rows.clone() for rows in layers.rows_by_layer]
    first = codec.keys(initial[:1])
    layer = layers.values.index(int(initial[0, column]))
    layers.initial_layer = layer
    layers.initial_position = int(layers.locate(layer, first, initial[:1])[0])
    layers.seconds = time.perf_counter() - started
    return layers


def enumerate_kept(
    model: Any, scratch: str | Path | None = None, **options: Any
) -> StateLayers:
    """:func:`enumerate_layers` (with ``options``) keeping the transitions in a
    temporary :class:`~empo.worlds.transition_cache.TransitionCache` under
    ``scratch`` (``None``: the system's temporary directory), the result's
    ``transitions`` (``None`` for hashed keys); its files are deleted if the
    enumeration fails."""
    cache = TransitionCache(scratch=scratch)
    try:
        layers = enumerate_layers(model, cache=cache, **options)
    except BaseException:
        cache.close()
        raise
    if layers.transitions is None:
        cache.close()
    return layers
