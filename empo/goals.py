"""Goal sets: parsing, weights, goal-profile sampling, encoding and coverage.

THEORY.md, "The world model": each human ``h`` has a finite set ``G_h`` of goals, each
a set of states, with weights ``w_h(g) > 0``. Phase 2 draws goal profiles
``g = (g_h)_h`` independently with ``g_h ∝ w_h``, and the goal sets should cover every
trajectory (otherwise ``X_h`` can vanish and ``U_r = -inf``, eq. 8).
Tensors follow :class:`~empo.worlds.compiled.CompiledWorld`: ``goal_weights`` is
``[human, goal]`` with 0 on padded goals, ``goal_membership`` is
``[human, goal, state]``.
"""

from __future__ import annotations

import math
from numbers import Real
from typing import Any, Hashable

import torch
from jaxtyping import Bool, Float, Int64
from torch import Tensor

from empo.worlds.compiled import CompiledWorld


def parse_goal(spec: Any, human: str, name: str) -> tuple[frozenset[Hashable], float]:
    """Member states and weight of one hand-written goal.

    Parameters
    ----------
    spec
        A list, tuple, set or frozenset of state labels, or a pair ``(states,
        weight)`` whose first entry is such a collection and second a number.
    human, name
        The goal's owner and name, for error messages.

    Returns
    -------
    tuple
        ``(frozenset of states, weight)``; the weight defaults to 1.

    Raises
    ------
    ValueError
        If the weight is not positive and finite or the states are not a collection.
    """
    states, weight = spec, 1.0
    if (
        isinstance(spec, tuple)
        and len(spec) == 2
        and isinstance(spec[0], (list, tuple, set, frozenset))
        and isinstance(spec[1], Real)
        and not isinstance(spec[1], bool)
    ):
        states, weight = spec[0], float(spec[1])
    if not weight > 0 or not math.isfinite(weight):
        raise ValueError(
            f"goal {name!r} of human {human!r}: weight {weight!r} must be positive "
            "and finite"
        )
    if isinstance(states, (str, bytes)) or not isinstance(
        states, (list, tuple, set, frozenset)
    ):
        raise ValueError(
            f"goal {name!r} of human {human!r}: give its states as a list, tuple or "
            f"set, got {states!r}"
        )
    return frozenset(states), weight


def goal_probabilities(
    goal_weights: Float[Tensor, "human goal"],
) -> Float[Tensor, "human goal"]:
    """Normalised weights ``w̃_h(g) = w_h(g) / Σ_g' w_h(g')`` (phase 2 goal draws)."""
    return goal_weights / goal_weights.sum(dim=-1, keepdim=True)


def sample_goal_profiles(
    goal_weights: Float[Tensor, "human goal"],
    batch: int,
    generator: torch.Generator | None = None,
) -> Int64[Tensor, "batch human"]:
    """Draw ``batch`` goal profiles, each human's goal independently ``∝ w_h``.

    Parameters
    ----------
    goal_weights
        ``[human, goal]`` weights (0 on padding, never drawn).
    batch
        Number of profiles.
    generator
        Random generator (on the weights' device) for reproducible draws.
    """
    draws = torch.multinomial(
        goal_probabilities(goal_weights), batch, replacement=True, generator=generator
    )
    return draws.T.contiguous()


def goal_one_hot(
    goals: Int64[Tensor, "*batch human"], max_goals: int, dtype: torch.dtype
) -> Float[Tensor, "*batch human goal"]:
    """One-hot goal encoding for goal-conditioned networks."""
    return torch.nn.functional.one_hot(goals, max_goals).to(dtype)


def goal_avoiding_states(world: CompiledWorld) -> Bool[Tensor, "human state"]:
    """States from which some positive-probability trajectory enters no goal of ``h``.

    A state is goal-avoiding for human ``h`` if it is terminal, or some allowed joint
    action leads with positive probability to a successor outside all of ``h``'s goals
    that is itself goal-avoiding. Where the initial state is goal-avoiding the goal
    sets do not cover every trajectory (THEORY.md), and ``X_h`` may reach 0. Computed
    as a least fixed point, vectorised over humans and states.

    Parameters
    ----------
    world
        A compiled world.

    Returns
    -------
    Tensor
        ``[human, state]`` flags.
    """
    in_any_goal = world.goal_membership.any(dim=1)
    positive = world.probabilities > 0
    flat_successors = world.successors.flatten(1)
    avoiding = world.terminal[None, :].expand(world.num_humans, -1).clone()
    while True:
        escape = (avoiding & ~in_any_goal)[:, flat_successors]
        escape = (escape.view(world.num_humans, *positive.shape) & positive).any(-1)
        updated = avoiding | escape.any(-1)
        if torch.equal(updated, avoiding):
            return avoiding
        avoiding = updated
