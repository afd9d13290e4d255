"""Generic batched compiler: any :class:`~empo.worlds.base.WorldModel` to tabular form.

:func:`compile_world` enumerates the states reachable from the model's initial states
by breadth-first search, one *wave* (all states first seen in the previous wave) at a
time, with every state of a batch and every joint action handled at once:

* states are integer rows; each row is hashed to one 64-bit key (splitmix64 over the
  salted columns, see :func:`hash_rows`). Known states are a sorted key array searched
  by binary search; each wave's new keys are merged into it with one
  ``searchsorted`` (no re-sort), so there is no Python dictionary per state. Every
  time two rows share a key their rows are compared, and a hash collision raises an
  error instead of silently merging two states;
* all joint actions (mixed radix over all agents, agent 0 most significant, as in
  :mod:`empo.worlds.compiled`) of a batch are expanded together and only the allowed
  ones of non-terminal states are passed to ``model.transitions``;
* repeated successors of one joint action are merged (probabilities summed), which
  keeps the successor axis ``K`` small;
* each successor is resolved to its state id as soon as it is seen (known states at
  once, states new in this wave when the wave ends), so no key is looked up twice.

The result has ``state_table`` filled (row ``i`` encodes state ``i``), the initial
state(s) first, then each wave's new states in key order. It does not depend on
``batch_size``.
"""

from __future__ import annotations

import logging
import math
import time

import torch
from jaxtyping import Float, Int64
from torch import Tensor

from empo.worlds.base import WorldModel
from empo.worlds.budget import StateBudget, in_memory_bytes_per_state
from empo.worlds.compiled import CompiledWorld, height_from_edges
from empo.worlds.hashing import hash_rows
from empo.worlds.layers import (
    StateLayers,
    expand,
    merge_outcomes,
    per_agent_actions,
    searchsorted,
    successor_keys,
    variant_successors,
    world_size,
)

logger = logging.getLogger(__name__)

_CHUNKS = ("pair", "ids", "probs", "edge_src", "edge_dst", "mask", "goal", "term")


def _check_same_rows(
    rows: Int64[Tensor, "n dim"], reference: Int64[Tensor, "n dim"]
) -> None:
    """Raise if rows with equal keys differ (a hash collision)."""
    if torch.equal(rows, reference):
        return
    differ = (rows != reference).any(dim=1)
    if bool(differ.any()):
        first = int(torch.nonzero(differ)[0])
        raise RuntimeError(
            f"hash collision between states {rows[first].tolist()} and "
            f"{reference[first].tolist()}; change the state encoding"
        )


def _dedupe(
    keys: Int64[Tensor, " n"], rows: Int64[Tensor, "n dim"]
) -> tuple[Int64[Tensor, " m"], Int64[Tensor, "m dim"], Int64[Tensor, " n"]]:
    """Distinct keys (sorted), one row each, and each input's index among them.

    Equal keys must mean equal rows (else a hash collision is raised).
    """
    unique_keys, inverse = torch.unique(keys, return_inverse=True)
    representative = torch.empty_like(unique_keys).scatter_(
        0, inverse, torch.arange(len(keys), device=keys.device)
    )
    unique_rows = rows.index_select(0, representative)
    _check_same_rows(rows, unique_rows.index_select(0, inverse))
    return unique_keys, unique_rows, inverse


def _dedupe_with_edges(
    keys: Int64[Tensor, " n"], rows: Int64[Tensor, "n dim"], states: Int64[Tensor, " n"]
) -> tuple[
    Int64[Tensor, " m"],
    Int64[Tensor, "m dim"],
    Int64[Tensor, " n"],
    Int64[Tensor, " edge"],
    Int64[Tensor, " edge"],
]:
    """:func:`_dedupe` of successor entries that also lists the distinct edges.

    ``states[i]`` is the source state of entry ``i``. One stable sort by key puts
    each key's entries in entry order, so equal (state, key) edges are adjacent.
    Returns the distinct keys (sorted), one row each, each entry's index among
    them, and per distinct edge its source state and the index of its key.
    """
    sorted_keys, order = torch.sort(keys, stable=True)
    new_key = torch.ones_like(sorted_keys, dtype=torch.bool)
    new_key[1:] = sorted_keys[1:] != sorted_keys[:-1]
    group = torch.cumsum(new_key, dim=0) - 1
    inverse = torch.empty_like(group).scatter_(0, order, group)
    first = torch.nonzero(new_key).flatten()
    unique_rows = rows.index_select(0, order.index_select(0, first))
    _check_same_rows(rows, unique_rows.index_select(0, inverse))
    sorted_states = states.index_select(0, order)
    new_edge = new_key.clone()
    new_edge[1:] |= sorted_states[1:] != sorted_states[:-1]
    edge = torch.nonzero(new_edge).flatten()
    return (
        sorted_keys.index_select(0, first),
        unique_rows,
        inverse,
        sorted_states.index_select(0, edge),
        group.index_select(0, edge),
    )


class _Enumeration:
    """Breadth-first enumeration state: state table, sorted keys and stored batches.

    ``table[:count]`` holds the rows of the known states (capacity grows
    geometrically); ``known_keys`` is sorted and ``key_order[i]`` is the id of the
    state with key ``known_keys[i]``. Successor ids of states first seen in the
    current wave are stored as ``-1 - c`` (``c`` the index among the wave's
    candidates) until the wave ends.
    """

    def __init__(
        self,
        model: WorldModel,
        per_agent: Int64[Tensor, "joint agent"],
        initial: Int64[Tensor, "n dim"],
        budget: StateBudget,
        item: int,
    ) -> None:
        self.model = model
        self.per_agent = per_agent
        self.counts = [len(names) for names in model.action_names]
        self.budget = budget
        self.item = item
        self.width = 1
        keys, rows, _ = _dedupe(hash_rows(initial), initial)
        self.table = rows.clone()
        self.count = len(rows)
        self.known_keys = keys
        self.key_order = torch.arange(len(keys), device=initial.device)
        self.chunks: dict[str, list[Tensor]] = {name: [] for name in _CHUNKS}
        self.waves = 0
        self._candidate_keys: list[Tensor] = []
        self._candidate_rows: list[Tensor] = []
        self._pending = 0
        self._duplicates = 0
        self._wave_ids: list[Tensor] = []

    def expand(self, start: int, stop: int) -> None:
        """Expand the known states ``start:stop``; store their transitions."""
        model, per_agent = self.model, self.per_agent
        rows = self.table[start:stop]
        terminal = model.is_terminal(rows).to(torch.bool)
        mask = model.action_mask(rows).to(torch.bool) & ~terminal[:, None, None]
        allowed = mask[:, 0, : self.counts[0]]
        for agent, count in enumerate(self.counts[1:], start=1):
            allowed = allowed[:, :, None] & mask[:, agent, None, :count]
            allowed = allowed.flatten(start_dim=1)
        stuck = ~terminal & ~allowed.any(dim=1)
        if bool(stuck.any()):
            raise ValueError(
                f"non-terminal state {rows[int(torch.nonzero(stuck)[0])].tolist()} "
                "allows no joint action"
            )
        self.chunks["term"].append(terminal)
        self.chunks["mask"].append(mask)
        self.chunks["goal"].append(model.goal_membership(rows).to(torch.bool))
        pair = torch.nonzero(allowed.flatten()).flatten()
        if pair.numel() == 0:
            return
        num_joint = per_agent.shape[0]
        state_index = torch.div(pair, num_joint, rounding_mode="floor")
        successor_rows, probabilities = model.transitions(
            rows.index_select(0, state_index),
            per_agent.index_select(0, pair - state_index * num_joint),
        )
        successor_rows = successor_rows.to(torch.int64)
        probabilities = probabilities.to(torch.float64)
        keys, merged_probs, source = merge_outcomes(
            self._hash_outcomes(successor_rows, probabilities), probabilities
        )
        live = merged_probs > 0
        width = max(int(live.sum(dim=1).max()), 1)
        self.width = max(self.width, width)
        keys, merged_probs = keys[:, :width], merged_probs[:, :width]
        flat = torch.nonzero(live[:, :width].flatten()).flatten()
        pair_index = torch.div(flat, width, rounding_mode="floor")
        flat_rows = successor_rows.view(-1, successor_rows.shape[-1]).index_select(
            0,
            pair_index * successor_rows.shape[1]
            + source[:, :width].flatten().index_select(0, flat),
        )
        entry_state = state_index.index_select(0, pair_index)
        unique_keys, unique_rows, inverse, edge_state, edge_group = _dedupe_with_edges(
            keys.flatten().index_select(0, flat), flat_rows, entry_state
        )
        reference = self._resolve(unique_keys, unique_rows)
        edge_target = reference.index_select(0, edge_group)
        self.chunks["edge_src"].append(edge_state + start)
        self.chunks["edge_dst"].append(edge_target)
        self._wave_ids.append(edge_target)
        source_state = (state_index + start)[:, None].expand(-1, width)
        ids = source_state.flatten().scatter(
            0, flat, reference.index_select(0, inverse)
        )
        ids = ids.view(-1, width)
        self.chunks["pair"].append(pair + start * num_joint)
        self.chunks["ids"].append(ids)
        self.chunks["probs"].append(merged_probs)
        self._wave_ids.append(ids)

    @staticmethod
    def _hash_outcomes(
        successor_rows: Int64[Tensor, "pair k dim"],
        probabilities: Float[Tensor, "pair k"],
    ) -> Int64[Tensor, "pair k"]:
        """Keys of the positive-probability outcomes (0 elsewhere)."""
        outcome = torch.nonzero(probabilities.flatten() > 0).flatten()
        if outcome.numel() == probabilities.numel():
            return hash_rows(successor_rows)
        flat_rows = successor_rows.reshape(-1, successor_rows.shape[-1])
        keys = torch.zeros(
            probabilities.numel(), dtype=torch.int64, device=probabilities.device
        )
        keys.scatter_(0, outcome, hash_rows(flat_rows.index_select(0, outcome)))
        return keys.view(probabilities.shape)

    def _resolve(
        self, keys: Int64[Tensor, " n"], rows: Int64[Tensor, "n dim"]
    ) -> Int64[Tensor, " n"]:
        """Ids of known keys; unknown keys become candidates ``-1 - index``."""
        position = searchsorted(self.known_keys, keys)
        position = position.clamp(max=len(self.known_keys) - 1)
        found = self.known_keys.index_select(0, position) == keys
        known = torch.where(found, self.key_order.index_select(0, position), -1)
        seen = known >= 0
        old = torch.nonzero(seen).flatten()
        _check_same_rows(
            rows.index_select(0, old),
            self.table.index_select(0, known.index_select(0, old)),
        )
        unseen = ~seen
        candidate = torch.cumsum(unseen, dim=0) - 1 + self._pending
        new = torch.nonzero(unseen).flatten()
        self._candidate_keys.append(keys.index_select(0, new))
        self._candidate_rows.append(rows.index_select(0, new))
        self._pending += len(self._candidate_keys[-1])
        self._check_pending()
        return torch.where(seen, known, -1 - candidate)

    def _check_budget(self, count: int) -> None:
        """Raise once ``count`` states exceed the state or memory budget."""
        where = f"breadth-first wave {self.waves}"
        self.budget.check_states(count, where)
        size = world_size(self.model, self.width, self.item)
        needed = count * in_memory_bytes_per_state(size)
        self.budget.check_memory(count, needed, where, "in-memory")

    def _check_pending(self) -> None:
        """Enforce the budget during a wave, counting distinct candidates."""
        budget = self.budget
        limit = budget.max_states if budget.max_states is not None else math.inf
        if budget.memory_bytes is not None:
            size = world_size(self.model, self.width, self.item)
            limit = min(limit, budget.memory_bytes // in_memory_bytes_per_state(size))
        if self.count + self._pending - self._duplicates <= limit:
            return
        distinct = torch.unique(torch.cat(self._candidate_keys)).numel()
        self._check_budget(self.count + distinct)
        self._duplicates = self._pending - distinct

    def end_wave(self) -> tuple[int, int]:
        """Add the wave's new states (in key order); return their id range."""
        if self._pending == 0:
            self._reset_wave()
            return self.count, self.count
        keys, rows, inverse = _dedupe(
            torch.cat(self._candidate_keys), torch.cat(self._candidate_rows)
        )
        first_new = self.count
        self._append_rows(rows)
        self._check_budget(self.count)
        new_ids = inverse + first_new
        for ids in self._wave_ids:
            candidate = (-1 - ids).clamp(min=0).flatten()
            fresh = new_ids.index_select(0, candidate).view_as(ids)
            ids.copy_(torch.where(ids < 0, fresh, ids))
        device = keys.device
        new_position = searchsorted(self.known_keys, keys)
        new_position += torch.arange(len(keys), device=device)
        old_position = searchsorted(keys, self.known_keys)
        old_position += torch.arange(len(self.known_keys), device=device)
        total = len(self.known_keys) + len(keys)
        merged_keys = torch.empty(total, dtype=torch.int64, device=device)
        merged_keys.index_copy_(0, new_position, keys)
        merged_keys.index_copy_(0, old_position, self.known_keys)
        merged_order = torch.empty_like(merged_keys)
        merged_order.index_copy_(
            0, new_position, torch.arange(first_new, self.count, device=device)
        )
        merged_order.index_copy_(0, old_position, self.key_order)
        self.known_keys, self.key_order = merged_keys, merged_order
        self._reset_wave()
        return first_new, self.count

    def _reset_wave(self) -> None:
        """Forget the finished wave's candidates."""
        self._candidate_keys, self._candidate_rows, self._wave_ids = [], [], []
        self._pending = self._duplicates = 0

    def _append_rows(self, rows: Int64[Tensor, "n dim"]) -> None:
        """Append rows to the state table, doubling its capacity when full."""
        needed = self.count + len(rows)
        if needed > len(self.table):
            grown = self.table.new_empty(
                max(needed, 2 * len(self.table)), rows.shape[1]
            )
            grown[: self.count] = self.table[: self.count]
            self.table = grown
        self.table[self.count : needed] = rows
        self.count = needed


def compile_world(
    model: WorldModel,
    *,
    device: torch.device | str | None = None,
    dtype: torch.dtype = torch.float64,
    max_states: int | None = None,
    budget: StateBudget | None = None,
    batch_size: int = 1 << 16,
) -> CompiledWorld:
    """Enumerate the reachable states of a world model into a compiled world.

    Parameters
    ----------
    model
        Any :class:`~empo.worlds.base.WorldModel`.
    device
        Device to enumerate on and of the result (default: CPU).
    dtype
        Float dtype of probabilities and goal weights.
    max_states
        Raise once more states than this are reachable (``None``: no limit); a
        shorthand for ``budget=StateBudget(max_states)``.
    budget
        State and memory budget (:class:`~empo.worlds.budget.StateBudget`),
        checked as states are found; the memory estimate is that of the in-memory
        solver (:func:`~empo.worlds.budget.in_memory_bytes_per_state`).
    batch_size
        Number of (state, joint action) pairs passed to ``model.transitions`` at
        once (at least one state per call); the result does not depend on it.

    Returns
    -------
    CompiledWorld
        With ``state_table``, ``height`` (``None`` if cyclic),
        ``metadata["compile_seconds"]``/``["states_per_second"]`` and, for a
        model with a ``layer_column`` (its time step), ``metadata["layer_column"]``.

    Raises
    ------
    ValueError
        If there is no initial state, or a non-terminal state allows no joint
        action.
    BudgetExceededError
        As soon as the world exceeds ``max_states`` or the budget.
    RuntimeError
        On a 64-bit hash collision between two different states.
    """
    started = time.perf_counter()
    device = torch.device(device) if device is not None else torch.device("cpu")
    counts = [len(names) for names in model.action_names]
    num_joint = 1
    for count in counts:
        num_joint *= count
    per_agent = torch.empty(num_joint, len(counts), dtype=torch.int64, device=device)
    rest = torch.arange(num_joint, device=device)
    for agent in reversed(range(len(counts))):
        per_agent[:, agent] = rest % counts[agent]
        rest = torch.div(rest, counts[agent], rounding_mode="floor")
    states_per_batch = max(1, batch_size // num_joint)

    initial = model.initial_states().to(device=device, dtype=torch.int64)
    if initial.ndim != 2 or len(initial) == 0:
        raise ValueError(
            "model.initial_states() must return a non-empty [n, state_dim] tensor, "
            f"got shape {tuple(initial.shape)}"
        )
    first_initial_key = hash_rows(initial[:1])
    if budget is None:
        budget = StateBudget(max_states=max_states)
    item = torch.empty((), dtype=dtype).element_size()
    enumeration = _Enumeration(model, per_agent, initial, budget, item)
    start, stop = 0, enumeration.count
    while stop > start:
        enumeration.waves += 1
        for low in range(start, stop, states_per_batch):
            enumeration.expand(low, min(low + states_per_batch, stop))
        start, stop = enumeration.end_wave()
        logger.debug(
            "wave %d: %d new states, %d in all", enumeration.waves, stop - start, stop
        )

    position = torch.searchsorted(enumeration.known_keys, first_initial_key)
    initial_id = int(enumeration.key_order[position][0])
    world = _assemble(enumeration, num_joint, dtype, initial_id)
    seconds = time.perf_counter() - started
    world.metadata["compile_seconds"] = seconds
    world.metadata["states_per_second"] = world.num_states / max(seconds, 1e-12)
    if hasattr(model, "layer_column"):
        world.metadata["layer_column"] = int(model.layer_column)
    logger.info(
        "compiled %d states, %d joint actions, K=%d in %.3f s (%d waves)",
        world.num_states,
        num_joint,
        world.successors.shape[2],
        seconds,
        enumeration.waves,
    )
    return world


def _assemble(
    enumeration: _Enumeration,
    num_joint: int,
    dtype: torch.dtype,
    initial_state: int,
) -> CompiledWorld:
    """Scatter the stored batches into the dense tensors of a compiled world.

    The per-state chunks were stored in increasing state id order.
    """
    model, chunks = enumeration.model, enumeration.chunks
    table = enumeration.table[: enumeration.count]
    num_states = len(table)
    device = table.device
    width = max((ids.shape[1] for ids in chunks["ids"]), default=1)
    successors = torch.arange(num_states, device=device)[:, None, None].expand(
        num_states, num_joint, width
    )
    successors = successors.reshape(num_states * num_joint, width)
    probabilities = torch.zeros(
        num_states * num_joint, width, dtype=dtype, device=device
    )
    for pair, ids, probs in zip(chunks["pair"], chunks["ids"], chunks["probs"]):
        slots = ids.shape[1]
        successors[:, :slots].index_copy_(0, pair, ids)
        probabilities[:, :slots].index_copy_(0, pair, probs.to(dtype))
    successors = successors.view(num_states, num_joint, width)
    probabilities = probabilities.view(num_states, num_joint, width)
    empty = table.new_zeros(0)
    height = height_from_edges(
        torch.cat([empty, *chunks["edge_src"]]),
        torch.cat([empty, *chunks["edge_dst"]]),
        num_states,
    )
    return _compiled(
        model,
        (successors, probabilities, torch.cat(chunks["mask"])),
        torch.cat(chunks["term"]),
        torch.cat(chunks["goal"]),
        height,
        initial_state,
        table.clone(),
    )


def _compiled(
    model: WorldModel,
    transitions: tuple[Tensor, Tensor, Tensor],
    terminal: Tensor,
    goal: Tensor,
    height: Tensor | None,
    initial_state: int,
    table: Tensor,
) -> CompiledWorld:
    """A compiled world from its tensors: ``transitions`` are the successors,
    probabilities and action masks, ``goal`` is ``[state, human, goal]``."""
    successors, probabilities, mask = transitions
    return CompiledWorld(
        agents=tuple(model.agents),
        humans=tuple(model.humans),
        robots=tuple(model.robots),
        action_names=tuple(tuple(names) for names in model.action_names),
        action_mask=mask,
        successors=successors,
        probabilities=probabilities,
        terminal=terminal,
        goal_membership=goal.permute(1, 2, 0).contiguous(),
        goal_weights=model.goal_weights.to(
            device=successors.device, dtype=probabilities.dtype
        ),
        goal_names=tuple(tuple(names) for names in model.goal_names),
        height=height,
        initial_state=initial_state,
        rest_action=tuple(model.rest_action),
        state_table=table,
    )


def compile_layers(
    model: WorldModel,
    layers: StateLayers,
    *,
    dtype: torch.dtype = torch.float64,
    chunk_states: int = 1 << 12,
) -> CompiledWorld:
    """The compiled world of a layered world model whose layers are enumerated.

    States are numbered as in ``layers`` (layer by layer, keys sorted within a
    layer); each layer's transitions are computed once per distinct action effect
    (:func:`~empo.worlds.layers.expand`) and spread over the joint actions, and
    heights follow layer by layer from the last one.

    Parameters
    ----------
    model
        The layered world model.
    layers
        Its states (:func:`~empo.worlds.layers.enumerate_layers`).
    dtype
        Float dtype of probabilities and goal weights.
    chunk_states
        States expanded at once.

    Returns
    -------
    CompiledWorld
        With ``state_table`` and ``height``.

    Notes
    -----
    Successors the enumeration kept (``layers.transitions``) are read instead of
    regenerated, and deleted.
    """
    started = time.perf_counter()
    device = layers.keys[0].device
    codec = layers.codec
    counts = [len(names) for names in model.action_names]
    per_agent = per_agent_actions(counts, device)
    num_states, num_joint, width = layers.num_states, per_agent.shape[0], 1
    held = dict(enumerate(layers.offsets[:-1]))
    parts: dict[str, list[Tensor]] = {"ids": [], "probs": [], "mask": [], "goal": []}
    rows_all = []
    cache, layers.transitions = layers.transitions, None
    try:
        for index in range(len(layers.keys)):
            rows = layers.rows(index)
            rows_all.append(rows)
            for low in range(0, len(rows), chunk_states):
                batch = rows[low : low + chunk_states]
                first = layers.offsets[index] + low
                expansion = expand(model, batch, per_agent, codec, slots=True)
                if cache is not None:
                    keys, probs = variant_successors(
                        *cache.take(index, len(expansion.base_state), device), expansion
                    )
                else:
                    keys, probs, base_rows = successor_keys(
                        model, batch, expansion, codec
                    )
                live = probs > 0
                found_rows = None
                if not codec.exact:
                    found_rows = base_rows.index_select(0, expansion.variant_base)[live]
                ids = torch.zeros(len(keys) + 1, keys.shape[1], dtype=torch.int64)
                ids = ids.to(device)
                ids[:-1][live] = layers.find(keys[live], found_rows, held)
                probs = torch.cat([probs, probs.new_zeros(1, probs.shape[1])])
                slot = expansion.slot.flatten()
                allowed = slot >= 0
                slot = slot.masked_fill(~allowed, len(ids) - 1)
                own = torch.arange(first, first + len(batch), device=device)
                own = own.repeat_interleave(num_joint)[:, None]
                ids = torch.where(allowed[:, None], ids.index_select(0, slot), own)
                probs = probs.index_select(0, slot)
                width = max(width, ids.shape[1])
                parts["ids"].append(ids.view(len(batch), num_joint, -1))
                parts["probs"].append(probs.view(len(batch), num_joint, -1))
                parts["mask"].append(expansion.mask)
                parts["goal"].append(model.goal_membership(batch).to(torch.bool))
            if cache is not None:
                cache.drop(index)
    finally:
        if cache is not None:
            cache.close()
    successors = torch.empty(num_states, num_joint, width, dtype=torch.int64)
    successors = successors.to(device)
    probabilities = torch.zeros(
        num_states, num_joint, width, dtype=dtype, device=device
    )
    start = 0
    for ids, probs in zip(parts["ids"], parts["probs"]):
        stop = start + len(ids)
        own = torch.arange(start, stop, device=device)[:, None, None]
        successors[start:stop] = own
        successors[start:stop, :, : ids.shape[2]] = ids
        probabilities[start:stop, :, : ids.shape[2]] = probs.to(dtype)
        start = stop
    table = torch.cat(rows_all)
    terminal = model.is_terminal(table).to(torch.bool)
    height = torch.zeros(num_states, dtype=torch.int64, device=device)
    for index in reversed(range(len(layers.keys))):
        low, high = layers.offsets[index], layers.offsets[index + 1]
        below = torch.where(
            probabilities[low:high] > 0, height[successors[low:high]], -1
        )
        height[low:high] = (below.flatten(1).amax(dim=1) + 1).clamp(min=0)
    world = _compiled(
        model,
        (successors, probabilities, torch.cat(parts["mask"])),
        terminal,
        torch.cat(parts["goal"]),
        height,
        layers.offsets[layers.initial_layer] + layers.initial_position,
        table,
    )
    seconds = time.perf_counter() - started + layers.seconds
    world.metadata["compile_seconds"] = seconds
    world.metadata["states_per_second"] = num_states / max(seconds, 1e-12)
    world.metadata["layer_column"] = int(model.layer_column)
    return world
