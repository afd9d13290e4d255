"""Phase 1: the human policy prior, eqs. (1)-(3), by backward induction.

Each chunk of states is solved for all humans, goals and joint actions at once:
the successor targets ``U_h(s', g) + gamma_h 1[s' not in g] V^m_h(s', g)`` are
gathered for every joint action, the robot team's joint action is minimised *inside*
the expectation over the other humans (eq. 1), and the policy and value follow from
eqs. (2)-(3) through :mod:`empo.theory`.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from typing import Iterable

import torch
from jaxtyping import Float, Int64
from torch import Tensor

from empo.exact.human_model import ResolvedHumanModel
from empo.exact.layout import Layout
from empo.parameters.theory import TheoryParameters
from empo.theory import goal_backup, human_policy, human_value

logger = logging.getLogger(__name__)


@dataclass
class Phase1Result:
    """Tensors of phase 1 (zeros at terminal states and padded goals/actions)."""

    q_m: Float[Tensor, "state human goal action"]
    pi_h: Float[Tensor, "state human goal action"]
    v_m: Float[Tensor, "state human goal"]
    converged: bool
    iterations: int


def _expect_others(
    values: Float[Tensor, "chunk action others goal"],
    mu: Float[Tensor, "chunk others"] | Float[Tensor, "chunk goal others"],
) -> Float[Tensor, "chunk goal action"]:
    """``sum_{a_-h} mu_-h(a_-h) values[a_h, a_-h]`` of eq. (1), goal axis first."""
    if values.shape[2] == 1:
        weight = mu[:, None, :] if mu.ndim == 2 else mu[:, None, :, 0]
        return (values[:, :, 0, :] * weight).transpose(1, 2)
    pattern = "lajg,lj->lga" if mu.ndim == 2 else "lajg,lgj->lga"
    return torch.einsum(pattern, values, mu)


def phase1_chunk(
    layout: Layout,
    humans: ResolvedHumanModel,
    theory: TheoryParameters,
    table: Float[Tensor, "state human_goal"],
    ids: Int64[Tensor, " chunk"],
) -> tuple[Tensor, Tensor, Tensor]:
    """``(Q^m_h, pi_h, V^m_h)`` of the states ``ids``, eqs. (1)-(3).

    Parameters
    ----------
    layout
        The world's canonical layout.
    humans
        Resolved human beliefs.
    theory
        Theory parameters.
    table
        ``[state + 1, human * goal]`` successor targets
        (:func:`empo.theory.goal_backup`) and a last row of ``+inf``.
    ids
        Non-terminal state ids.
    """
    L, H, G = len(ids), layout.num_humans, layout.num_goals
    J, A_r = layout.num_human_joint, layout.num_robot_actions
    succ, prob = layout.transitions(ids)
    if A_r > 1:
        robot_mask = layout.robot_mask(ids)
        if not bool(robot_mask.all()):
            # Disallowed robot actions read the table's last row (+inf) with
            # probability 1, so that they never attain the minimum of eq. (1).
            blocked = (~robot_mask)[:, None, :].expand(L, J, A_r).reshape(L, J * A_r)
            succ[:, :, 0].masked_fill_(blocked, table.shape[0] - 1)
            prob[:, :, 0].masked_fill_(blocked, 1.0)
    expected = layout.expected(table, succ, prob).view(L, J, A_r, H * G)
    worst = expected.amin(2) if A_r > 1 else expected[:, :, 0]
    worst = worst.view(L, *layout.human_sizes, H, G)
    parts = []
    for human in range(H):
        values = layout.others_first(worst[..., human, :], human)
        mu = torch.index_select(humans.mu_others[human], 0, ids)
        parts.append(_expect_others(values, mu))
    if H == 1 and layout.human_sizes[0] == layout.max_human_actions:
        q_m = parts[0].unsqueeze(1).contiguous()
    else:
        q_m = torch.zeros(
            L, H, G, layout.max_human_actions, dtype=table.dtype, device=table.device
        )
        for human, size in enumerate(layout.human_sizes):
            q_m[:, human, :, :size] = parts[human]
    rest = layout.rest_action
    has_rest = bool((rest >= 0).any())
    pi_h = human_policy(
        q_m,
        humans.beta_h[ids] if humans.beta_scalar is None else humans.beta_scalar,
        layout.human_mask(ids)[:, :, None, :],
        nu_h=humans.nu_h[ids] if humans.habitual else None,
        pi0_h=humans.pi0_h[ids] if humans.habitual else None,
        reached=torch.index_select(layout.member, 0, ids) if has_rest else None,
        rest_action=rest[None, :, None] if has_rest else None,
    )
    if not layout.all_goals_real:
        q_m = q_m * layout.goal_mask[:, :, None]
        pi_h = pi_h * layout.goal_mask[:, :, None]
    v_m = human_value(pi_h, q_m)
    return q_m, pi_h, v_m


def _targets(
    layout: Layout,
    ids: Int64[Tensor, " n"],
    v: Float[Tensor, "n human goal"],
    gamma: float,
) -> Float[Tensor, "n human_goal"]:
    return goal_backup(torch.index_select(layout.member, 0, ids), v, gamma).flatten(1)


def _with_inf_row(
    targets: Float[Tensor, "state human_goal"],
) -> Float[Tensor, "state_plus_one human_goal"]:
    """``targets`` followed by a row of ``+inf`` (read by disallowed robot actions)."""
    inf = torch.full_like(targets[:1], math.inf)
    return torch.cat([targets, inf]).contiguous()


def solve_phase1(
    layout: Layout,
    humans: ResolvedHumanModel,
    theory: TheoryParameters,
    *,
    chunk_size: int,
    tolerance: float,
    max_iterations: int,
) -> Phase1Result:
    """Solve eqs. (1)-(3) for all states, humans and goals.

    Acyclic worlds are solved level by level (heights 1, 2, ...); cyclic worlds by
    synchronous value iteration until ``max |Delta V^m| <= tolerance`` or
    ``max_iterations``.
    """
    world = layout.world
    S, H, G, A = (
        world.num_states,
        layout.num_humans,
        layout.num_goals,
        layout.max_human_actions,
    )
    options = dict(dtype=layout.dtype, device=layout.device)
    q_m = torch.zeros(S, H, G, A, **options)
    pi_h = torch.zeros(S, H, G, A, **options)
    v_m = torch.zeros(S, H, G, **options)
    table = _with_inf_row(layout.member_float.flatten(1))
    gamma = theory.gamma_h
    if world.height is not None:
        for level in world.levels():
            for ids in layout.chunks(level, chunk_size):
                q, p, v = phase1_chunk(layout, humans, theory, table, ids)
                q_m.index_copy_(0, ids, q)
                pi_h.index_copy_(0, ids, p)
                v_m.index_copy_(0, ids, v)
                table.index_copy_(0, ids, _targets(layout, ids, v, gamma))
        return Phase1Result(q_m, pi_h, v_m, converged=True, iterations=1)
    live = torch.nonzero(~world.terminal).flatten()
    chunks: Iterable[Tensor] = layout.chunks(live, chunk_size)
    for iteration in range(1, max_iterations + 1):
        new_v = torch.zeros_like(v_m)
        for ids in chunks:
            q, p, v = phase1_chunk(layout, humans, theory, table, ids)
            q_m[ids], pi_h[ids], new_v[ids] = q, p, v
        delta = float((new_v - v_m).abs().max())
        v_m = new_v
        table = _with_inf_row(
            _targets(layout, torch.arange(S, device=layout.device), v_m, gamma)
        )
        logger.debug("phase 1 iteration %d: max |ΔV^m| = %.3e", iteration, delta)
        if delta <= tolerance:
            return Phase1Result(q_m, pi_h, v_m, converged=True, iterations=iteration)
    return Phase1Result(q_m, pi_h, v_m, converged=False, iterations=max_iterations)
