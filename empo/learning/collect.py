"""Batched rollouts of the two phases (the learned solver's collectors).

``num_envs`` episodes run in parallel on the data source (:mod:`empo.learning.data`)
from the initial state; every step draws one successor per episode, and episodes
restart from the initial state when they reach a terminal state or
``max_episode_steps``. The rollouts only decide *which states* are trained on (the
targets take their own expectations over actions), and every random draw goes through
one ``torch.Generator`` whose state is checkpointed, so an interrupted run resumes on
exactly the same trajectory.

These are hand-written rather than TorchRL ``Collector``s because the two-phase
structure needs what a collector's single policy cannot express:

* phase 1: each human pursues its own goal, drawn by the goal weights and redrawn
  when reached (or at a restart), following eq. (2) of the current network mixed with
  ε uniform exploration; the robot plays ε-greedily *against* a randomly chosen human,
  taking the robot action that minimises that human's expected backup
  (:func:`~empo.learning.targets.robot_backups`, THEORY.md phase 1);
* phase 2: the humans follow the frozen phase-1 ``π_h`` for a goal profile redrawn
  every ``N_g`` steps (and at each restart); the robot follows the loss's acting
  policy (eq. 5 at the annealed ``β'_r``, or the actor) mixed with ε exploration.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from jaxtyping import Bool, Float, Int64
from tensordict import TensorDict
from torch import Tensor

from empo import theory
from empo.goals import sample_goal_profiles
from empo.learning.data import WorldData
from empo.learning.targets import robot_backups

__all__ = ["Phase1Collector", "Phase2Collector"]


class _Collector:
    """Episodes (states, step counters, goal ages, per-human goals) and their
    ``state_dict``.

    Parameters
    ----------
    data
        The data source.
    loss
        The phase's loss: phase 1 its online ``π_h`` and ``V^m_h``; phase 2 its
        ``human_policy`` and ``acting_policy``.
    num_envs, max_episode_steps
        Parallel episodes and their length limit.
    generator
        Generator of every draw.
    goal_resample_steps
        ``N_g`` (phase 2).
    """

    def __init__(
        self,
        data: WorldData,
        loss: Any,
        num_envs: int,
        max_episode_steps: int,
        generator: torch.Generator,
        goal_resample_steps: int = 0,
    ):
        self.data = data
        self.loss = loss
        self.goal_resample_steps = goal_resample_steps
        self.num_envs = num_envs
        self.max_episode_steps = max_episode_steps
        self.generator = generator
        dev = data.device
        self._initial = data.initial().expand(num_envs)
        self.states = self._initial.clone()
        self.steps = torch.zeros(num_envs, dtype=torch.long, device=dev)
        self.goal_age = torch.zeros(num_envs, dtype=torch.long, device=dev)
        self.goals = self._draw_goals()
        self._envs = torch.arange(num_envs, device=dev)
        self._humans = torch.arange(data.num_humans, device=dev)

    def state_dict(self) -> dict[str, Any]:
        """Copies of the episode tensors (the generator is saved by the trainer)."""
        return {
            "states": self.states.to_dict(),
            "steps": self.steps.clone(),
            "goal_age": self.goal_age.clone(),
            "goals": self.goals.clone(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what :meth:`state_dict` saved."""
        dev = self.data.device
        self.states = TensorDict(state["states"], batch_size=[self.num_envs]).to(dev)
        self.steps = state["steps"].to(dev)
        self.goal_age = state["goal_age"].to(dev)
        self.goals = state["goals"].to(dev)

    def _draw_goals(self) -> Int64[Tensor, "env human"]:
        return sample_goal_profiles(
            self.data.goal_weights, self.num_envs, self.generator
        )

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

    def _step(self, actions: Int64[Tensor, "env agent"]) -> tuple[TensorDict, Tensor]:
        """Step every episode; return the successors and which episodes ended."""
        data = self.data
        nxt = data.step(self.states, actions, self.generator)
        self.steps += 1
        self.goal_age += 1
        done = data.terminal(nxt) | (self.steps >= self.max_episode_steps)
        nxt = self._initial.where(done, nxt)
        self.steps = torch.where(done, torch.zeros_like(self.steps), self.steps)
        return nxt, done

    def _finish(self, nxt: TensorDict, redraw: Bool[Tensor, "env human"]) -> TensorDict:
        fresh = self._draw_goals()
        self.goals = torch.where(redraw, fresh, self.goals)
        self.goal_age = torch.where(
            redraw.any(-1), torch.zeros_like(self.goal_age), self.goal_age
        )
        visited = self.states
        self.states = nxt
        return visited


class Phase1Collector(_Collector):
    """Phase-1 rollouts (module docstring; arguments of :class:`_Collector`)."""

    @torch.no_grad()
    def collect(self, frames: int, epsilon: float) -> TensorDict:
        """Run ``ceil(frames / num_envs)`` steps; return the first ``frames`` states."""
        data = self.data
        loss = self.loss
        visited = []
        for _ in range(math.ceil(frames / self.num_envs)):
            pi_h = self._goal_policy(loss.policy(self.states))
            humans = self._sample(pi_h, data.human_mask(self.states), epsilon)
            target = torch.randint(
                data.num_humans,
                (self.num_envs,),
                generator=self.generator,
                device=data.device,
            )
            backups = robot_backups(
                data,
                self.states,
                humans,
                lambda s: loss.phase1_values(loss.q_network_params, s)["v_m"],
                loss.theory_params.gamma_h,
            )
            mine = backups[self._envs, :, target, self.goals[self._envs, target]]
            mask_r = data.robot_mask(self.states)
            worst = mine.masked_fill(~mask_r, math.inf).argmin(-1)
            greedy = torch.nn.functional.one_hot(worst, data.robot_actions)
            robot = self._sample(
                greedy.to(mine.dtype)[:, None], mask_r[:, None], epsilon
            )[:, 0]
            nxt, done = self._step(data.profiles(humans, robot))
            reached = data.in_goal(nxt)[self._envs[:, None], self._humans, self.goals]
            visited.append(self._finish(nxt, reached | done[:, None]))
        return torch.cat(visited)[:frames]


class Phase2Collector(_Collector):
    """Phase-2 rollouts (module docstring; arguments of :class:`_Collector`)."""

    @torch.no_grad()
    def collect(self, frames: int, epsilon: float, beta_r: float) -> TensorDict:
        """Run ``ceil(frames / num_envs)`` steps; return the first ``frames`` states."""
        data = self.data
        visited = []
        for _ in range(math.ceil(frames / self.num_envs)):
            pi_h = self._goal_policy(self.loss.human_policy(self.states))
            humans = self._sample(pi_h, data.human_mask(self.states), 0.0)
            mask_r = data.robot_mask(self.states)
            pi_r = self.loss.acting_policy(self.states, beta_r)
            robot = self._sample(pi_r[:, None], mask_r[:, None], epsilon)[:, 0]
            nxt, done = self._step(data.profiles(humans, robot))
            expired = done | (self.goal_age >= self.goal_resample_steps)
            redraw = expired[:, None].expand(-1, data.num_humans)
            visited.append(self._finish(nxt, redraw))
        return torch.cat(visited)[:frames]
