"""Random compiled worlds for tests and benchmarks of the exact solver.

:func:`random_layered_world` draws a :class:`~empo.worlds.compiled.CompiledWorld`
directly in tensor form (no enumeration), fully vectorised so that a world of a
million states is generated in seconds. States are arranged in layers; successors of
a state lie in deeper layers (acyclic) or anywhere (``cyclic=True``). Action masks,
stochastic joint actions, goal sets and goal weights are random.
:func:`unroll_world` turns any world into the acyclic world of (state, time) pairs up
to a horizon, whose solution approaches the cyclic fixed point as the horizon grows.
"""

from __future__ import annotations

from typing import Sequence

import torch
from jaxtyping import Bool, Int64
from torch import Tensor

from empo.worlds.compiled import CompiledWorld, compute_height


def _per_agent(value: int | Sequence[int], count: int, name: str) -> list[int]:
    values = [value] * count if isinstance(value, int) else list(value)
    if len(values) != count or any(v < 1 for v in values):
        raise ValueError(f"{name} needs {count} positive entries, got {value!r}")
    return values


def _joint_allowed(
    action_mask: Bool[Tensor, "state agent action"], counts: Sequence[int]
) -> Bool[Tensor, "state joint"]:
    allowed = torch.ones(action_mask.shape[0], 1, dtype=torch.bool)
    for agent, count in enumerate(counts):
        part = action_mask[:, agent, :count]
        allowed = (allowed[:, :, None] & part[:, None, :]).flatten(1)
    return allowed


def _layered_height(
    successors: Int64[Tensor, "state joint k"],
    probabilities: Tensor,
    starts: Int64[Tensor, " layer_plus_one"],
) -> Int64[Tensor, " state"]:
    """Heights when every successor lies in a deeper layer (one pass per layer)."""
    height = torch.zeros(successors.shape[0], dtype=torch.long)
    bounds = starts.tolist()
    for begin, end in reversed(list(zip(bounds[:-1], bounds[1:]))):
        succ = successors[begin:end]
        below = torch.where(probabilities[begin:end] > 0, height[succ] + 1, 0)
        height[begin:end] = below.flatten(1).amax(1)
    return height


def random_layered_world(
    num_states: int,
    *,
    roles: str = "hr",
    num_actions: int | Sequence[int] = 3,
    num_goals: int | Sequence[int] = 3,
    num_layers: int = 8,
    max_outcomes: int = 2,
    stochastic_fraction: float = 0.3,
    mask_fraction: float = 0.2,
    terminal_fraction: float = 0.05,
    goal_density: float = 0.1,
    random_weights: bool = False,
    rest_action: bool = False,
    cyclic: bool = False,
    window: int | None = None,
    seed: int = 0,
    device: torch.device | str | None = None,
    dtype: torch.dtype = torch.float64,
) -> CompiledWorld:
    """Draw a random compiled world.

    Parameters
    ----------
    num_states
        Number of states ``S`` (state 0 is the initial state).
    roles
        One letter per agent in joint-action order: ``"h"`` human, ``"r"`` robot.
    num_actions
        Action count per agent (or one count for all).
    num_goals
        Goal count per human (or one count for all); the goal axis is padded.
    num_layers
        Number of layers; the deepest is terminal.
    max_outcomes
        ``K``: successors of a stochastic joint action.
    stochastic_fraction
        Fraction of joint actions with ``K`` random outcomes (others are
        deterministic).
    mask_fraction
        Probability that an action is disallowed (each agent keeps one action).
    terminal_fraction
        Fraction of extra terminal states in the other layers (not state 0).
    goal_density
        Probability of extra membership of a state in a goal (besides one goal per
        state and human drawn uniformly).
    random_weights
        Goal weights uniform in ``[0.5, 2]`` instead of 1.
    rest_action
        Give every agent action 0 as its rest action.
    cyclic
        Draw successors among all states, so that the world has cycles.
    window
        If given (acyclic worlds only), successors lie within ``window`` states of
        the state's relative position in the next (or, for 20% of the states, the
        one after) layer, like neighbouring cells of a grid: memory access then has
        the locality of an enumerated world instead of being uniformly random.
    seed
        Seed of the generator.
    device, dtype
        Where the tensors live and the float precision.
    """
    if num_states < 2 or num_layers < 2 or num_layers > num_states:
        raise ValueError(
            f"need 2 <= num_layers <= num_states, got {num_layers}, {num_states}"
        )
    if not roles or set(roles) - {"h", "r"} or "h" not in roles:
        raise ValueError(f"roles must be a string of 'h'/'r' with a human: {roles!r}")
    num_agents = len(roles)
    counts = _per_agent(num_actions, num_agents, "num_actions")
    humans = tuple(i for i, role in enumerate(roles) if role == "h")
    robots = tuple(i for i, role in enumerate(roles) if role == "r")
    goals = _per_agent(num_goals, len(humans), "num_goals")
    gen = torch.Generator().manual_seed(seed)
    S, K = num_states, max_outcomes
    joint = 1
    for count in counts:
        joint *= count
    layer = torch.arange(S) * num_layers // S
    starts = torch.searchsorted(layer, torch.arange(num_layers + 1))
    terminal = layer == num_layers - 1
    extra = torch.rand(S, generator=gen) < terminal_fraction
    extra[0] = False
    terminal |= extra & (not cyclic)
    if cyclic:
        terminal = torch.zeros(S, dtype=torch.bool)
        terminal[-1] = True
    max_action = max(counts)
    action_mask = torch.rand(S, num_agents, max_action, generator=gen) >= mask_fraction
    action_mask &= torch.arange(max_action) < torch.tensor(counts)[:, None]
    keep = (torch.rand(S, num_agents, generator=gen) * torch.tensor(counts)).long()
    action_mask.scatter_(2, keep[:, :, None], True)
    if rest_action:
        action_mask[:, :, 0] = True
    action_mask &= ~terminal[:, None, None]
    allowed = _joint_allowed(action_mask, counts)
    if cyclic:
        low = torch.zeros(S, dtype=torch.long)
        span = torch.full((S,), S)
    else:
        next_start = starts[(layer + 1).clamp_max(num_layers - 1)]
        near = torch.rand(S, 1, 1, generator=gen) < 0.8
        next_end = starts[(layer + 2).clamp_max(num_layers)]
        low = next_start
        span = torch.where(near[:, 0, 0], next_end - next_start, S - next_start)
    draw = torch.rand(S, joint, K, generator=gen)
    if window is not None and not cyclic:
        target = torch.where(near[:, 0, 0], layer + 1, layer + 2).clamp_max(
            num_layers - 1
        )
        first, last = starts[target], starts[target + 1] - 1
        relative = (torch.arange(S) - starts[layer]) / (
            starts[layer + 1] - starts[layer]
        )
        center = first + (relative * (last + 1 - first)).long()
        offset = ((draw * 2 - 1) * window).round().long()
        successors = (center[:, None, None] + offset).clamp(
            first[:, None, None], last[:, None, None]
        )
    else:
        successors = low[:, None, None] + (draw * span[:, None, None]).long()
        successors = successors.clamp_max(S - 1)
    stochastic = torch.rand(S, joint, 1, generator=gen) < stochastic_fraction
    raw = torch.rand(S, joint, K, generator=gen) + 0.05
    raw[:, :, 0] += 1e-3
    single = torch.zeros(1, 1, K)
    single[0, 0, 0] = 1.0
    probabilities = torch.where(stochastic, raw / raw.sum(-1, keepdim=True), single)
    live = (allowed & ~terminal[:, None])[:, :, None]
    probabilities = torch.where(live, probabilities, torch.zeros(()))
    own = torch.arange(S)[:, None, None]
    successors = torch.where(probabilities > 0, successors, own)
    height = None if cyclic else _layered_height(successors, probabilities, starts)
    max_goals = max(goals)
    membership = torch.zeros(len(humans), max_goals, S, dtype=torch.bool)
    weights = torch.zeros(len(humans), max_goals)
    for index, count in enumerate(goals):
        feature = (torch.rand(S, generator=gen) * count).long()
        dense = torch.rand(count, S, generator=gen) < goal_density
        membership[index, :count] = dense | (
            feature[None, :] == torch.arange(count)[:, None]
        )
        if random_weights:
            weights[index, :count] = 0.5 + 1.5 * torch.rand(count, generator=gen)
        else:
            weights[index, :count] = 1.0
    names = tuple(f"{role}{i}" for i, role in enumerate(roles))
    world = CompiledWorld(
        agents=names,
        humans=humans,
        robots=robots,
        action_names=tuple(tuple(f"a{a}" for a in range(c)) for c in counts),
        action_mask=action_mask,
        successors=successors,
        probabilities=probabilities.to(dtype),
        terminal=terminal,
        goal_membership=membership,
        goal_weights=weights.to(dtype),
        goal_names=tuple(tuple(f"g{g}" for g in range(c)) for c in goals),
        height=height,
        initial_state=0,
        rest_action=tuple(0 if rest_action else None for _ in roles),
        metadata={"generator": "random_layered_world", "seed": seed},
    )
    return world.to(device=device, dtype=dtype)


def unroll_world(world: CompiledWorld, horizon: int) -> CompiledWorld:
    """The acyclic world of pairs ``(state, t)``, ``t = 0..horizon``.

    State ``(s, t)`` has id ``t * S + s`` and label ``(s, t)``; it behaves like ``s``
    with successors ``(s', t + 1)``, and every state at ``t = horizon`` is terminal.
    Goals are those of ``s``. Its solution at ``t = 0`` approaches the fixed point of
    a cyclic world as the horizon grows (for discounts below 1).

    Parameters
    ----------
    world
        Any compiled world.
    horizon
        Number of steps before the forced end.
    """
    if horizon < 1:
        raise ValueError(f"horizon must be at least 1, got {horizon}")
    S = world.num_states
    steps = horizon + 1
    offsets = torch.arange(steps, device=world.successors.device)
    last = (offsets == horizon)[:, None]
    terminal = (world.terminal[None, :] | last).flatten()
    live = ~last[:, :, None, None]
    succ = world.successors[None] + ((offsets + 1) * S)[:, None, None, None]
    own = (offsets[:, None] * S + torch.arange(S, device=offsets.device))[
        :, :, None, None
    ]
    probabilities = torch.where(live, world.probabilities[None], 0.0)
    successors = torch.where(probabilities > 0, succ, own)
    action_mask = world.action_mask[None] & live[:, :, :, 0][..., None]
    labels: list[tuple[int, int]] = [(s, t) for t in range(steps) for s in range(S)]
    flat_probs = probabilities.flatten(0, 1)
    flat_succ = successors.flatten(0, 1)
    height: Int64[Tensor, " state"] | None = compute_height(flat_succ, flat_probs)
    return CompiledWorld(
        agents=world.agents,
        humans=world.humans,
        robots=world.robots,
        action_names=world.action_names,
        action_mask=action_mask.flatten(0, 1),
        successors=flat_succ,
        probabilities=flat_probs,
        terminal=terminal,
        goal_membership=world.goal_membership.repeat(1, 1, steps),
        goal_weights=world.goal_weights,
        goal_names=world.goal_names,
        height=height,
        initial_state=world.initial_state,
        rest_action=world.rest_action,
        state_labels=labels,
        metadata={"unrolled_from": world.metadata, "horizon": horizon},
    )
