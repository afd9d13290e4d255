"""The world as the learned solver sees it: batched explicit transitions by state id.

:class:`TransitionModel` wraps a :class:`~empo.worlds.compiled.CompiledWorld` as a
batched world model whose state is the state id. It answers, for a batch of states,
what the losses of :mod:`empo.learning.losses` need: every joint action's successors
and probabilities (for *expected* targets, the exact expectation over successors) or
one successor drawn per joint action (for *sampled* targets), goal membership, action
masks and terminal flags. It also holds the joint-action algebra of THEORY.md: the
cautious value of eq. (1) (the minimum over robot actions inside the expectation over
the other humans' actions) and the product weights of eqs. (4) and (6).

Generic :class:`~empo.worlds.base.WorldModel` worlds are first compiled (by the world
registry), so the learned solver reads the same tensors as the exact one; the networks
never see the whole table, only batches of states drawn from rollouts or uniformly.
"""

from __future__ import annotations

import math

import torch
from jaxtyping import Bool, Float, Int64
from torch import Tensor

from empo.worlds.compiled import CompiledWorld

__all__ = ["TransitionModel"]


class TransitionModel:
    """A compiled world as a batched explicit world model (state = state id).

    Parameters
    ----------
    world
        The compiled world.
    device
        Device of all tensors.

    Attributes
    ----------
    num_states, num_joint, num_humans, num_goals
        Sizes ``S``, ``J`` (joint actions), ``H`` and the padded goal count ``G``.
    counts
        Per agent, its action count (the mixed-radix bases of the joint action).
    robot_actions
        ``A_r``: the number of joint robot actions (mixed radix over ``robots``).
    """

    def __init__(self, world: CompiledWorld, device: torch.device | str = "cpu"):
        robots = tuple(world.robots)
        if list(robots) != sorted(robots):
            raise ValueError(
                f"world.robots must be listed in agent order, got {world.robots}"
            )
        if not world.robots:
            raise ValueError("the learned solver needs at least one robot agent")
        self.world = world
        self.device = torch.device(device)
        self.counts = tuple(len(names) for names in world.action_names)
        self.humans = tuple(world.humans)
        self.robots = robots
        self.num_states = int(world.terminal.shape[0])
        self.num_joint = int(world.successors.shape[1])
        self.num_humans = len(self.humans)
        self.num_goals = int(world.goal_weights.shape[1])
        self.robot_actions = math.prod(self.counts[i] for i in robots)
        self.max_human_actions = max(self.counts[i] for i in self.humans)
        dev = self.device
        self.successors = world.successors.to(dev)
        self.probabilities = world.probabilities.to(dev, torch.float32)
        self.terminal = world.terminal.to(dev)
        self.action_mask = world.action_mask.to(dev)
        self.goal_membership = world.goal_membership.to(dev)
        self.goal_weights = world.goal_weights.to(dev, torch.float32)
        self.goal_mask = self.goal_weights > 0
        self.initial_state = int(world.initial_state)
        self.rest_action = torch.tensor(
            [
                -1 if world.rest_action[i] is None else int(world.rest_action[i])
                for i in self.humans
            ],
            device=dev,
        )
        self.joint_mask = world.probabilities.to(dev).sum(-1) > 0

    def human_mask(
        self, states: Int64[Tensor, " batch"]
    ) -> Bool[Tensor, "batch human action"]:
        """Allowed actions of each human, padded to the largest human action count."""
        mask = self.action_mask[states][:, list(self.humans)]
        return mask[..., : self.max_human_actions]

    def robot_mask(self, states: Int64[Tensor, " batch"]) -> Bool[Tensor, "batch a_r"]:
        """Allowed joint robot actions (every robot's part allowed)."""
        mask = torch.ones(states.shape[0], 1, dtype=torch.bool, device=self.device)
        for agent in self.robots:
            allowed = self.action_mask[states, agent, : self.counts[agent]]
            mask = (mask[:, :, None] & allowed[:, None, :]).flatten(1)
        return mask & ~self.terminal[states, None]

    def in_goal(
        self, states: Int64[Tensor, "*batch"]
    ) -> Bool[Tensor, "*batch human goal"]:
        """Goal membership ``s in g`` for every human and goal."""
        return self.goal_membership.permute(2, 0, 1)[states]

    def successors_of(
        self,
        states: Int64[Tensor, " batch"],
        sampled: bool,
        generator: torch.Generator | None = None,
    ) -> tuple[Int64[Tensor, "batch joint k"], Float[Tensor, "batch joint k"]]:
        """Successors of every joint action: all of them, or one drawn per action.

        Parameters
        ----------
        states
            State ids.
        sampled
            If True, draw one successor per (state, joint action) from ``P`` and give
            it probability 1 (0 for disallowed joint actions); otherwise return all
            ``K`` successors with their probabilities (exact expectation).
        generator
            Random generator for the draw.
        """
        succ = self.successors[states]
        prob = self.probabilities[states]
        if not sampled:
            return succ, prob
        flat = prob.reshape(-1, prob.shape[-1])
        allowed = flat.sum(-1) > 0
        safe = torch.where(allowed[:, None], flat, torch.ones_like(flat))
        pick = torch.multinomial(safe, 1, generator=generator).reshape(*prob.shape[:2])
        one = torch.gather(succ, 2, pick[..., None])
        return one, allowed.reshape(prob.shape[:2])[..., None].to(prob.dtype)

    def sample_step(
        self,
        states: Int64[Tensor, " batch"],
        joint: Int64[Tensor, " batch"],
        generator: torch.Generator | None = None,
    ) -> Int64[Tensor, " batch"]:
        """Draw one successor of each (state, joint action) pair."""
        prob = self.probabilities[states, joint]
        pick = torch.multinomial(prob, 1, generator=generator)[:, 0]
        return self.successors[states, joint, pick]

    def joint_index(
        self, actions: Int64[Tensor, "batch agent"]
    ) -> Int64[Tensor, " batch"]:
        """Mixed-radix joint index of per-agent actions (agent 0 most significant)."""
        joint = torch.zeros_like(actions[:, 0])
        for agent, count in enumerate(self.counts):
            joint = joint * count + actions[:, agent]
        return joint

    def split_robot_action(
        self, robot_joint: Int64[Tensor, " batch"]
    ) -> Int64[Tensor, "batch robot"]:
        """Per-robot actions of a joint robot action (mixed radix over ``robots``)."""
        parts = []
        rest = robot_joint
        for agent in reversed(self.robots):
            parts.append(rest % self.counts[agent])
            rest = rest // self.counts[agent]
        return torch.stack(parts[::-1], dim=-1)

    def cautious_q(
        self,
        z: Float[Tensor, "*batch joint"],
        human: int,
        states: Int64[Tensor, "*batch"],
    ) -> Float[Tensor, "*batch action"]:
        """Eq. (1) from per-joint-action backups: ``Σ_{a_-h} μ_-h min_{a_r} z``.

        ``z[..., j]`` is ``Σ_{s'} P(s'|s,j) [U_h + γ_h 1[s'∉g] V^m_h(s',g)]`` for every
        joint action ``j``. The minimum runs over the allowed robot actions and sits
        inside the expectation over the other humans' actions, which ``μ_-h`` draws
        independently and uniformly over their allowed actions (THEORY.md, default
        belief; the ``habitual`` belief coincides with it while ``π⁰_h`` is the
        default uniform policy, the only one the learned solver supports). Returns ``Q^m_h(s, g, ·)`` padded to the largest human action count
        (padding and disallowed actions are 0).

        Parameters
        ----------
        z
            Per-joint-action backups; leading axes broadcast with ``states``.
        human
            Index into ``humans``.
        states
            State ids (for the action masks), with as many axes as ``z`` has
            leading axes (use unit axes to broadcast).
        """
        agent_h = self.humans[human]
        lead = z.shape[:-1]
        view = z.reshape(*lead, *self.counts)
        n = len(self.counts)
        mask = self.action_mask[states]
        inf = torch.tensor(math.inf, dtype=z.dtype, device=z.device)
        for agent in self.robots:
            allowed = mask[..., agent, : self.counts[agent]]
            shape = [1] * n
            shape[agent] = self.counts[agent]
            allowed = allowed.reshape(*allowed.shape[:-1], *shape)
            view = torch.where(allowed, view, inf)
        robot_axes = tuple(len(lead) + i for i in self.robots)
        view = view.amin(dim=robot_axes, keepdim=True)
        view = torch.where(torch.isinf(view), torch.zeros_like(view), view)
        for agent in self.humans:
            if agent == agent_h:
                continue
            allowed = mask[..., agent, : self.counts[agent]].to(z.dtype)
            mu = allowed / allowed.sum(-1, keepdim=True).clamp_min(1.0)
            shape = [1] * n
            shape[agent] = self.counts[agent]
            mu = mu.reshape(*mu.shape[:-1], *shape)
            view = (view * mu).sum(len(lead) + agent, keepdim=True)
        q = view.reshape(*lead, self.counts[agent_h])
        pad = self.max_human_actions - self.counts[agent_h]
        if pad:
            q = torch.nn.functional.pad(q, (0, pad))
        return q

    def joint_weights(
        self,
        factors: dict[int, Float[Tensor, "*batch action"]],
        robot_policy: Float[Tensor, "*batch a_r"],
    ) -> Float[Tensor, "*batch joint"]:
        """Product weights over joint actions, as in eqs. (4) and (6).

        Parameters
        ----------
        factors
            Per human agent index (into ``agents``), its action distribution, with
            as many leading axes as ``robot_policy``.
            Humans missing from ``factors`` are summed out (weight 1 on every
            action, as in eq. (4) where the robot's own action is kept apart).
        robot_policy
            Distribution (or one-hot selector) over joint robot actions.
        """
        n = len(self.counts)
        lead = robot_policy.shape[:-1]
        robot_shape = [1] * n
        for agent in self.robots:
            robot_shape[agent] = self.counts[agent]
        weight = robot_policy.reshape(*lead, *robot_shape)
        for agent in self.humans:
            shape = [1] * n
            shape[agent] = self.counts[agent]
            if agent in factors:
                part = factors[agent][..., : self.counts[agent]]
                part = part.reshape(*part.shape[:-1], *shape)
            else:
                part = torch.ones(shape, dtype=weight.dtype, device=weight.device)
            weight = weight * part
        full = torch.broadcast_shapes(weight.shape, (*lead, *self.counts))
        return weight.expand(full).reshape(*full[: len(full) - n], -1)

    def robot_marginal(
        self,
        values: Float[Tensor, "*batch joint"],
        human_factors: dict[int, Float[Tensor, "*batch action"]],
    ) -> Float[Tensor, "*batch a_r"]:
        """``Σ_{a_H} Π_h π̄_h(a_h) values[a]`` per joint robot action (eq. 4)."""
        n = len(self.counts)
        lead = values.shape[:-1]
        view = values.reshape(*lead, *self.counts)
        for agent in self.humans:
            part = human_factors[agent][..., : self.counts[agent]]
            shape = [1] * n
            shape[agent] = self.counts[agent]
            part = part.reshape(*part.shape[:-1], *shape)
            view = (view * part).sum(len(lead) + agent, keepdim=True)
        return view.reshape(*lead, self.robot_actions)
