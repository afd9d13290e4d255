"""Batched rollouts of the two phases (the learned solver's collectors).

These are hand-written rather than TorchRL ``SyncDataCollector``s because the two-phase
structure needs what a collector's single policy cannot express: per-environment goals
for every human (phase 1: one goal per human per episode; phase 2: a goal profile
resampled every ``N_g`` steps), a phase-1 robot that plays ε-greedily *against* a
chosen human (minimising that human's value, THEORY.md phase 1), and a frozen phase-1
human policy next to the learning robot in phase 2. The rollouts only decide *which
states* are trained on (the losses take exact expectations over actions), and every
random draw goes through one ``torch.Generator`` whose state is checkpointed, so an
interrupted run resumes on exactly the same trajectory.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from jaxtyping import Bool, Float, Int64
from torch import Tensor

from empo import theory
from empo.learning.actor_critic import ActorCriticLoss
from empo.learning.losses import Phase1Loss, Phase2Loss
from empo.learning.model import TransitionModel

__all__ = ["EpisodeState", "Phase1Collector", "Phase2Collector"]


class EpisodeState:
    """``state_dict`` / ``load_state_dict`` of a collector's episode tensors.

    Subclasses name the tensor attributes in ``saved_fields`` (current states,
    step counters, goal ages, goals); the generator is saved apart by the trainer.
    """

    saved_fields: tuple[str, ...] = ()
    model: Any

    def state_dict(self) -> dict[str, Any]:
        """Copies of the episode tensors."""
        return {name: getattr(self, name).clone() for name in self.saved_fields}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what :meth:`state_dict` saved."""
        for name in self.saved_fields:
            setattr(self, name, state[name].to(self.model.device))


class _Collector(EpisodeState):
    """Shared state: a batch of environments with per-human goals and step counters."""

    saved_fields = ("states", "steps", "goal_age", "goals")

    def __init__(
        self,
        model: TransitionModel,
        num_envs: int,
        max_episode_steps: int,
        generator: torch.Generator,
    ):
        self.model = model
        self.num_envs = num_envs
        self.max_episode_steps = max_episode_steps
        self.generator = generator
        dev = model.device
        self.states = torch.full((num_envs,), model.initial_state, device=dev)
        self.steps = torch.zeros(num_envs, dtype=torch.long, device=dev)
        self.goal_age = torch.zeros(num_envs, dtype=torch.long, device=dev)
        self.goals = self._draw_goals(num_envs)
        robot_joint = torch.arange(model.robot_actions, device=dev)
        self.robot_parts = model.split_robot_action(robot_joint)

    def _draw_goals(self, n: int) -> Int64[Tensor, "n human"]:
        weights = self.model.goal_weights.repeat(n, 1)
        draw = torch.multinomial(weights, 1, generator=self.generator)
        return draw.reshape(n, self.model.num_humans)

    def _sample(self, probs: Float[Tensor, "n action"]) -> Int64[Tensor, " n"]:
        return torch.multinomial(probs, 1, generator=self.generator)[:, 0]

    def _explore(
        self,
        policy: Float[Tensor, "*n action"],
        mask: Bool[Tensor, "*n action"],
        epsilon: float,
    ) -> Float[Tensor, "*n action"]:
        uniform = theory.uniform_policy(mask, policy.dtype)
        return (1.0 - epsilon) * policy + epsilon * uniform

    def _all_robot_joints(
        self, human_actions: Int64[Tensor, "n human"]
    ) -> Int64[Tensor, "n a_r"]:
        """Joint indices of every robot action combined with fixed human actions."""
        model = self.model
        n = human_actions.shape[0]
        actions = torch.zeros(
            n,
            model.robot_actions,
            len(model.counts),
            dtype=torch.long,
            device=model.device,
        )
        for h, agent in enumerate(model.humans):
            actions[:, :, agent] = human_actions[:, h, None]
        for r, agent in enumerate(model.robots):
            actions[:, :, agent] = self.robot_parts[None, :, r]
        return model.joint_index(actions.reshape(-1, actions.shape[-1])).reshape(n, -1)

    def _advance(
        self, joint: Int64[Tensor, " n"], resample_every: int | None
    ) -> Int64[Tensor, " n"]:
        """Step every environment; reset finished ones; return the states left."""
        model = self.model
        visited = self.states
        nxt = model.sample_step(self.states, joint, self.generator)
        self.steps += 1
        self.goal_age += 1
        done = model.terminal[nxt] | (self.steps >= self.max_episode_steps)
        nxt = torch.where(done, torch.full_like(nxt, model.initial_state), nxt)
        self.steps = torch.where(done, torch.zeros_like(self.steps), self.steps)
        redraw = done.clone()
        if resample_every is not None:
            redraw |= self.goal_age >= resample_every
        fresh = self._draw_goals(self.num_envs)
        self.goals = torch.where(redraw[:, None], fresh, self.goals)
        self.goal_age = torch.where(
            redraw, torch.zeros_like(self.goal_age), self.goal_age
        )
        self.states = nxt
        return visited


class Phase1Collector(_Collector):
    """Phase-1 rollouts: humans follow eq. (2) for their episode goal with extra
    exploration ε, and the robot minimises the value of a randomly chosen human
    ε-greedily (THEORY.md, phase 1).

    Parameters
    ----------
    model
        The batched world model.
    loss
        The phase-1 loss (its online network gives the current policies).
    num_envs
        Parallel environments.
    max_episode_steps
        Episodes are cut (and restart from the initial state) after that many steps.
    generator
        The random generator of the rollouts.
    """

    def __init__(
        self,
        model: TransitionModel,
        loss: Phase1Loss,
        num_envs: int,
        max_episode_steps: int,
        generator: torch.Generator,
    ):
        super().__init__(model, num_envs, max_episode_steps, generator)
        self.loss = loss

    @torch.no_grad()
    def collect(self, frames: int, epsilon: float) -> Int64[Tensor, " frames"]:
        """Run ``ceil(frames / num_envs)`` steps and return the visited states."""
        model = self.model
        rows = torch.arange(self.num_envs, device=model.device)
        visited = []
        for _ in range(math.ceil(frames / self.num_envs)):
            values = self.loss.phase1_values(self.loss.z_network_params, self.states)
            pi_h = values["pi_h"][
                rows[:, None], torch.arange(model.num_humans), self.goals
            ]
            mask_h = model.human_mask(self.states)
            human_actions = torch.stack(
                [
                    self._sample(self._explore(pi_h[:, h], mask_h[:, h], epsilon))
                    for h in range(model.num_humans)
                ],
                dim=1,
            )
            joints = self._all_robot_joints(human_actions)
            target = torch.randint(
                model.num_humans,
                (self.num_envs,),
                generator=self.generator,
                device=model.device,
            )
            z = self.loss.joint_backups(self.loss.z_network_params, self.states)
            z = z[rows, target, self.goals[rows, target]]
            mask_r = model.robot_mask(self.states)
            worst = torch.gather(z, 1, joints).masked_fill(~mask_r, math.inf)
            greedy = torch.nn.functional.one_hot(worst.argmin(-1), model.robot_actions)
            robot = self._sample(self._explore(greedy.to(z.dtype), mask_r, epsilon))
            joint = joints[rows, robot]
            visited.append(self._advance(joint, None))
        return torch.cat(visited)[:frames]


class Phase2Collector(_Collector):
    """Phase-2 rollouts: humans follow the frozen phase-1 policy for a goal profile
    resampled every ``N_g`` steps; the robot follows eq. (5) at the annealed ``β'_r``
    from the online ``Q_r`` (DQN variant) or the actor (actor-critic variant), mixed
    with ε uniform exploration.

    Parameters
    ----------
    model
        The batched world model.
    loss
        The phase-2 loss (its ``acting_policy`` gives the robot policy).
    num_envs
        Parallel environments.
    max_episode_steps
        Episodes are cut after that many steps.
    goal_resample_steps
        ``N_g``.
    generator
        The random generator of the rollouts.
    """

    def __init__(
        self,
        model: TransitionModel,
        loss: Phase2Loss | ActorCriticLoss,
        num_envs: int,
        max_episode_steps: int,
        goal_resample_steps: int,
        generator: torch.Generator,
    ):
        super().__init__(model, num_envs, max_episode_steps, generator)
        self.loss = loss
        self.goal_resample_steps = goal_resample_steps

    @torch.no_grad()
    def collect(
        self, frames: int, epsilon: float, beta_r: float
    ) -> Int64[Tensor, " frames"]:
        """Run ``ceil(frames / num_envs)`` steps and return the visited states."""
        model = self.model
        rows = torch.arange(self.num_envs, device=model.device)
        visited = []
        for _ in range(math.ceil(frames / self.num_envs)):
            pi_h = self.loss.pi_h[
                self.states[:, None], torch.arange(model.num_humans), self.goals
            ]
            human_actions = torch.stack(
                [self._sample(pi_h[:, h]) for h in range(model.num_humans)], dim=1
            )
            mask_r = model.robot_mask(self.states)
            pi_r = self.loss.acting_policy(self.states, beta_r)
            robot = self._sample(self._explore(pi_r, mask_r, epsilon))
            joint = self._all_robot_joints(human_actions)[rows, robot]
            visited.append(self._advance(joint, self.goal_resample_steps))
        return torch.cat(visited)[:frames]
