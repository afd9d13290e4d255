"""Batched rollouts on state rows for the sampled learned solver.

``num_envs`` episodes run in parallel from the initial state row; every step is one
batched ``world.transitions`` call (one successor drawn per episode) and episodes
restart from the initial row when they reach a terminal row or ``max_episode_steps``.
The rollouts only decide *which rows* are trained on; the targets take their own
expectations (:mod:`empo.learning.sampled.losses`). Every random draw goes through
one checkpointed ``torch.Generator``, so a resumed run continues the same rollouts.

* Phase 1: each human pursues its own goal, drawn by the goal weights per episode and
  redrawn when reached; it follows eq. (2) of the current network mixed with ε
  uniform exploration. The robots act uniformly at random: the minimum over robot
  actions of eq. (1) is taken exactly inside the targets, so the robots' rollout
  behaviour only has to visit the states they could lead to.
* Phase 2: humans follow the frozen phase-1 ``π_h`` for a goal profile redrawn every
  ``N_g`` steps (and at each restart); the robots follow eq. (5) at the annealed
  ``β'_r`` mixed with ε uniform exploration.
"""

from __future__ import annotations

import math
from typing import Callable

import torch
from jaxtyping import Bool, Float, Int64
from torch import Tensor

from empo import theory
from empo.learning.collect import EpisodeState
from empo.learning.sampled.row_model import RowModel

__all__ = ["SampledPhase1Collector", "SampledPhase2Collector"]

Rows = Int64[Tensor, "batch dim"]
HumanPolicy = Callable[[Rows], Float[Tensor, "batch human goal action"]]


class _RowCollector(EpisodeState):
    """Episodes as rows, per-human goals and step counters."""

    saved_fields = ("rows", "steps", "goal_age", "goals")

    def __init__(
        self,
        model: RowModel,
        num_envs: int,
        max_episode_steps: int,
        generator: torch.Generator,
    ):
        self.model = model
        self.num_envs = num_envs
        self.max_episode_steps = max_episode_steps
        self.generator = generator
        dev = model.device
        self.rows = model.initial_state[None].repeat(num_envs, 1)
        self.steps = torch.zeros(num_envs, dtype=torch.long, device=dev)
        self.goal_age = torch.zeros(num_envs, dtype=torch.long, device=dev)
        self.goals = self._draw_goals()
        self._envs = torch.arange(num_envs, device=dev)
        self._humans = torch.arange(model.num_humans, device=dev)

    def _draw_goals(self) -> Int64[Tensor, "env human"]:
        weights = self.model.goal_weights.repeat(self.num_envs, 1)
        draw = torch.multinomial(weights, 1, generator=self.generator)
        return draw.reshape(self.num_envs, self.model.num_humans)

    def _sample(
        self,
        policy: Float[Tensor, "env n action"],
        mask: Bool[Tensor, "env n action"],
        epsilon: float,
    ) -> Int64[Tensor, "env n"]:
        """Draw from ``(1 - ε) policy + ε uniform(mask)``."""
        mixed = (1.0 - epsilon) * policy + epsilon * theory.uniform_policy(
            mask, policy.dtype
        )
        mixed = torch.where(
            mixed.sum(-1, keepdim=True) > 0, mixed, mask.to(mixed.dtype)
        )
        flat = mixed.reshape(-1, mixed.shape[-1])
        draw = torch.multinomial(flat, 1, generator=self.generator)
        return draw.reshape(mixed.shape[:-1])

    def _goal_policy(self, pi_h: Float[Tensor, "env human goal action"]) -> Tensor:
        return pi_h[self._envs[:, None], self._humans[None], self.goals]

    def _advance(
        self,
        actions: Int64[Tensor, "env agent"],
        redraw_goal: Callable[[Rows, Bool[Tensor, " env"]], Bool[Tensor, "env human"]],
    ) -> Rows:
        """Step every episode, restart finished ones, redraw goals; return the rows
        that were stepped from."""
        model = self.model
        visited = self.rows
        nxt = model.step(self.rows, actions, self.generator)
        self.steps += 1
        self.goal_age += 1
        done = model.terminal(nxt) | (self.steps >= self.max_episode_steps)
        nxt = torch.where(done[:, None], model.initial_state[None], nxt)
        self.steps = torch.where(done, torch.zeros_like(self.steps), self.steps)
        redraw = redraw_goal(nxt, done)
        fresh = self._draw_goals()
        self.goals = torch.where(redraw, fresh, self.goals)
        self.goal_age = torch.where(
            redraw.any(-1), torch.zeros_like(self.goal_age), self.goal_age
        )
        self.rows = nxt
        return visited


class SampledPhase1Collector(_RowCollector):
    """Phase-1 rollouts (module docstring).

    Parameters
    ----------
    model
        The row model.
    human_policy
        ``rows -> π_h(s, g)`` of the current phase-1 network.
    num_envs, max_episode_steps
        Parallel episodes and their length limit.
    generator
        Generator of every draw.
    """

    def __init__(
        self,
        model: RowModel,
        human_policy: HumanPolicy,
        num_envs: int,
        max_episode_steps: int,
        generator: torch.Generator,
    ):
        super().__init__(model, num_envs, max_episode_steps, generator)
        self.human_policy = human_policy

    def _reached(self, rows: Rows, done: Bool[Tensor, " env"]) -> Tensor:
        reached = self.model.in_goal(rows)[
            self._envs[:, None], self._humans, self.goals
        ]
        return reached | done[:, None]

    @torch.no_grad()
    def collect(self, frames: int, epsilon: float) -> Rows:
        """Run ``ceil(frames / num_envs)`` steps; return the first ``frames`` rows."""
        model = self.model
        visited = []
        for _ in range(math.ceil(frames / self.num_envs)):
            pi_h = self._goal_policy(self.human_policy(self.rows))
            humans = self._sample(pi_h, model.human_mask(self.rows), epsilon)
            mask_r = model.robot_mask(self.rows)
            robot = self._sample(
                theory.uniform_policy(mask_r)[:, None], mask_r[:, None], 0.0
            )[:, 0]
            actions = model.profiles(humans, robot)
            visited.append(self._advance(actions, self._reached))
        return torch.cat(visited)[:frames]


class SampledPhase2Collector(_RowCollector):
    """Phase-2 rollouts (module docstring).

    Parameters
    ----------
    model
        The row model.
    human_policy
        ``rows -> π_h(s, g)`` of the frozen phase 1.
    robot_policy
        ``(rows, β'_r) -> π_r(s)`` of the current ``Q_r`` (eq. 5).
    num_envs, max_episode_steps
        Parallel episodes and their length limit.
    goal_resample_steps
        ``N_g``.
    generator
        Generator of every draw.
    """

    def __init__(
        self,
        model: RowModel,
        human_policy: HumanPolicy,
        robot_policy: Callable[[Rows, float], Float[Tensor, "batch a_r"]],
        num_envs: int,
        max_episode_steps: int,
        goal_resample_steps: int,
        generator: torch.Generator,
    ):
        super().__init__(model, num_envs, max_episode_steps, generator)
        self.human_policy = human_policy
        self.robot_policy = robot_policy
        self.goal_resample_steps = goal_resample_steps

    def _expired(self, rows: Rows, done: Bool[Tensor, " env"]) -> Tensor:
        expired = done | (self.goal_age >= self.goal_resample_steps)
        return expired[:, None].expand(-1, self.model.num_humans)

    @torch.no_grad()
    def collect(self, frames: int, epsilon: float, beta_r: float) -> Rows:
        """Run ``ceil(frames / num_envs)`` steps; return the first ``frames`` rows."""
        model = self.model
        visited = []
        for _ in range(math.ceil(frames / self.num_envs)):
            pi_h = self._goal_policy(self.human_policy(self.rows))
            humans = self._sample(pi_h, model.human_mask(self.rows), 0.0)
            mask_r = model.robot_mask(self.rows)
            pi_r = self.robot_policy(self.rows, beta_r)
            robot = self._sample(pi_r[:, None], mask_r[:, None], epsilon)[:, 0]
            actions = model.profiles(humans, robot)
            visited.append(self._advance(actions, self._expired))
        return torch.cat(visited)[:frames]
