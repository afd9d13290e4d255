"""Tensor layout shared by both exact phases.

The compiled world orders joint actions by agent (mixed radix over ``world.agents``).
The solver works in a *canonical* order instead: the humans (in ``world.humans``
order) first, then the robots' joint action ``a_r`` (mixed radix over
``world.robots``) as one last axis. A joint-action permutation, applied to each chunk
of states as it is gathered, maps one order to the other. With this order the
expected successor value of a chunk reshapes, without copying, into
``[L, n_h1, ..., n_hH, A_r, C]``.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

import torch
from jaxtyping import Bool, Float, Int64
from torch import Tensor

from empo.theory import joint_action_distribution
from empo.worlds.compiled import CompiledWorld


@dataclass
class Layout:
    """Canonical shapes, masks and gathers of one compiled world.

    Parameters
    ----------
    world
        The compiled world (on the solver's device and dtype).
    """

    world: CompiledWorld

    def __post_init__(self) -> None:
        world = self.world
        counts = world.action_counts
        self.device = world.probabilities.device
        self.dtype = world.probabilities.dtype
        self.human_sizes = tuple(counts[h] for h in world.humans)
        self.robot_sizes = tuple(counts[r] for r in world.robots)
        self.num_humans = len(world.humans)
        self.num_goals = world.max_goals
        self.max_human_actions = max(self.human_sizes)
        self.num_robot_actions = math.prod(self.robot_sizes)
        self.num_human_joint = math.prod(self.human_sizes)
        order = (*world.humans, *world.robots)
        strides = [math.prod(counts[i + 1 :]) for i in range(len(counts))]
        canonical = torch.arange(world.num_joint_actions, device=self.device)
        perm = torch.zeros_like(canonical)
        rest = canonical
        for agent in reversed(order):
            perm += (rest % counts[agent]) * strides[agent]
            rest = torch.div(rest, counts[agent], rounding_mode="floor")
        self.perm: Int64[Tensor, " joint"] | None = (
            None if torch.equal(perm, canonical) else perm
        )
        member = world.goal_membership.permute(2, 0, 1).contiguous()
        self.member: Bool[Tensor, "state human goal"] = member
        self.member_float: Float[Tensor, "state human goal"] = member.to(self.dtype)
        self.goal_mask: Bool[Tensor, "human goal"] = world.goal_weights > 0
        self.all_goals_real = bool(self.goal_mask.all())
        weights = world.goal_weights
        self.goal_weights: Float[Tensor, "human goal"] = weights
        self.human_agents: Int64[Tensor, " human"] = torch.tensor(
            list(world.humans), dtype=torch.long, device=self.device
        )
        self.rest_action: Int64[Tensor, " human"] = torch.tensor(
            [
                -1 if world.rest_action[h] is None else world.rest_action[h]
                for h in world.humans
            ],
            device=self.device,
        )

    def transitions(
        self, ids: Int64[Tensor, " chunk"]
    ) -> tuple[Int64[Tensor, "chunk joint k"], Float[Tensor, "chunk joint k"]]:
        """Successors and probabilities of ``ids`` in canonical joint order.

        Successors of probability 0 are redirected to state 0, so that the gathers
        of masked joint actions all read one (cached) row.
        """
        succ = torch.index_select(self.world.successors, 0, ids)
        prob = torch.index_select(self.world.probabilities, 0, ids)
        if self.perm is not None:
            succ = torch.index_select(succ, 1, self.perm)
            prob = torch.index_select(prob, 1, self.perm)
        return succ.masked_fill_(prob == 0, 0), prob

    def human_mask(
        self, ids: Int64[Tensor, " chunk"]
    ) -> Bool[Tensor, "chunk human action"]:
        """Allowed human actions, padded to the largest human action count."""
        masks = torch.index_select(self.world.action_mask, 0, ids)
        masks = torch.index_select(masks, 1, self.human_agents)
        return masks[:, :, : self.max_human_actions]

    def robot_mask(
        self, ids: Int64[Tensor, " chunk"]
    ) -> Bool[Tensor, "chunk robot_joint"]:
        """Allowed robot joint actions (all robots' parts allowed)."""
        if not self.world.robots:
            return torch.ones(len(ids), 1, dtype=torch.bool, device=self.device)
        masks = torch.index_select(self.world.action_mask, 0, ids)
        if len(self.robot_sizes) == 1:
            return masks[:, self.world.robots[0], : self.robot_sizes[0]]
        parts = [
            masks[:, r, :n].to(self.dtype)
            for r, n in zip(self.world.robots, self.robot_sizes)
        ]
        return joint_action_distribution(parts) > 0

    @staticmethod
    def expected(
        table: Float[Tensor, "state column"],
        succ: Int64[Tensor, "chunk joint k"],
        prob: Float[Tensor, "chunk joint k"],
    ) -> Float[Tensor, "chunk joint column"]:
        """``sum_k P(s'_k | s, a) table[s'_k]`` for every joint action of a chunk.

        ``table`` must be finite and row-contiguous (padding entries have
        probability 0). Outcomes ``k >= 1`` are gathered only where their probability
        is positive, which saves most of the memory traffic when few joint actions
        are stochastic.
        """
        columns = table.shape[1]
        out = torch.index_select(table, 0, succ[:, :, 0].reshape(-1))
        out.mul_(prob[:, :, 0].reshape(-1, 1))
        for k in range(1, succ.shape[2]):
            p_k = prob[:, :, k].reshape(-1)
            live = torch.nonzero(p_k > 0).flatten()
            if live.numel() == 0:
                continue
            rows = torch.index_select(table, 0, succ[:, :, k].reshape(-1)[live])
            out.index_add_(0, live, rows.mul_(p_k[live, None]))
        return out.view(succ.shape[0], succ.shape[1], columns)

    def expected_after_robot(
        self,
        table: Float[Tensor, "state column"],
        succ: Int64[Tensor, "chunk joint k"],
        prob: Float[Tensor, "chunk joint k"],
        pi_r: Float[Tensor, "chunk robot_joint"],
    ) -> Float[Tensor, "chunk human_joint column"]:
        """``sum_{a_r} pi_r(a_r) sum_k P(s'_k | s, a_h, a_r) table[s'_k]``.

        One sparse-times-dense product: each (state, human joint action) row has
        ``A_r * K`` entries ``pi_r * P`` pointing at successor rows of ``table``,
        so the ``[chunk, joint, column]`` intermediate of :meth:`expected` is
        never materialised. ``table`` must be finite.
        """
        L, J, K = succ.shape
        A_r = self.num_robot_actions
        rows = L * (J // A_r)
        weights = (prob.view(L, J // A_r, A_r, K) * pi_r[:, None, :, None]).reshape(-1)
        crow = torch.arange(0, rows * A_r * K + 1, A_r * K, device=succ.device)
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", "Sparse CSR tensor support")
            matrix = torch.sparse_csr_tensor(
                crow,
                succ.reshape(-1),
                weights,
                size=(rows, table.shape[0]),
                device=table.device,
                check_invariants=False,
            )
            out = torch.matmul(matrix, table)
        return out.view(L, J // A_r, table.shape[1])

    def contract_humans(
        self,
        values: Float[Tensor, "chunk *humans rest"],
        marginals: Float[Tensor, "chunk human action"],
    ) -> Float[Tensor, "chunk rest"]:
        """Expectation over every human's action under independent ``marginals``."""
        for index, size in enumerate(self.human_sizes):
            shape = (values.shape[0], size) + (1,) * (values.ndim - 2)
            values = (values * marginals[:, index, :size].reshape(shape)).sum(1)
        return values

    def others_first(
        self, values: Float[Tensor, "chunk *humans goal"], human: int
    ) -> Float[Tensor, "chunk action others goal"]:
        """Move human ``human``'s axis first and flatten the other humans' axes."""
        moved = values.movedim(1 + human, 1)
        return moved.reshape(
            values.shape[0], self.human_sizes[human], -1, values.shape[-1]
        )

    def others_marginal(
        self, marginals: Float[Tensor, "chunk human action"], human: int
    ) -> Float[Tensor, "chunk others"]:
        """Joint distribution of the other humans under independent marginals."""
        parts = [
            marginals[:, j, :n] for j, n in enumerate(self.human_sizes) if j != human
        ]
        if not parts:
            return torch.ones(
                marginals.shape[0], 1, dtype=self.dtype, device=self.device
            )
        return joint_action_distribution(parts)

    def chunks(
        self, ids: Int64[Tensor, " n"], chunk_size: int
    ) -> tuple[Int64[Tensor, " chunk"], ...]:
        """Split ``ids`` into chunks of at most ``chunk_size`` states."""
        return torch.split(ids, chunk_size)
