"""The states fitted by the layered schedule (:mod:`empo.learning.layered`):
branching rollouts from ``s_0`` cut to a number of states per layer
(:class:`LayerSampler`), and the states visited by rollouts of a solution
(:func:`policy_states`)."""

from __future__ import annotations

import math
from typing import Callable

import torch
from jaxtyping import Int64
from tensordict import TensorDict
from torch import Tensor

from empo import theory
from empo.learning.data import WorldData

__all__ = ["LayerSampler", "distinct_states", "missing_states", "policy_states"]


class LayerSampler:
    """Branching rollouts from ``s_0`` (module docstring, step 1).

    Parameters
    ----------
    data
        The data source (with layers).
    per_layer
        Most distinct states kept per layer.
    generator
        Generator of every draw.
    """

    def __init__(self, data: WorldData, per_layer: int, generator: torch.Generator):
        self.data = data
        self.per_layer = per_layer
        self.generator = generator

    def _cut(self, states: TensorDict) -> TensorDict:
        """At most ``per_layer`` of distinct ``states``, drawn uniformly."""
        if states.shape[0] <= self.per_layer:
            return states
        dev = self.data.device
        keep = torch.randperm(states.shape[0], generator=self.generator, device=dev)
        return states[keep[: self.per_layer]]

    @torch.no_grad()
    def sample(self) -> list[TensorDict]:
        """Per layer (index = layer), the distinct states reached, terminal ones
        included. Layers are visited in order and every successor lies in a later
        layer, so each layer is complete (and cut) before its states branch; a
        layer may be reached after different numbers of steps (height layers)."""
        data = self.data
        reached: list[list[TensorDict]] = [[] for _ in range(data.num_layers)]
        start = data.initial()
        reached[int(data.layer(start)[0])].append(start)
        layers = []
        for parts in reached:
            here = start[:0] if not parts else distinct_states(data, torch.cat(parts))
            here = self._cut(here)
            layers.append(here)
            here = here[~data.terminal(here)]
            if here.shape[0] == 0:
                continue
            branch = max(1, math.ceil(2 * self.per_layer / here.shape[0]))
            parents = here.expand(branch, here.shape[0]).reshape(-1)
            mask = data.action_mask(parents)
            probs = theory.uniform_policy(mask, torch.float32)
            flat = probs.reshape(-1, probs.shape[-1])
            actions = torch.multinomial(flat, 1, generator=self.generator)
            children = data.step(
                parents, actions.reshape(probs.shape[:-1]), self.generator
            )
            children = distinct_states(data, children)
            layer = data.layer(children)
            for index in torch.unique(layer).tolist():
                reached[index].append(children[layer == index])
        return layers


def distinct_states(data: WorldData, states: TensorDict) -> TensorDict:
    """The distinct states among ``states`` (batch ``[n]``)."""
    if states.shape[0] == 0:
        return states
    unique, _ = data.distinct(states[:, None, None], torch.ones(states.shape[0], 1, 1))
    return unique


@torch.no_grad()
def policy_states(
    data: WorldData,
    human_policy: Callable[[TensorDict], Tensor],
    robot_policy: Callable[[TensorDict], Tensor],
    episodes: int,
    epsilon: float,
    goal_resample_steps: int,
    generator: torch.Generator,
) -> list[TensorDict]:
    """States visited per layer by rollouts of a solution (module docstring).

    The first half of the ``episodes`` run from ``s_0`` with the humans following
    ``π_h`` for goal profiles drawn by the goal weights and redrawn every
    ``goal_resample_steps`` and the robot drawing from ``(1 − ε) π_r + ε``
    uniform; the second half with the humans taking their rest action (their first
    allowed action without one) and the robot its most likely action, also mixed
    with ``ε`` uniform exploration.

    Returns
    -------
    list
        Per layer (index = layer), the distinct states visited there.
    """
    dev = data.device
    half = episodes - episodes // 2
    states = data.initial().expand(episodes).clone()
    greedy = torch.arange(episodes, device=dev) >= half
    weights = data.goal_weights.repeat(episodes, 1)
    envs = torch.arange(episodes, device=dev)
    humans = torch.arange(data.num_humans, device=dev)
    per_layer: list[list[TensorDict]] = [[] for _ in range(data.num_layers)]
    goals = torch.multinomial(weights, 1, generator=generator).reshape(episodes, -1)
    for step in range(data.num_layers):
        alive = ~data.terminal(states)
        layer = data.layer(states)
        for index in torch.unique(layer).tolist():
            per_layer[index].append(states[layer == index])
        if not bool(alive.any()):
            break
        if step > 0 and step % goal_resample_steps == 0:
            fresh = torch.multinomial(weights, 1, generator=generator)
            goals = fresh.reshape(episodes, -1)
        mask_h = data.human_mask(states)
        pi_h = human_policy(states)[envs[:, None], humans[None], goals]
        rest = data.rest_action.clamp_min(0).expand(episodes, -1)
        rest_ok = torch.gather(mask_h, 2, rest[..., None])[..., 0] & (
            data.rest_action >= 0
        )
        first = mask_h.to(torch.int8).argmax(-1)
        resting = torch.where(rest_ok, rest, first)
        drawn = _draw(pi_h, mask_h, 0.0, generator)
        human_actions = torch.where(greedy[:, None], resting, drawn)
        mask_r = data.robot_mask(states)
        pi_r = robot_policy(states)
        best = torch.nn.functional.one_hot(
            pi_r.masked_fill(~mask_r, -1.0).argmax(-1), pi_r.shape[-1]
        ).to(pi_r.dtype)
        pi_r = torch.where(greedy[:, None], best, pi_r)
        robot = _draw(pi_r[:, None], mask_r[:, None], epsilon, generator)[:, 0]
        nxt = data.step(states, data.profiles(human_actions, robot), generator)
        states = data.initial().expand(episodes).where(~alive, nxt)
    return [
        distinct_states(data, torch.cat(parts)) if parts else data.initial()[:0]
        for parts in per_layer
    ]


def _draw(
    policy: Tensor, mask: Tensor, epsilon: float, generator: torch.Generator
) -> Int64[Tensor, "batch n"]:
    """One draw from ``(1 − ε) policy + ε uniform(mask)`` per row (uniform over
    ``mask`` where that is all 0, over every action where ``mask`` allows none:
    episodes at a terminal state, whose draw is discarded)."""
    mixed = (1.0 - epsilon) * policy + epsilon * theory.uniform_policy(
        mask, policy.dtype
    )
    fallback = torch.where(mask.any(-1, keepdim=True), mask, torch.ones_like(mask))
    mixed = torch.where(
        mixed.sum(-1, keepdim=True) > 0, mixed, fallback.to(mixed.dtype)
    )
    flat = mixed.reshape(-1, mixed.shape[-1])
    return torch.multinomial(flat, 1, generator=generator).reshape(mixed.shape[:-1])


def missing_states(
    data: WorldData, states: TensorDict, known: TensorDict
) -> TensorDict:
    """The states of ``states`` (distinct) that are not in ``known`` (distinct)."""
    if states.shape[0] == 0 or known.shape[0] == 0:
        return states
    both = torch.cat([known, states])
    unique, inverse = data.distinct(
        both[:, None, None], torch.ones(both.shape[0], 1, 1)
    )
    inverse = inverse.reshape(-1)
    seen = torch.zeros(unique.shape[0], dtype=torch.bool, device=data.device)
    seen[inverse[: known.shape[0]]] = True
    return states[~seen[inverse[known.shape[0] :]]]
