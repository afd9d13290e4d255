"""A world model seen through batches of state *rows*, never enumerated.

:class:`RowModel` wraps any :class:`~empo.worlds.base.WorldModel` (or, through
:class:`~empo.worlds.rows.CompiledRows`, a compiled world whose rows are its state ids) and answers what
the sampled learned solver needs for a batch of integer state rows: terminal flags,
per-agent action masks, goal membership, the successors of given per-agent action
profiles (all of them with their probabilities, or one drawn per profile), and the
algebra of joint robot actions (a mixed radix over ``world.robots``, the first robot
the most significant digit, as in :class:`~empo.worlds.compiled.CompiledWorld`).

Nothing here is proportional to the number of states or of joint actions of the
world: the cost of a call is the number of (row, action profile) pairs it is given.
"""

from __future__ import annotations

import math

import torch
from jaxtyping import Bool, Float, Int64
from torch import Tensor

from empo.worlds.base import WorldModel
from empo.worlds.rows import CompiledRows

__all__ = ["CompiledRows", "RowModel"]


class RowModel:
    """Batched access to a world model by state rows (see the module docstring).

    Parameters
    ----------
    world
        The world model.
    device
        Device of the rows and of every returned tensor.

    Attributes
    ----------
    counts
        Action count per agent.
    num_humans, num_goals, max_human_actions
        ``H``, the padded goal count ``G`` and the largest human action count.
    robot_actions
        ``A_r``: number of joint robot actions (product of the robots' counts).
    robot_parts
        ``[A_r, robot]`` per-robot action of every joint robot action.
    initial_state
        ``[dim]`` the first initial state row.
    """

    def __init__(self, world: WorldModel, device: torch.device | str = "cpu"):
        if not world.robots:
            raise ValueError("the learned solver needs at least one robot agent")
        if not world.humans:
            raise ValueError("the learned solver needs at least one human agent")
        self.world = world
        self.device = torch.device(device)
        self.counts = tuple(len(names) for names in world.action_names)
        self.humans = tuple(world.humans)
        self.robots = tuple(world.robots)
        self.num_agents = len(self.counts)
        self.num_humans = len(self.humans)
        self.max_human_actions = max(self.counts[i] for i in self.humans)
        self.robot_actions = math.prod(self.counts[i] for i in self.robots)
        dev = self.device
        self.goal_weights = world.goal_weights.to(dev, torch.float32)
        self.num_goals = int(self.goal_weights.shape[1])
        self.goal_mask = self.goal_weights > 0
        self.rest_action = torch.tensor(
            [
                -1 if world.rest_action[i] is None else int(world.rest_action[i])
                for i in self.humans
            ],
            device=dev,
        )
        self.initial_state = world.initial_states()[0].to(dev, torch.long)
        self.state_dim = int(self.initial_state.shape[0])
        parts = []
        rest = torch.arange(self.robot_actions, device=dev)
        for agent in reversed(self.robots):
            parts.append(rest % self.counts[agent])
            rest = rest // self.counts[agent]
        self.robot_parts = torch.stack(parts[::-1], dim=-1)
        self._human_index = torch.tensor(self.humans, device=dev)
        self._robot_index = torch.tensor(self.robots, device=dev)

    def terminal(self, rows: Int64[Tensor, "batch dim"]) -> Bool[Tensor, " batch"]:
        """Whether each row is terminal."""
        return self.world.is_terminal(rows).to(self.device)

    def human_mask(
        self, rows: Int64[Tensor, "batch dim"]
    ) -> Bool[Tensor, "batch human action"]:
        """Allowed actions of each human, padded to the largest human action count."""
        mask = self.world.action_mask(rows).to(self.device)
        mask = mask[:, self._human_index, : self.max_human_actions]
        if mask.shape[-1] < self.max_human_actions:
            pad = self.max_human_actions - mask.shape[-1]
            mask = torch.nn.functional.pad(mask, (0, pad))
        return mask

    def robot_mask(self, rows: Int64[Tensor, "batch dim"]) -> Bool[Tensor, "batch a_r"]:
        """Allowed joint robot actions (every robot's part allowed), none if terminal."""
        mask = self.world.action_mask(rows).to(self.device)
        robots = mask[:, self._robot_index]
        allowed = torch.gather(
            robots,
            2,
            self.robot_parts.T[None].expand(rows.shape[0], -1, -1),
        ).all(1)
        return allowed & ~self.terminal(rows)[:, None]

    def in_goal(
        self, rows: Int64[Tensor, "batch dim"]
    ) -> Bool[Tensor, "batch human goal"]:
        """Goal membership ``s ∈ g`` for every human and (real) goal."""
        return self.world.goal_membership(rows).to(self.device) & self.goal_mask

    def profiles(
        self,
        human_actions: Int64[Tensor, "*batch human"],
        robot_action: Int64[Tensor, "*batch"],
    ) -> Int64[Tensor, "*batch agent"]:
        """Per-agent action vectors from human actions and a joint robot action."""
        lead = torch.broadcast_shapes(human_actions.shape[:-1], robot_action.shape)
        out = torch.zeros(*lead, self.num_agents, dtype=torch.long, device=self.device)
        out[..., self._human_index] = human_actions.expand(*lead, self.num_humans)
        robots = self.robot_parts[robot_action]
        out[..., self._robot_index] = robots.expand(*lead, len(self.robots))
        return out

    def successors(
        self,
        rows: Int64[Tensor, "batch dim"],
        actions: Int64[Tensor, "batch n agent"],
        sampled: bool = False,
        generator: torch.Generator | None = None,
    ) -> tuple[Int64[Tensor, "batch n k dim"], Float[Tensor, "batch n k"]]:
        """Successors of ``n`` action profiles per row: all with their
        probabilities, or (``sampled``) one drawn per profile with probability 1.

        One batched call of ``world.transitions`` on ``batch * n`` pairs.
        """
        b, n = actions.shape[:2]
        flat_rows = rows[:, None].expand(b, n, rows.shape[-1]).reshape(b * n, -1)
        succ, prob = self.world.transitions(flat_rows, actions.reshape(b * n, -1))
        succ = succ.to(self.device)
        prob = prob.to(self.device, torch.float32)
        if sampled:
            allowed = prob.sum(-1) > 0
            safe = torch.where(allowed[:, None], prob, torch.ones_like(prob))
            pick = torch.multinomial(safe, 1, generator=generator)
            succ = torch.gather(succ, 1, pick[..., None].expand(-1, 1, succ.shape[-1]))
            prob = allowed[:, None].to(prob.dtype)
        return succ.reshape(b, n, *succ.shape[1:]), prob.reshape(b, n, -1)

    def step(
        self,
        rows: Int64[Tensor, "batch dim"],
        actions: Int64[Tensor, "batch agent"],
        generator: torch.Generator | None = None,
    ) -> Int64[Tensor, "batch dim"]:
        """Draw one successor row of each (row, action profile)."""
        succ, _ = self.successors(rows, actions[:, None], True, generator)
        return succ[:, 0, 0]

    def uniform_human_actions(
        self,
        mask: Bool[Tensor, "batch human action"],
        samples: int,
        generator: torch.Generator | None = None,
    ) -> Int64[Tensor, "batch samples human"]:
        """``samples`` draws per row of every human's action, uniform over the
        allowed ones (``μ_-h``, THEORY.md default belief)."""
        weights = mask.to(torch.float32)
        weights = torch.where(
            weights.sum(-1, keepdim=True) > 0, weights, torch.ones_like(weights)
        )
        return sample_actions(weights, samples, generator)


def sample_actions(
    probs: Float[Tensor, "batch human action"],
    samples: int,
    generator: torch.Generator | None = None,
) -> Int64[Tensor, "batch samples human"]:
    """``samples`` independent draws of each human's action from ``probs``."""
    b, h, a = probs.shape
    draw = torch.multinomial(
        probs.reshape(b * h, a), samples, replacement=True, generator=generator
    )
    return draw.reshape(b, h, samples).transpose(1, 2)
