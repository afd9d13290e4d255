"""State rows: the one state encoding that environments, solutions and solvers share.

Every world is seen through integer state *rows* ``[dim]`` (CONTRACTS.md, key
``"state"``):

* a :class:`~empo.worlds.base.WorldModel` (MultiGrid, transport, ...) has its own
  rows, and its compiled form keeps them in ``state_table``;
* a tabular or compiled world (paradigms, random worlds) has no encoding of its own;
  its rows are ``[state_id]`` of its compiled form, served by :class:`CompiledRows`.

:func:`world_model` gives the row model of any world object and :class:`StateIndex`
maps rows back to compiled state ids (vectorised, by the compiler's row hash), which
is how tabulated solutions answer questions about rows.
"""

from __future__ import annotations

from typing import Any

import torch
from jaxtyping import Bool, Float, Int64
from torch import Tensor

from empo.worlds.base import WorldModel
from empo.worlds.compiled import CompiledWorld
from empo.worlds.hashing import hash_rows

__all__ = ["CompiledRows", "StateIndex", "compiled_rows", "world_model"]


class CompiledRows:
    """A compiled world as a :class:`~empo.worlds.base.WorldModel` whose rows are
    ``[state_id]``.

    Parameters
    ----------
    world
        The compiled world.
    """

    def __init__(self, world: CompiledWorld):
        self.compiled = world
        self.agents = tuple(world.agents)
        self.humans = tuple(world.humans)
        self.robots = tuple(world.robots)
        self.action_names = tuple(tuple(n) for n in world.action_names)
        self.rest_action = tuple(world.rest_action)
        self.state_dim = 1
        self.max_outcomes = int(world.successors.shape[2])
        self.goal_names = tuple(tuple(n) for n in world.goal_names)
        self.goal_weights = world.goal_weights
        self._counts = tuple(len(n) for n in world.action_names)

    def initial_states(self) -> Int64[Tensor, "1 1"]:
        """The compiled initial state id as a one-column row."""
        return torch.tensor([[int(self.compiled.initial_state)]])

    def is_terminal(self, states: Int64[Tensor, "batch 1"]) -> Bool[Tensor, " batch"]:
        """Terminal flags of the state ids."""
        return self.compiled.terminal.to(states.device)[states[:, 0]]

    def action_mask(
        self, states: Int64[Tensor, "batch 1"]
    ) -> Bool[Tensor, "batch agent max_action"]:
        """Allowed actions per agent."""
        return self.compiled.action_mask.to(states.device)[states[:, 0]]

    def transitions(
        self, states: Int64[Tensor, "batch 1"], actions: Int64[Tensor, "batch agent"]
    ) -> tuple[Int64[Tensor, "batch k 1"], Float[Tensor, "batch k"]]:
        """Successor ids and probabilities of each (state, per-agent action) pair."""
        joint = torch.zeros_like(actions[:, 0])
        for agent, count in enumerate(self._counts):
            joint = joint * count + actions[:, agent]
        ids = states[:, 0]
        succ = self.compiled.successors.to(states.device)[ids, joint]
        prob = self.compiled.probabilities.to(states.device)[ids, joint]
        return succ[..., None], prob

    def goal_membership(
        self, states: Int64[Tensor, "batch 1"]
    ) -> Bool[Tensor, "batch human goal"]:
        """Goal membership of the state ids."""
        membership = self.compiled.goal_membership.to(states.device)
        return membership.permute(2, 0, 1)[states[:, 0]]


def world_model(world: Any) -> WorldModel:
    """The row model of any world object.

    Parameters
    ----------
    world
        A :class:`~empo.worlds.base.WorldModel` (returned unchanged), a
        :class:`~empo.worlds.compiled.CompiledWorld` or a tabular world (an object
        with ``compile()``), whose rows become their compiled state ids.
    """
    if isinstance(world, CompiledWorld):
        return CompiledRows(world)
    if isinstance(world, WorldModel):
        return world
    return CompiledRows(world.compile(device="cpu", dtype=torch.float64))


def compiled_rows(world: CompiledWorld) -> Int64[Tensor, "state dim"]:
    """The row of every state of a compiled world (``state_table`` or ``[id]``)."""
    if world.state_table is not None:
        return world.state_table.to(torch.int64)
    return torch.arange(world.num_states, device=world.terminal.device)[:, None]


class StateIndex:
    """Vectorised lookup of compiled state ids from state rows.

    Rows are hashed as by the compiler (:func:`~empo.worlds.hashing.hash_rows`),
    looked up by binary search among the sorted keys of all states, and checked
    against the stored row, so an unknown row is reported, never confused with a
    known one.

    Parameters
    ----------
    world
        The compiled world.
    """

    def __init__(self, world: CompiledWorld):
        self.rows = compiled_rows(world)
        self.table = world.state_table is not None
        if self.table:
            keys = hash_rows(self.rows)
            self.keys, self.order = torch.sort(keys)

    def ids(self, rows: Int64[Tensor, "batch dim"]) -> Int64[Tensor, " batch"]:
        """Compiled state id of each row.

        Raises
        ------
        KeyError
            If a row is not a state of the compiled world (the first one is named).
        """
        if rows.shape[-1] != self.rows.shape[1]:
            raise KeyError(
                f"state rows have width {rows.shape[-1]}, the compiled world's "
                f"states have width {self.rows.shape[1]}"
            )
        rows = rows.to(self.rows.device, torch.int64)
        if self.table:
            keys = hash_rows(rows)
            where = torch.searchsorted(self.keys, keys).clamp_max(len(self.keys) - 1)
            ids = self.order[where]
        else:
            ids = rows[:, 0].clamp(0, len(self.rows) - 1)
        found = (self.rows[ids] == rows).all(-1)
        if not bool(found.all()):
            bad = rows[~found][0].tolist()
            raise KeyError(f"state row {bad} is not a state of the compiled world")
        return ids
