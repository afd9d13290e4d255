"""The one ``Solution`` protocol shared by exact, learned and sampled solutions.

Everything downstream of a solver (``run.py``, :mod:`empo.evaluation`,
:mod:`empo.analysis`, the TorchRL policy modules and the power-reward transform of
:mod:`empo.envs`) talks to a solution through this protocol only, never by asking
which class it is.

* :class:`Solution`: batched answers on state **rows** (CONTRACTS.md): the robot
  policy ``π_r`` (eq. 5), the goal-conditioned human policy ``π_h`` (eq. 2), the
  human power ``X_h`` (eq. 7) and the robot value ``V_r`` (eq. 9); training
  statistics; and
  :meth:`Solution.tabulate`, the solution laid out on every state of a compiled world.
* :class:`SolutionTables`: a solution laid out on a compiled world, as TensorDicts
  keyed by quantity (DESIGN.md, "Solutions"), with the joint action distribution;
  what the exact-expectation evaluation and the learned-vs-exact comparison read.
* :class:`TabulatedSolution`: implements :class:`Solution` for any solution held as
  tables (the exact solution, a learned solution evaluated on every state), looking
  rows up by :class:`~empo.worlds.rows.StateIndex`.

Robot actions are joint robot actions, a mixed radix over ``world.robots`` (the first
robot the most significant digit); human actions are padded to the largest human
action count with probability 0.
"""

from __future__ import annotations

import math
from functools import cached_property
from typing import Mapping, Protocol, runtime_checkable

import torch
from jaxtyping import Float, Int64
from tensordict import TensorDictBase
from torch import Tensor

from empo.theory import goal_marginal_policy, joint_action_distribution
from empo.worlds.compiled import CompiledWorld
from empo.worlds.rows import StateIndex

__all__ = [
    "Solution",
    "SolutionTables",
    "TabulatedSolution",
    "marginal_human_probs",
    "robot_action_parts",
]

Rows = Int64[Tensor, "batch dim"]


@runtime_checkable
class SolutionTables(Protocol):
    """A solution on every state of a compiled world.

    Attributes
    ----------
    world
        The compiled world.
    phase1
        ``pi_h`` ``[state, human, goal, action]`` and ``v_m`` ``[state, human, goal]``
        (and ``q_m`` where the solver has it).
    phase2
        ``q_r``, ``pi_r`` ``[state, robot_action]``, ``v_e`` ``[state, human, goal]``,
        ``x_h`` ``[state, human]``, ``u_r`` and ``v_r`` ``[state]``.
    """

    world: CompiledWorld
    phase1: TensorDictBase
    phase2: TensorDictBase

    def joint_policy(self) -> Float[Tensor, "state joint"]:
        """Probability of each joint action (world order) under ``Π_h π̄_h × π_r``."""


@runtime_checkable
class Solution(Protocol):
    """What every solution offers, on batches of state rows.

    Attributes
    ----------
    stats
        Training statistics (frames, gradient steps, seconds, ...); empty for
        solutions that were not trained.
    """

    stats: Mapping[str, float]

    def robot_probs(self, states: Rows) -> Float[Tensor, "batch robot_action"]:
        """``π_r(s)`` over joint robot actions (eq. 5); 0 at terminal states."""

    def human_probs(
        self, states: Rows, goals: Int64[Tensor, "batch human"]
    ) -> Float[Tensor, "batch human action"]:
        """``π_h(s, g_h)`` of each human for its goal index (eq. 2)."""

    def human_power(self, states: Rows) -> Float[Tensor, "batch human"]:
        """``X_h(s)`` (eq. 7)."""

    def robot_values(self, states: Rows) -> Float[Tensor, " batch"]:
        """``V_r(s)`` (eq. 9); ``terminal_v_r`` at terminal states."""

    def tabulate(self, world: CompiledWorld | None = None) -> SolutionTables | None:
        """The solution on every state of ``world``.

        With ``world`` ``None``: on the compiled world the solution was solved on,
        or ``None`` if it has none (a solution learned without enumerating).
        """


class TabulatedSolution:
    """:class:`Solution` of a solution held as tables (see :class:`SolutionTables`).

    Subclasses provide ``world``, ``phase1`` and ``phase2``; rows are looked up in
    ``world`` by :class:`~empo.worlds.rows.StateIndex`.
    """

    world: CompiledWorld
    phase1: TensorDictBase
    phase2: TensorDictBase

    @cached_property
    def state_index(self) -> StateIndex:
        """Row → state id lookup of ``world`` (built on first use)."""
        return StateIndex(self.world)

    def state_ids(self, states: Rows) -> Int64[Tensor, " batch"]:
        """Compiled ids of state rows (``KeyError`` for a row not in ``world``)."""
        return self.state_index.ids(states).to(self.phase2["v_r"].device)

    def robot_probs(self, states: Rows) -> Float[Tensor, "batch robot_action"]:
        """``π_r(s)`` over joint robot actions (eq. 5)."""
        return self.phase2["pi_r"][self.state_ids(states)]

    def human_probs(
        self, states: Rows, goals: Int64[Tensor, "batch human"]
    ) -> Float[Tensor, "batch human action"]:
        """``π_h(s, g_h)`` of each human for its goal index (eq. 2)."""
        pi_h = self.phase1["pi_h"][self.state_ids(states)]
        index = goals.to(pi_h.device)[:, :, None, None]
        index = index.expand(-1, -1, 1, pi_h.shape[-1])
        return pi_h.gather(2, index).squeeze(2)

    def human_power(self, states: Rows) -> Float[Tensor, "batch human"]:
        """``X_h(s)`` (eq. 7)."""
        return self.phase2["x_h"][self.state_ids(states)]

    def robot_values(self, states: Rows) -> Float[Tensor, " batch"]:
        """``V_r(s)`` (eq. 9)."""
        return self.phase2["v_r"][self.state_ids(states)]

    def tabulate(self, world: CompiledWorld | None = None) -> TabulatedSolution:
        """This solution on ``world`` (its own compiled world when ``None``).

        Raises
        ------
        ValueError
            If ``world`` has a different number of states than the solution's.
        """
        if world is not None and world.num_states != self.world.num_states:
            raise ValueError(
                f"the solution has {self.world.num_states} states, the compiled "
                f"world {world.num_states}"
            )
        return self

    def joint_policy(self) -> Float[Tensor, "state joint"]:
        """Probability of each joint action (world order) under ``Π_h π̄_h × π_r``.

        ``π̄_h`` is the goal-marginal human policy (normalised goal weights); rows of
        terminal states are 0.
        """
        world = self.world
        pi_h = self.phase1["pi_h"]
        pi_bar = goal_marginal_policy(pi_h, world.goal_weights)
        counts = world.action_counts
        factors = [pi_bar[:, i, : counts[h]] for i, h in enumerate(world.humans)]
        canonical = joint_action_distribution([*factors, self.phase2["pi_r"]])
        order = (*world.humans, *world.robots)
        shape = (world.num_states, *(counts[a] for a in order))
        inverse = [0] + [1 + order.index(a) for a in range(len(counts))]
        return canonical.view(shape).permute(inverse).reshape(world.num_states, -1)


def marginal_human_probs(
    solution: Solution,
    states: Rows,
    goal_weights: Float[Tensor, "human goal"],
) -> Float[Tensor, "batch human action"]:
    """Goal-marginal human policy ``π̄_h(s)`` of any solution on state rows.

    The solution's ``π_h(s, g)`` (eq. 2) for every goal, marginalised over goals by
    :func:`empo.theory.goal_marginal_policy` (THEORY.md, phase 2: the humans the
    robot reasons about in eqs. 4 and 6).

    Parameters
    ----------
    solution
        Any solution.
    states
        ``[batch, dim]`` state rows.
    goal_weights
        ``w_h(g)`` of the world (0 for padded goals).
    """
    humans, n_goals = goal_weights.shape
    every = torch.arange(n_goals, device=states.device)[:, None].expand(-1, humans)
    each = solution.human_probs(
        states.repeat_interleave(n_goals, 0), every.repeat(states.shape[0], 1)
    )
    each = each.reshape(states.shape[0], n_goals, humans, -1).transpose(1, 2)
    dtype = torch.promote_types(each.dtype, goal_weights.dtype)
    return goal_marginal_policy(each.to(dtype), goal_weights.to(each.device, dtype))


def robot_action_parts(
    action_counts: tuple[int, ...], robots: tuple[int, ...]
) -> Int64[Tensor, "robot_action robot"]:
    """Per-robot action of every joint robot action (mixed radix over ``robots``,
    the first robot the most significant digit).

    Parameters
    ----------
    action_counts
        Per agent, its action count.
    robots
        Indices of the robots among the agents.
    """
    parts = []
    rest = torch.arange(math.prod(action_counts[r] for r in robots))
    for robot in reversed(robots):
        parts.append(rest % action_counts[robot])
        rest = torch.div(rest, action_counts[robot], rounding_mode="floor")
    if not parts:
        return torch.zeros(1, 0, dtype=torch.int64)
    return torch.stack(parts[::-1], dim=-1)
