"""The compiled (tabular) form of a world that the exact solvers read.

A :class:`CompiledWorld` holds an enumerated world as dense padded tensors
(DESIGN.md, "Compiled world"). Conventions every producer and consumer shares:

* **Agents** are named in ``agents``; ``humans`` and ``robots`` are indices into it.
* **Joint actions** are mixed-radix indices over *all* agents in ``agents`` order,
  agent 0 most significant: ``joint = ((a_0 * n_1 + a_1) * n_2 + a_2) ...`` with
  ``n_i = len(action_names[i])``. Reshaping the joint axis to ``(n_0, n_1, ...)``
  therefore gives one axis per agent.
* **Action masks**: ``action_mask[s, i, a]`` is True where agent ``i`` may take its
  action ``a`` in state ``s`` (padded to the largest action count). A joint action
  in which some agent takes a masked action has all probabilities 0.
* **Successors**: ``successors[s, j, k]`` and ``probabilities[s, j, k]`` list the
  ``K`` possible next states of joint action ``j``; padding entries point to ``s``
  itself with probability 0. Rows of allowed joint actions of non-terminal states sum
  to 1. Terminal states have no allowed action (all probabilities 0).
* **Goals**: ``goal_membership[h, g, s]`` is True where state ``s`` is in goal ``g`` of
  the ``h``-th human (``h`` indexes ``humans``); padded goals have no member and weight
  0 (``goal_mask`` is False there).
* **Levels**: ``height[s]`` is 0 for terminal states and ``1 + max`` over successors
  otherwise, so backward induction processes heights 1, 2, ... in order; ``height`` is
  ``None`` for a cyclic world.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Hashable, Sequence

import torch
from jaxtyping import Bool, Float, Int64
from torch import Tensor


@dataclass
class CompiledWorld:
    """An enumerated world as dense padded tensors (see the module docstring).

    Parameters
    ----------
    agents
        Agent names in joint-action order.
    humans, robots
        Indices into ``agents``; the robots act as one team.
    action_names
        Per agent, the names of all its actions (its largest action set).
    action_mask
        ``[state, agent, max_action]``: allowed actions per state.
    successors, probabilities
        ``[state, joint_action, K]``: successor ids and their probabilities.
    terminal
        ``[state]``: terminal states.
    goal_membership
        ``[human, goal, state]``: whether a state lies in a goal.
    goal_weights
        ``[human, goal]``: goal weights ``w_h(g) > 0``, 0 on padding.
    goal_names
        Per human, the names of its goals (unpadded).
    height
        ``[state]`` topological height, or ``None`` for a cyclic world.
    initial_state
        Id of the initial state.
    rest_action
        Per agent, the index of its rest action, or ``None``.
    state_labels
        Optional hashable label per state (hand-written tabular worlds).
    state_table
        Optional ``[state, state_dim]`` integer encoding (generic worlds).
    durations
        Optional ``[state, joint_action, K]`` transition durations (THEORY.md,
        continuous-time extension).
    """

    agents: tuple[str, ...]
    humans: tuple[int, ...]
    robots: tuple[int, ...]
    action_names: tuple[tuple[str, ...], ...]
    action_mask: Bool[Tensor, "state agent max_action"]
    successors: Int64[Tensor, "state joint k"]
    probabilities: Float[Tensor, "state joint k"]
    terminal: Bool[Tensor, " state"]
    goal_membership: Bool[Tensor, "human goal state"]
    goal_weights: Float[Tensor, "human goal"]
    goal_names: tuple[tuple[str, ...], ...]
    height: Int64[Tensor, " state"] | None
    initial_state: int
    rest_action: tuple[int | None, ...]
    state_labels: Sequence[Hashable] | None = None
    state_table: Int64[Tensor, "state dim"] | None = None
    durations: Float[Tensor, "state joint k"] | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
