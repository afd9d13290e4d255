"""Training targets of both phases, for any data source (:mod:`empo.learning.data`).

At each state ``s`` of a batch, a target averages over action profiles of the agents
that the equation averages over, ``Σ_m w_m f(a^m)``, and computes the successors of
*every* action of the agents that the equation optimises over or keeps apart, with
one batched :meth:`~empo.learning.data.WorldData.successors` call. The profiles come
from the data source: all of them with their probabilities (compiled worlds: the
exact expectation over actions) or ``M`` drawn ones with weight ``1/M`` (worlds
reached by rows: unbiased estimates).

* **Phase 1** (:func:`phase1_target`, eq. 1). For human ``h``, every own action
  ``a_h`` and every joint robot action ``a_r``::

      y_m(h, g, a_h, a_r) = Σ_{s'} P(s' | s, a_h, a^m_{-h}, a_r)
                             [U_h(s', g) + γ_h 1[s'∉g] V^m_h(s', g)]

  and the target is ``Σ_m w_m min_{a_r} y_m`` with ``a^m_{-h}`` from ``μ_-h``. The
  minimum is taken exactly inside the expectation over ``a_{-h}``: with enumerated
  profiles this is eq. (1) itself, with drawn ones an unbiased estimate. Cost:
  ``B · H · M · A_h · A_r`` transitions per batch (``A_h`` the largest human action
  count), and one network evaluation per distinct successor.
* **Phase 2** (:func:`phase2_target`, eqs. 4, 6, 12, 13). Profiles
  ``a^m_H ~ Π_h π̄_h(s)`` (goal marginals of the frozen phase-1 policy) and the
  successors of every ``a_r``: ``B · M · A_r`` transitions. Then ``q_r(s, a_r) = γ_r
  Σ_m w_m Σ_{s'} P V_r(s')`` (eq. 4) and, for ``V^e_h(s, g)`` (eq. 6, where human
  ``h`` follows ``π_h(s, g)`` instead of ``π̄_h(s)``), the importance-weighted
  ``Σ_m w_m ρ_m Σ_{a_r} π_r(s)(a_r) Σ_{s'} P [U_h + γ_h 1[s'∉g] V^e_h(s', g)]`` with
  ``ρ_m = π_h(s, g)(a^m_h) / π̄_h(s)(a^m_h)``. With enumerated profiles
  ``w_m ρ_m = π_h(s,g)(a_h) Π_{h'≠h} π̄_h'(s)(a_h')``, eq. (6) exactly; with drawn
  ones the weights are bounded by ``1 / w̃_h(g)`` because ``π̄_h ≥ w̃_h(g) π_h(·, g)``,
  so this plain importance sampling is unbiased with bounded variance. The robot's
  part is exact because every ``a_r`` was computed.

Every equation goes through :mod:`empo.theory`.
"""

from __future__ import annotations

import math
from typing import Callable

import torch
from jaxtyping import Float, Int64
from tensordict import TensorDict
from torch import Tensor

from empo import theory
from empo.learning.data import Profiles, WorldData

__all__ = ["phase1_target", "phase2_target", "robot_backups"]

SuccessorValues = Callable[[TensorDict], dict[str, Tensor]]


def phase1_target(
    data: WorldData,
    states: TensorDict,
    others: Profiles,
    v_next: Callable[[TensorDict], Float[Tensor, "n human goal"]],
    gamma_h: float,
    sampled: bool = False,
    generator: torch.Generator | None = None,
) -> Float[Tensor, "batch human goal action"]:
    """Target of ``Q^m_h(s, g, ·)`` for every human and goal (eq. 1).

    Parameters
    ----------
    data, states
        The data source and ``[B]`` states of it.
    others
        :meth:`~empo.learning.data.WorldData.others_profiles` of ``states``.
    v_next
        ``V^m_h(s', g)`` of successor states, ``[n, H, G]`` (0 at terminal ones).
    gamma_h
        Human discount.
    sampled
        One successor drawn per action profile instead of all of them.
    generator
        Generator of that draw.

    Returns
    -------
    Tensor
        ``[B, H, G, A_h]`` (0 at disallowed actions).
    """
    profiles, weights = others
    b = states.batch_size[0]
    n_h, m = weights.shape[1:]
    a_h = data.max_human_actions
    a_r = data.robot_actions
    dev = data.device
    humans = torch.arange(n_h, device=dev)
    own = torch.arange(a_h, device=dev)
    counts = torch.tensor([data.counts[i] for i in data.humans], device=dev)
    human_actions = profiles[:, :, :, None, :].expand(b, n_h, m, a_h, n_h)
    choice = torch.minimum(own[None, :], counts[:, None] - 1)
    is_own = humans[:, None] == humans[None, :]
    human_actions = torch.where(
        is_own[None, :, None, None, :],
        choice[None, :, None, :, None].expand_as(human_actions),
        human_actions,
    )
    robot = torch.arange(a_r, device=dev)
    actions = data.profiles(
        human_actions[..., None, :], robot.reshape(1, 1, 1, 1, a_r)
    ).reshape(b, n_h * m * a_h * a_r, -1)
    succ, prob = data.successors(states, actions, sampled, generator)
    unique, inverse = data.distinct(succ, prob)
    backup = theory.goal_backup(data.in_goal(unique), v_next(unique), gamma_h)
    k = prob.shape[-1]
    inverse = inverse.reshape(b, n_h, m, a_h, a_r, k)
    per_human = backup[inverse, humans.reshape(1, n_h, 1, 1, 1, 1)]
    prob = prob.reshape(b, n_h, m, a_h, a_r, k)
    y = (prob[..., None] * per_human).sum(-2)
    allowed_r = data.robot_mask(states).reshape(b, 1, 1, 1, a_r, 1)
    worst = torch.where(allowed_r, y, torch.full_like(y, math.inf)).amin(-2)
    worst = torch.where(torch.isinf(worst), torch.zeros_like(worst), worst)
    target = (weights[..., None, None] * worst).sum(2).transpose(2, 3)
    return target * data.human_mask(states)[:, :, None, :]


def phase2_target(
    data: WorldData,
    states: TensorDict,
    pi_h: Float[Tensor, "batch human goal action"],
    pi_r: Float[Tensor, "batch a_r"] | Callable[[Tensor], Tensor],
    profiles: Profiles,
    successor_values: SuccessorValues,
    gamma_h: float,
    gamma_r: float,
    sampled: bool = False,
    generator: torch.Generator | None = None,
) -> tuple[Float[Tensor, "batch human goal"], Float[Tensor, "batch a_r"]]:
    """Targets of ``V^e_h(s, g)`` (eqs. 6, 13) and ``Q_r(s, ·)`` (eqs. 4, 12).

    Parameters
    ----------
    data, states
        The data source and ``[B]`` states of it.
    pi_h
        Frozen phase-1 policy ``π_h(s, g)`` at ``states``.
    pi_r
        Robot policy ``π_r(s)`` at ``states``, or a function that computes it from
        the ``Q_r`` target (fitted backward induction: eq. (5) at ``s`` from the
        look-ahead itself).
    profiles
        :meth:`~empo.learning.data.WorldData.human_profiles` from ``π̄_h(s)``.
    successor_values
        ``states -> {"v_e": [n, H, G], "v_r": [n]}`` at successor states.
    gamma_h, gamma_r
        Discounts.
    sampled, generator
        One successor drawn per action profile instead of all of them.

    Returns
    -------
    tuple
        ``v_e`` target ``[B, H, G]`` and ``q_r`` target ``[B, A_r]``.
    """
    human_actions, weights = profiles
    b, m = weights.shape
    n_h, n_g = pi_h.shape[1:3]
    a_r = data.robot_actions
    robot = torch.arange(a_r, device=data.device)
    actions = data.profiles(human_actions[:, :, None, :], robot.reshape(1, 1, a_r))
    actions = actions.expand(b, m, a_r, -1).reshape(b, m * a_r, -1)
    succ, prob = data.successors(states, actions, sampled, generator)
    unique, inverse = data.distinct(succ, prob)
    nxt = successor_values(unique)
    k = prob.shape[-1]
    prob = prob.reshape(b, m, a_r, k)
    inverse = inverse.reshape(b, m, a_r, k)
    v_r_next = (prob * nxt["v_r"][inverse]).sum(-1)
    q_target = gamma_r * (weights[:, :, None] * v_r_next).sum(1)
    if callable(pi_r):
        pi_r = pi_r(q_target)
    backup = theory.goal_backup(data.in_goal(unique), nxt["v_e"], gamma_h)
    expected = (prob[..., None, None] * backup[inverse]).sum(3)
    robot_part = (pi_r[:, None, :, None, None] * expected).sum(2)
    pi_bar = theory.goal_marginal_policy(pi_h, data.goal_weights)
    taken = human_actions.expand(b, m, n_h)
    own = torch.gather(
        pi_h[:, None].expand(b, m, *pi_h.shape[1:]),
        4,
        taken[:, :, :, None, None].expand(b, m, n_h, n_g, 1),
    )[..., 0]
    marginal = torch.gather(
        pi_bar[:, None].expand(b, m, *pi_bar.shape[1:]), 3, taken[..., None]
    )
    ratio = own / marginal.clamp_min(1e-30)
    return (weights[:, :, None, None] * ratio * robot_part).sum(1), q_target


def robot_backups(
    data: WorldData,
    states: TensorDict,
    human_actions: Int64[Tensor, "batch human"],
    v_next: Callable[[TensorDict], Float[Tensor, "n human goal"]],
    gamma_h: float,
) -> Float[Tensor, "batch a_r human goal"]:
    """``Σ_{s'} P(s' | s, a_H, a_r) [U_h(s', g) + γ_h 1[s'∉g] V^m_h(s', g)]`` for
    every joint robot action ``a_r`` with the humans' actions fixed: what the
    cautious phase-1 robot minimises (THEORY.md, phase 1)."""
    b = human_actions.shape[0]
    robot = torch.arange(data.robot_actions, device=data.device)
    actions = data.profiles(human_actions[:, None, :], robot[None, :])
    succ, prob = data.successors(states, actions)
    unique, inverse = data.distinct(succ, prob)
    backup = theory.goal_backup(data.in_goal(unique), v_next(unique), gamma_h)
    return (
        (prob[..., None, None] * backup[inverse])
        .sum(2)
        .reshape(b, data.robot_actions, *backup.shape[1:])
    )
