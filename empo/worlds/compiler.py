"""Generic batched compiler: any :class:`~empo.worlds.base.WorldModel` to tabular form.

:func:`compile_world` enumerates the states reachable from the model's initial states
by breadth-first search, one *wave* (all states first seen in the previous wave) at a
time, with every state of a batch and every joint action handled at once:

* states are integer rows; each row is hashed to one 64-bit key (a polynomial hash
  with wrap-around arithmetic). Known states are a sorted key array searched with
  :func:`torch.searchsorted`, so there is no Python dictionary per state. Every time
  two rows share a key their rows are compared, and a hash collision raises an error
  instead of silently merging two states;
* all joint actions (mixed radix over all agents, agent 0 most significant, as in
  :mod:`empo.worlds.compiled`) of a batch are expanded together and only the allowed
  ones of non-terminal states are passed to ``model.transitions``;
* repeated successors of one joint action are merged (probabilities summed), which
  keeps the successor axis ``K`` small.

The result has ``state_table`` filled (row ``i`` encodes state ``i``), the initial
state(s) first, then each wave's new states in key order.
"""

from __future__ import annotations

import logging
import time

import torch
from jaxtyping import Bool, Float, Int64
from torch import Tensor

from empo.worlds.base import WorldModel
from empo.worlds.compiled import CompiledWorld, compute_height

logger = logging.getLogger(__name__)

_GOLDEN = 0x9E3779B97F4A7C15 - (1 << 64)
_MIX_1 = 0xBF58476D1CE4E5B9 - (1 << 64)
_MIX_2 = 0x94D049BB133111EB - (1 << 64)
_OFFSET = 0x632BE59BD9B4E019


def _shift_right_logical(x: Int64[Tensor, "..."], bits: int) -> Int64[Tensor, "..."]:
    """Unsigned right shift of int64 values (torch's ``>>`` is arithmetic)."""
    return (x >> bits) & ((1 << (64 - bits)) - 1)


def _mix64(x: Int64[Tensor, "..."]) -> Int64[Tensor, "..."]:
    """The splitmix64 finaliser: a bijection of 64-bit words with full avalanche."""
    x = (x ^ _shift_right_logical(x, 30)) * _MIX_1
    x = (x ^ _shift_right_logical(x, 27)) * _MIX_2
    return x ^ _shift_right_logical(x, 31)


def hash_rows(rows: Int64[Tensor, "... dim"]) -> Int64[Tensor, "..."]:
    """64-bit hash of integer rows.

    Each salted column is XORed into the key, which is then remixed by the splitmix64
    finaliser; the finaliser is a bijection, so rows that differ in a single column
    never collide.

    Parameters
    ----------
    rows
        Integer state encodings, last axis the state width.

    Returns
    -------
    Tensor
        One key per row.
    """
    key = torch.full(rows.shape[:-1], _OFFSET, dtype=torch.int64, device=rows.device)
    for column in range(rows.shape[-1]):
        salt = ((column + 1) * _GOLDEN + (1 << 63)) % (1 << 64) - (1 << 63)
        key = _mix64(key ^ (rows[..., column] + salt))
    return key


def _check_same_rows(
    rows: Int64[Tensor, "n dim"], reference: Int64[Tensor, "n dim"]
) -> None:
    """Raise if rows with equal keys differ (a hash collision)."""
    differ = (rows != reference).any(dim=1)
    if bool(differ.any()):
        first = int(torch.nonzero(differ)[0])
        raise RuntimeError(
            f"hash collision between states {rows[first].tolist()} and "
            f"{reference[first].tolist()}; change the state encoding"
        )


def _dedupe(
    keys: Int64[Tensor, " n"], rows: Int64[Tensor, "n dim"]
) -> tuple[Int64[Tensor, " m"], Int64[Tensor, "m dim"]]:
    """Distinct keys (sorted) with one row each; equal keys must mean equal rows."""
    unique_keys, inverse = torch.unique(keys, return_inverse=True)
    representative = torch.zeros_like(unique_keys).scatter_(
        0, inverse, torch.arange(len(keys), device=keys.device)
    )
    _check_same_rows(rows, rows[representative[inverse]])
    return unique_keys, rows[representative]


def _check_limit(count: int, max_states: int | None, waves: int) -> None:
    """Raise once more than ``max_states`` states are known to be reachable."""
    if max_states is not None and count > max_states:
        raise ValueError(
            f"the world has more than max_states={max_states} reachable states "
            f"(found at least {count} in breadth-first wave {waves})"
        )


def _merge_outcomes(
    keys: Int64[Tensor, "pair k"], probabilities: Float[Tensor, "pair k"]
) -> tuple[Int64[Tensor, "pair k"], Float[Tensor, "pair k"], Int64[Tensor, "pair k"]]:
    """Merge repeated successors of each pair, positive entries first.

    Returns the merged keys, summed probabilities and, per merged entry, the index
    (along ``k``) of one original entry carrying that key.
    """
    sentinel = torch.iinfo(torch.int64).max
    keys = torch.where(probabilities > 0, keys, torch.full_like(keys, sentinel))
    sorted_keys, order = torch.sort(keys, dim=1, stable=True)
    sorted_probs = torch.gather(probabilities, 1, order)
    first = torch.ones_like(sorted_keys, dtype=torch.bool)
    first[:, 1:] = sorted_keys[:, 1:] != sorted_keys[:, :-1]
    group = torch.cumsum(first.long(), dim=1) - 1
    merged_probs = torch.zeros_like(probabilities).scatter_add_(1, group, sorted_probs)
    merged_keys = torch.full_like(keys, sentinel).scatter_(1, group, sorted_keys)
    source = torch.zeros_like(keys).scatter_(1, group, order)
    live = merged_probs > 0
    return torch.where(live, merged_keys, sentinel), merged_probs * live, source


def compile_world(
    model: WorldModel,
    *,
    device: torch.device | str | None = None,
    dtype: torch.dtype = torch.float64,
    max_states: int | None = None,
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
        Raise once more states than this are reachable (``None``: no limit).
    batch_size
        Number of (state, joint action) pairs passed to ``model.transitions`` at once.

    Returns
    -------
    CompiledWorld
        With ``state_table``, ``height`` (``None`` if cyclic) and
        ``metadata["compile_seconds"]``/``["states_per_second"]``.

    Raises
    ------
    ValueError
        If more than ``max_states`` states are reachable, or a non-terminal state
        allows no joint action.
    RuntimeError
        On a 64-bit hash collision between two different states.
    """
    started = time.perf_counter()
    device = torch.device(device) if device is not None else torch.device("cpu")
    counts = [len(names) for names in model.action_names]
    num_agents = len(counts)
    num_joint = 1
    for count in counts:
        num_joint *= count
    joint_ids = torch.arange(num_joint, device=device)
    per_agent = torch.empty(num_joint, num_agents, dtype=torch.int64, device=device)
    rest = joint_ids
    for agent in reversed(range(num_agents)):
        per_agent[:, agent] = rest % counts[agent]
        rest = torch.div(rest, counts[agent], rounding_mode="floor")
    states_per_batch = max(1, batch_size // num_joint)

    initial = model.initial_states().to(device=device, dtype=torch.int64)
    initial_keys = hash_rows(initial)
    unique_keys, table = _dedupe(initial_keys, initial)
    first_initial_key = initial_keys[0]
    known_keys, key_order = unique_keys, torch.arange(len(unique_keys), device=device)

    chunks: dict[str, list[Tensor]] = {
        name: [] for name in ("src", "joint", "keys", "probs", "mask", "goal", "term")
    }
    frontier = torch.arange(len(table), device=device)
    waves = 0
    while frontier.numel() > 0:
        waves += 1
        candidate_keys, candidate_rows = [], []
        pending = 0
        for start in range(0, frontier.numel(), states_per_batch):
            ids = frontier[start : start + states_per_batch]
            new_keys, new_rows = _expand_batch(
                model, table, ids, per_agent, known_keys, key_order, chunks
            )
            candidate_keys.append(new_keys)
            candidate_rows.append(new_rows)
            pending += len(new_keys)
            if max_states is not None and len(table) + pending > max_states:
                keys, rows = _dedupe(
                    torch.cat(candidate_keys), torch.cat(candidate_rows)
                )
                candidate_keys, candidate_rows, pending = [keys], [rows], len(keys)
                _check_limit(len(table) + pending, max_states, waves)
        keys, rows = _dedupe(torch.cat(candidate_keys), torch.cat(candidate_rows))
        first_new = len(table)
        table = torch.cat([table, rows])
        _check_limit(len(table), max_states, waves)
        new_order = torch.arange(first_new, len(table), device=device)
        merged_keys = torch.cat([known_keys, keys])
        merged_keys, order = torch.sort(merged_keys, stable=True)
        key_order = torch.cat([key_order, new_order])[order]
        known_keys = merged_keys
        frontier = new_order
        logger.debug("wave %d: %d new states, %d in all", waves, len(keys), len(table))

    initial_id = int(_lookup(first_initial_key[None], known_keys, key_order)[0])
    world = _assemble(
        model, table, chunks, known_keys, key_order, num_joint, dtype, initial_id
    )
    seconds = time.perf_counter() - started
    world.metadata["compile_seconds"] = seconds
    world.metadata["states_per_second"] = len(table) / max(seconds, 1e-12)
    logger.info(
        "compiled %d states, %d joint actions, K=%d in %.3f s (%d waves)",
        len(table),
        num_joint,
        world.successors.shape[2],
        seconds,
        waves,
    )
    return world


def _lookup(
    keys: Int64[Tensor, " n"],
    known_keys: Int64[Tensor, " m"],
    key_order: Int64[Tensor, " m"],
) -> Int64[Tensor, " n"]:
    """State ids of keys (``-1`` where unknown)."""
    if known_keys.numel() == 0:
        return torch.full_like(keys, -1)
    position = torch.searchsorted(known_keys, keys.contiguous())
    position = position.clamp(max=len(known_keys) - 1)
    found = known_keys[position] == keys
    return torch.where(found, key_order[position], torch.full_like(keys, -1))


def _expand_batch(
    model: WorldModel,
    table: Int64[Tensor, "state dim"],
    ids: Int64[Tensor, " batch"],
    per_agent: Int64[Tensor, "joint agent"],
    known_keys: Int64[Tensor, " m"],
    key_order: Int64[Tensor, " m"],
    chunks: dict[str, list[Tensor]],
) -> tuple[Int64[Tensor, " new"], Int64[Tensor, "new dim"]]:
    """Expand one batch of states; store its transitions and return unseen successors.

    Appends to ``chunks`` the batch's terminal flags, action masks, goal membership
    and, per allowed (state, joint action) pair, the merged successor keys and
    probabilities. Returns the keys and rows of successors not in ``known_keys``.
    """
    rows = table[ids]
    terminal = model.is_terminal(rows).to(torch.bool)
    mask = model.action_mask(rows).to(torch.bool) & ~terminal[:, None, None]
    agents = torch.arange(per_agent.shape[1], device=rows.device)
    allowed = mask[:, agents[None, :], per_agent].all(dim=2)
    stuck = ~terminal & ~allowed.any(dim=1)
    if bool(stuck.any()):
        raise ValueError(
            f"non-terminal state {rows[int(torch.nonzero(stuck)[0])].tolist()} "
            "allows no joint action"
        )
    chunks["term"].append(terminal)
    chunks["mask"].append(mask)
    chunks["goal"].append(model.goal_membership(rows).to(torch.bool))
    state_index, joint = torch.nonzero(allowed, as_tuple=True)
    if state_index.numel() == 0:
        return table.new_zeros(0), table.new_zeros(0, table.shape[1])
    successor_rows, probabilities = model.transitions(
        rows[state_index], per_agent[joint]
    )
    successor_rows = successor_rows.to(torch.int64)
    probabilities = probabilities.to(torch.float64)
    raw_keys = torch.zeros(probabilities.shape, dtype=torch.int64, device=rows.device)
    outcome = probabilities > 0
    raw_keys[outcome] = hash_rows(successor_rows[outcome])
    keys, merged_probs, source = _merge_outcomes(raw_keys, probabilities)
    width = max(int((merged_probs > 0).sum(dim=1).max()), 1)
    keys, merged_probs, source = (
        keys[:, :width],
        merged_probs[:, :width],
        source[:, :width],
    )
    chunks["src"].append(ids[state_index])
    chunks["joint"].append(joint)
    chunks["keys"].append(keys)
    chunks["probs"].append(merged_probs)

    live = merged_probs > 0
    pair_index, slot = torch.nonzero(live, as_tuple=True)
    flat_keys = keys[pair_index, slot]
    flat_rows = successor_rows[pair_index, source[pair_index, slot]]
    unique_keys, unique_rows = _dedupe(flat_keys, flat_rows)
    known = _lookup(unique_keys, known_keys, key_order)
    seen = known >= 0
    _check_same_rows(unique_rows[seen], table[known[seen]])
    return unique_keys[~seen], unique_rows[~seen]


def _assemble(
    model: WorldModel,
    table: Int64[Tensor, "state dim"],
    chunks: dict[str, list[Tensor]],
    known_keys: Int64[Tensor, " state"],
    key_order: Int64[Tensor, " state"],
    num_joint: int,
    dtype: torch.dtype,
    initial_state: int,
) -> CompiledWorld:
    """Scatter the stored batches into the dense tensors of a compiled world.

    The per-state chunks were stored wave by wave in increasing id order.
    """
    num_states = len(table)
    device = table.device
    width = max((k.shape[1] for k in chunks["keys"]), default=1)
    successors = torch.arange(num_states, device=device)[:, None, None].repeat(
        1, num_joint, width
    )
    probabilities = torch.zeros(
        num_states, num_joint, width, dtype=dtype, device=device
    )
    for src, joint, keys, probs in zip(
        chunks["src"], chunks["joint"], chunks["keys"], chunks["probs"]
    ):
        live = probs > 0
        ids = _lookup(keys.flatten(), known_keys, key_order).view_as(keys)
        slots = keys.shape[1]
        successors[src, joint, :slots] = torch.where(live, ids, src[:, None])
        probabilities[src, joint, :slots] = probs.to(dtype)
    return CompiledWorld(
        agents=tuple(model.agents),
        humans=tuple(model.humans),
        robots=tuple(model.robots),
        action_names=tuple(tuple(names) for names in model.action_names),
        action_mask=torch.cat(chunks["mask"]),
        successors=successors,
        probabilities=probabilities,
        terminal=torch.cat(chunks["term"]),
        goal_membership=torch.cat(chunks["goal"]).permute(1, 2, 0).contiguous(),
        goal_weights=model.goal_weights.to(device=device, dtype=dtype),
        goal_names=tuple(tuple(names) for names in model.goal_names),
        height=compute_height(successors, probabilities),
        initial_state=initial_state,
        rest_action=tuple(model.rest_action),
        state_table=table,
    )
