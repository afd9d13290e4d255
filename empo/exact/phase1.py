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
        ``[state, human * goal]`` successor targets (:func:`empo.theory.goal_backup`).
    ids
        Non-terminal state ids.
    """
    L, H, G = len(ids), layout.num_humans, layout.num_goals
    succ, prob = layout.transitions(ids)
    expected = layout.expected(table, succ, prob).view(
        L, layout.num_human_joint, layout.num_robot_actions, H * G
    )
    if layout.num_robot_actions > 1:
        robot_mask = layout.robot_mask(ids)
        if not bool(robot_mask.all()):
            expected = expected.masked_fill(~robot_mask[:, None, :, None], math.inf)
        worst = expected.amin(2)
    else:
        worst = expected[:, :, 0]
    worst = worst.view(L, *layout.human_sizes, H, G)
    q_m = torch.zeros(
        L, H, G, layout.max_human_actions, dtype=table.dtype, device=table.device
    )
    for human, size in enumerate(layout.human_sizes):
        values = layout.others_first(worst[..., human, :], human)
        mu = humans.mu_others[human][ids]
        pattern = "lajg,lj->lga" if mu.ndim == 2 else "lajg,lgj->lga"
        q_m[:, human, :, :size] = torch.einsum(pattern, values, mu)
    rest = layout.rest_action
    pi_h = human_policy(
        q_m,
        humans.beta_h[ids] if humans.beta_scalar is None else humans.beta_scalar,
        layout.human_mask(ids)[:, :, None, :],
        nu_h=humans.nu_h[ids] if humans.habitual else None,
        pi0_h=humans.pi0_h[ids] if humans.habitual else None,
        reached=layout.member[ids],
        rest_action=rest[None, :, None] if bool((rest >= 0).any()) else None,
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
    return goal_backup(layout.member[ids], v, gamma).flatten(1)


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
    table = layout.member_float.flatten(1).clone()
    gamma = theory.gamma_h
    if world.height is not None:
        for level in world.levels():
            for ids in layout.chunks(level, chunk_size):
                q, p, v = phase1_chunk(layout, humans, theory, table, ids)
                q_m[ids], pi_h[ids], v_m[ids] = q, p, v
                table[ids] = _targets(layout, ids, v, gamma)
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
        table = _targets(layout, torch.arange(S, device=layout.device), v_m, gamma)
        logger.debug("phase 1 iteration %d: max |ΔV^m| = %.3e", iteration, delta)
        if delta <= tolerance:
            return Phase1Result(q_m, pi_h, v_m, converged=True, iterations=iteration)
    return Phase1Result(q_m, pi_h, v_m, converged=False, iterations=max_iterations)
