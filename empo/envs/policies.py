"""Solutions as TorchRL policies: ``TensorDictModule``s that act in a :class:`~empo.
envs.world_env.WorldEnv`.

Built generically from the :class:`~empo.solution.Solution` protocol, so they work for
every solution: an exact one looks each state row up (row → compiled id, by the
compiled world's row hash, vectorised), a learned one runs its networks.

* :func:`robot_policy`: reads ``"state"``, writes the robots' joint-action
  probabilities ``π_r(s)`` (eq. 5) to ``"robot_probs"``, the joint action drawn (or
  the most likely one) to ``"robot_joint_action"`` and each robot's part of it to
  ``("robots", "action")``.
* :func:`human_policy`: reads ``"state"`` and ``("humans", "goal")``, writes
  ``π_h(s, g_h)`` (eq. 2) to ``("humans", "probs")`` and the actions to
  ``("humans", "action")``. With ``goal_conditioned=False`` each human plays its
  goal-marginal policy ``π̄_h(s)`` instead, the humans the robot reasons about in
  eqs. (4) and (6): under it, the discounted return of the power reward of
  :class:`~empo.envs.power_reward.PowerReward` has expectation ``V_r(s_0)``.
* :func:`joint_policy`: both, one after the other.

``deterministic=True`` takes the most likely action (the distribution's mode),
``False`` samples; TorchRL's ``set_exploration_type`` overrides either, as for any
probabilistic module (collectors sample unless told otherwise). At a terminal state
the solution has no policy; the modules then act uniformly (the environment ignores
actions there).
"""

from __future__ import annotations

import torch
from jaxtyping import Float, Int64
from tensordict import NestedKey
from tensordict.nn import (
    InteractionType,
    ProbabilisticTensorDictModule,
    TensorDictModule,
    TensorDictSequential,
)
from torch import Tensor, nn

from empo.envs import keys
from empo.solution import Solution, marginal_human_probs, robot_action_parts
from empo.worlds.base import WorldModel

__all__ = ["human_policy", "joint_policy", "robot_policy"]


def _flat(states: Int64[Tensor, "*batch dim"]) -> Int64[Tensor, "n dim"]:
    return states.reshape(-1, states.shape[-1])


def _or_uniform(
    probs: Float[Tensor, "*batch action"],
) -> Float[Tensor, "*batch action"]:
    """``probs`` as float32, rows without mass (terminal states) uniform."""
    probs = probs.to(torch.float32)
    empty = probs.sum(-1, keepdim=True) <= 0
    return torch.where(empty, torch.ones_like(probs) / probs.shape[-1], probs)


class RobotProbs(nn.Module):
    """``π_r(s)`` of a solution on state rows of any batch shape."""

    def __init__(self, solution: Solution):
        super().__init__()
        self.solution = solution

    def forward(
        self, states: Int64[Tensor, "*batch dim"]
    ) -> Float[Tensor, "*batch robot_action"]:
        """Joint robot action probabilities (eq. 5)."""
        probs = self.solution.robot_probs(_flat(states)).to(states.device)
        return _or_uniform(probs).reshape(*states.shape[:-1], -1)


class HumanProbs(nn.Module):
    """``π_h(s, g_h)`` of a solution, or the goal marginal ``π̄_h(s)``."""

    def __init__(self, solution: Solution, goal_weights: Float[Tensor, "human goal"]):
        super().__init__()
        self.solution = solution
        self.goal_weights = goal_weights

    def forward(
        self,
        states: Int64[Tensor, "*batch dim"],
        goals: Int64[Tensor, "*batch human"] | None = None,
    ) -> Float[Tensor, "*batch human action"]:
        """Per-human action probabilities (eq. 2; goal-marginal without goals)."""
        rows = _flat(states)
        if goals is not None:
            probs = self.solution.human_probs(rows, goals.reshape(rows.shape[0], -1))
        else:
            probs = marginal_human_probs(self.solution, rows, self.goal_weights)
        probs = _or_uniform(probs.to(states.device))
        return probs.reshape(*states.shape[:-1], *probs.shape[1:])


class RobotParts(nn.Module):
    """Each robot's action of a joint robot action (mixed radix over the robots)."""

    def __init__(self, world: WorldModel):
        super().__init__()
        counts = tuple(len(names) for names in world.action_names)
        self.register_buffer("parts", robot_action_parts(counts, tuple(world.robots)))

    def forward(self, joint: Int64[Tensor, "*batch"]) -> Int64[Tensor, "*batch robot"]:
        """``[*batch, R]`` per-robot actions."""
        return self.parts[joint]


def _categorical(
    probs: NestedKey, action: NestedKey, deterministic: bool
) -> ProbabilisticTensorDictModule:
    """A categorical draw (or its mode) of ``action`` from the probabilities at
    ``probs``."""
    return ProbabilisticTensorDictModule(
        in_keys={"probs": probs},
        out_keys=[action],
        distribution_class=torch.distributions.Categorical,
        default_interaction_type=(
            InteractionType.MODE if deterministic else InteractionType.RANDOM
        ),
    )


def robot_policy(
    solution: Solution, world: WorldModel, *, deterministic: bool = False
) -> TensorDictSequential:
    """The robots' policy ``π_r`` of a solution as a TorchRL policy module.

    Parameters
    ----------
    solution
        Any solution.
    world
        The world model of the environment (its robots and action counts), e.g.
        ``env.world``.
    deterministic
        Most likely joint action instead of a sample.
    """
    return TensorDictSequential(
        TensorDictModule(
            RobotProbs(solution), in_keys=[keys.STATE], out_keys=[keys.ROBOT_PROBS]
        ),
        _categorical(keys.ROBOT_PROBS, keys.ROBOT_JOINT_ACTION, deterministic),
        TensorDictModule(
            RobotParts(world),
            in_keys=[keys.ROBOT_JOINT_ACTION],
            out_keys=[keys.ROBOT_ACTION],
        ),
    )


def human_policy(
    solution: Solution,
    world: WorldModel,
    *,
    deterministic: bool = False,
    goal_conditioned: bool = True,
) -> TensorDictSequential:
    """The humans' policy of a solution as a TorchRL policy module.

    Parameters
    ----------
    solution
        Any solution.
    world
        The world model of the environment (its goal weights), e.g. ``env.world``.
    deterministic
        Most likely action instead of a sample.
    goal_conditioned
        ``π_h(s, g_h)`` for the goal in ``("humans", "goal")`` (default), or the
        goal-marginal ``π̄_h(s)`` (the goal entry is not read).
    """
    in_keys = [keys.STATE, keys.HUMAN_GOAL] if goal_conditioned else [keys.STATE]
    return TensorDictSequential(
        TensorDictModule(
            HumanProbs(solution, world.goal_weights),
            in_keys=in_keys,
            out_keys=[keys.HUMAN_PROBS],
        ),
        _categorical(keys.HUMAN_PROBS, keys.HUMAN_ACTION, deterministic),
    )


def joint_policy(
    solution: Solution,
    world: WorldModel,
    *,
    deterministic: bool = False,
    goal_conditioned: bool = True,
) -> TensorDictSequential:
    """:func:`human_policy` then :func:`robot_policy`: every agent of the
    environment acts (same arguments)."""
    return TensorDictSequential(
        human_policy(
            solution,
            world,
            deterministic=deterministic,
            goal_conditioned=goal_conditioned,
        ),
        robot_policy(solution, world, deterministic=deterministic),
    )
