"""Phase 2: robot policy and power metric, eqs. (4)-(9), by backward induction.

At each chunk of states, in the order of THEORY.md: ``Q_r`` (4) from the gathered
``V_r`` of the successors and the humans' goal-marginal policies ``pi_bar_h``;
``pi_r`` (5); ``V^e_h`` (6) from ``pi_h`` of ``h``, ``pi_bar`` of the other humans and
``pi_r``; ``X_h`` (7); ``U_r`` (8); ``V_r`` (9). The goal marginals and eqs. (5),
(7)-(9) are :func:`empo.theory.goal_marginal_policy` and
:func:`empo.theory.robot_chain` (given the ``pi_r`` that eq. (6) needed first). The successor targets of eq. (6) are
gathered and summed over robot actions and outcomes in one sparse product
(:meth:`~empo.exact.layout.Layout.expected_after_robot`).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import torch
from jaxtyping import Float, Int64
from torch import Tensor

from empo.exact.layout import Layout
from empo.parameters.theory import TheoryParameters
from empo.theory import (
    goal_backup,
    goal_marginal_policy,
    robot_chain,
    robot_policy_of,
)

logger = logging.getLogger(__name__)


@dataclass
class Phase2Result:
    """Tensors of phase 2 (zeros at terminal states except ``v_r``)."""

    q_r: Float[Tensor, "state robot_action"]
    pi_r: Float[Tensor, "state robot_action"]
    v_e: Float[Tensor, "state human goal"]
    x_h: Float[Tensor, "state human"]
    u_r: Float[Tensor, " state"]
    v_r: Float[Tensor, " state"]
    converged: bool
    iterations: int


def phase2_chunk(
    layout: Layout,
    theory: TheoryParameters,
    pi_h: Float[Tensor, "state human goal action"],
    table_e: Float[Tensor, "successor human_goal"],
    table_r: Float[Tensor, " successor"],
    ids: Int64[Tensor, " chunk"],
    robot_policy: Float[Tensor, "state robot_action"] | None = None,
) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor, Tensor]:
    """``(Q_r, pi_r, V^e_h, X_h, U_r, V_r)`` of the states ``ids``, eqs. (4)-(9).

    With ``robot_policy`` given, ``pi_r`` is that policy instead of eq. (5) (policy
    evaluation: eqs. 4 and 6-9 under any robot policy).

    Parameters
    ----------
    layout
        The world's canonical layout.
    theory
        Theory parameters.
    pi_h
        Phase-1 policies (their goal marginals are taken per chunk).
    table_e
        ``[successor, human * goal]`` targets of ``V^e_h`` at the states the
        successors of ``ids`` index (all states, or the next layer's).
    table_r
        ``[successor]`` values ``V_r`` there (may be ``-inf``).
    ids
        Non-terminal state ids.
    robot_policy
        ``[state, robot_action]`` a fixed robot policy, or ``None`` for eq. (5).
    """
    L, H, G = len(ids), layout.num_humans, layout.num_goals
    A_r = layout.num_robot_actions
    succ, prob = layout.transitions(ids)
    successor_v_r = torch.index_select(table_r, 0, succ.reshape(-1)).view(succ.shape)
    expected_r = torch.where(prob > 0, prob * successor_v_r, 0.0).sum(-1)
    own = torch.index_select(pi_h, 0, ids)
    marginals = goal_marginal_policy(own, layout.goal_weights)
    expected_r = layout.contract_humans(
        expected_r.view(L, *layout.human_sizes, A_r), marginals
    )
    robot_mask = layout.robot_mask(ids)
    if theory.gamma_r > 0:
        q_r = theory.gamma_r * expected_r
    else:
        q_r = torch.zeros_like(expected_r)
    if robot_policy is None:
        pi_r = robot_policy_of(q_r, robot_mask, theory)
    else:
        pi_r = torch.index_select(robot_policy, 0, ids)
    after_robot = layout.expected_after_robot(table_e, succ, prob, pi_r)
    after_robot = after_robot.view(L, *layout.human_sizes, H, G)
    v_e = torch.zeros(L, H, G, dtype=prob.dtype, device=prob.device)
    for human, size in enumerate(layout.human_sizes):
        values = layout.others_first(after_robot[..., human, :], human)
        others = layout.others_marginal(marginals, human)
        if H == 1:
            per_action = values[:, :, 0, :]
        elif values.shape[2] == 1:
            per_action = values[:, :, 0, :] * others[:, :, None]
        else:
            per_action = torch.einsum("lajg,lj->lag", values, others)
        mine = own[:, human, :, :size].transpose(1, 2)
        v_e[:, human] = (per_action * mine).sum(1)
    chain = robot_chain(q_r, v_e, robot_mask, layout.goal_weights, theory, pi_r=pi_r)
    return chain.q_r, pi_r, v_e, chain.x_h, chain.u_r, chain.v_r


def solve_phase2(
    layout: Layout,
    theory: TheoryParameters,
    pi_h: Float[Tensor, "state human goal action"],
    *,
    chunk_size: int,
    tolerance: float,
    max_iterations: int,
    robot_policy: Float[Tensor, "state robot_action"] | None = None,
) -> Phase2Result:
    """Solve eqs. (4)-(9) for all states given the phase-1 policies ``pi_h``.

    With ``robot_policy`` (``[state, robot_action]``, rows of terminal states
    ignored) the robot plays that policy instead of eq. (5): the result is the exact
    evaluation of eqs. (4) and (6)-(9) under it.

    Acyclic worlds are solved level by level; cyclic worlds by synchronous value
    iteration of ``(V_r, V^e_h)`` until ``max |Delta V^e| <= tolerance`` and
    ``max |Delta V_r| <= tolerance * max(1, |V_r|)``, or ``max_iterations``.

    The iteration starts from the upper bound ``V^e_h = 1`` at non-terminal states.
    Starting from 0 would give ``X_h = 0`` and ``U_r = -inf`` (eqs. 7-8) in the first
    sweep, and ``V_r = -inf`` on a cycle is a spurious fixed point of eq. (9) that the
    iteration never leaves; for a fixed ``pi_r`` eq. (6) is a ``gamma_h``-contraction,
    so the starting point does not change its fixed point.
    """
    world = layout.world
    S, H, G, A_r = (
        world.num_states,
        layout.num_humans,
        layout.num_goals,
        layout.num_robot_actions,
    )
    options = dict(dtype=layout.dtype, device=layout.device)
    q_r = torch.zeros(S, A_r, **options)
    pi_r = torch.zeros(S, A_r, **options)
    v_e = torch.zeros(S, H, G, **options)
    x_h = torch.zeros(S, H, **options)
    u_r = torch.zeros(S, **options)
    v_r = torch.full((S,), theory.terminal_v_r, **options)
    table_e = layout.member_float.flatten(1).clone()
    gamma = theory.gamma_h

    def run(
        ids: Tensor, table_e: Tensor, table_r: Tensor, out_v_e: Tensor, out_v_r: Tensor
    ) -> None:
        q, p, e, x, u, v = phase2_chunk(
            layout, theory, pi_h, table_e, table_r, ids, robot_policy
        )
        for out, value in zip(
            (q_r, pi_r, out_v_e, x_h, u_r, out_v_r), (q, p, e, x, u, v)
        ):
            out.index_copy_(0, ids, value)

    if world.height is not None:
        for level in world.levels():
            for ids in layout.chunks(level, chunk_size):
                run(ids, table_e, v_r, v_e, v_r)
                member = torch.index_select(layout.member, 0, ids)
                targets = goal_backup(member, v_e.index_select(0, ids), gamma)
                table_e.index_copy_(0, ids, targets.flatten(1))
        return Phase2Result(q_r, pi_r, v_e, x_h, u_r, v_r, True, 1)
    live = torch.nonzero(~world.terminal).flatten()
    chunks = layout.chunks(live, chunk_size)
    v_e[live] = 1.0
    table_e = goal_backup(layout.member, v_e, gamma).flatten(1)
    for iteration in range(1, max_iterations + 1):
        new_v_e, new_v_r = torch.zeros_like(v_e), v_r.clone()
        for ids in chunks:
            run(ids, table_e, v_r, new_v_e, new_v_r)
        delta_e = float((new_v_e - v_e).abs().max())
        scale = torch.maximum(new_v_r.abs(), torch.ones_like(new_v_r))
        change_r = torch.where(
            new_v_r == v_r, torch.zeros_like(v_r), (new_v_r - v_r).abs() / scale
        )
        delta_r = float(change_r.nan_to_num(nan=0.0, posinf=1.0).max())
        v_e, v_r = new_v_e, new_v_r
        table_e = goal_backup(layout.member, v_e, gamma).flatten(1)
        logger.debug(
            "phase 2 iteration %d: max |ΔV^e| = %.3e, relative |ΔV_r| = %.3e",
            iteration,
            delta_e,
            delta_r,
        )
        if delta_e <= tolerance and delta_r <= tolerance:
            return Phase2Result(q_r, pi_r, v_e, x_h, u_r, v_r, True, iteration)
    return Phase2Result(q_r, pi_r, v_e, x_h, u_r, v_r, False, max_iterations)
