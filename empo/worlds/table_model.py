"""A compiled world served back as a world model (tests and benchmarks).

:class:`TableModel` answers the :class:`~empo.worlds.base.WorldModel` questions by
looking them up in a :class:`~empo.worlds.compiled.CompiledWorld`. A state row is
``[layer, id]`` where, for an acyclic world, ``layer = max height - height``: every
transition leads to a later layer, so the layered solver
(:mod:`empo.exact.layered`) can solve, for example, random layered worlds
(:func:`~empo.worlds.random_world.random_layered_world`) that the in-memory solver
solves too. Cyclic worlds have layer 0 everywhere and no ``layer_column``.
"""

from __future__ import annotations

import torch
from jaxtyping import Bool, Float, Int64
from torch import Tensor

from empo.worlds.compiled import CompiledWorld


class TableModel:
    """A compiled world as a world model; a state is the row ``[layer, id]``.

    Parameters
    ----------
    world
        The compiled world.
    """

    state_dim = 2

    def __init__(self, world: CompiledWorld) -> None:
        self.world = world
        self.agents, self.humans, self.robots = world.agents, world.humans, world.robots
        self.action_names, self.rest_action = world.action_names, world.rest_action
        self.goal_names, self.goal_weights = world.goal_names, world.goal_weights
        self.max_outcomes = world.successors.shape[2]
        self.goals_by_state = world.goal_membership.permute(2, 0, 1)
        ids = torch.arange(world.num_states, device=world.terminal.device)
        if world.height is None:
            self.layer = torch.zeros_like(ids)
        else:
            self.layer = world.height.max() - world.height
            self.layer_column = 0
        self.rows = torch.stack([self.layer, ids], dim=1)

    def state_bounds(self) -> Int64[Tensor, "2 dim"]:
        """Layers and ids between 0 and their largest value."""
        high = [int(self.layer.max()), self.world.num_states - 1]
        return torch.tensor([[0, 0], high], dtype=torch.int64)

    def initial_states(self) -> Int64[Tensor, "1 dim"]:
        """The initial state's row."""
        return self.rows[self.world.initial_state][None]

    def is_terminal(self, states: Int64[Tensor, "batch dim"]) -> Bool[Tensor, " batch"]:
        """Terminal flags."""
        return self.world.terminal[states[:, 1]]

    def action_mask(
        self, states: Int64[Tensor, "batch dim"]
    ) -> Bool[Tensor, "batch agent action"]:
        """Per-agent action masks."""
        return self.world.action_mask[states[:, 1]]

    def goal_membership(
        self, states: Int64[Tensor, "batch dim"]
    ) -> Bool[Tensor, "batch human goal"]:
        """Goal membership per human and goal."""
        return self.goals_by_state[states[:, 1]]

    def transitions(
        self, states: Int64[Tensor, "batch dim"], actions: Int64[Tensor, "batch agent"]
    ) -> tuple[Int64[Tensor, "batch k dim"], Float[Tensor, "batch k"]]:
        """Successor rows and probabilities, looked up in the tables."""
        joint = torch.zeros_like(actions[:, 0])
        for agent, names in enumerate(self.action_names):
            joint = joint * len(names) + actions[:, agent]
        ids = states[:, 1]
        return (
            self.rows[self.world.successors[ids, joint]],
            self.world.probabilities[ids, joint],
        )
