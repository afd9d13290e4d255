"""Targets and loss modules of the sampled learned solver (rows, never state ids).

The world is never enumerated. At each state row ``s`` of a batch the targets draw
``M`` action profiles of the agents that the equation averages over, and for each
profile compute the successors of *every* action of the agents that the equation
optimises over or keeps apart, with one batched ``world.transitions`` call:

* **Phase 1** (:func:`phase1_target`, eq. 1). Draw ``a^m ~ μ`` (every human uniform
  over its allowed actions, THEORY.md default belief), ``m = 1..M``. For human ``h``,
  every own action ``a_h`` and every joint robot action ``a_r``::

      y_m(h, g, a_h, a_r) = Σ_{s'} P(s' | s, a_h, a^m_{-h}, a_r)
                             [U_h(s', g) + γ_h 1[s'∉g] V^m_h(s', g)]

  and the target is ``(1/M) Σ_m min_{a_r} y_m``. The minimum is taken exactly inside
  the expectation over ``a_{-h}``, so this is an unbiased estimate of eq. (1) (exact
  when there is one human, or when the ``M`` profiles enumerate ``μ_-h``'s support
  with equal weights). Cost: ``B · H · M · A_h · A_r`` transitions per batch of ``B``
  rows (``A_h`` the largest human action count; 64 · 4 · 4 · 8 · 25 = 204,800 on the
  default ``transport_large``), and one network evaluation per distinct successor.
* **Phase 2** (:func:`phase2_target`, eqs. 4, 6, 12, 13). Draw ``a^m_H ~ Π_h π̄_h(s)``
  (goal marginals of the frozen phase-1 policy) and compute the successors of every
  ``a_r``: ``B · M · A_r`` transitions. Then ``q_r(s, a_r) = γ_r (1/M) Σ_m Σ_{s'} P
  V_r(s')`` (unbiased for eq. 4) and, for ``V^e_h(s, g)`` (eq. 6, where human ``h``
  follows ``π_h(s, g)`` instead of ``π̄_h(s)``), the importance-weighted average
  ``(1/M) Σ_m ρ_m Σ_{a_r} π_r(s)(a_r) Σ_{s'} P [U_h + γ_h 1[s'∉g] V^e_h(s', g)]``
  with ``ρ_m = π_h(s, g)(a^m_h) / π̄_h(s)(a^m_h)``. Because
  ``π̄_h = Σ_g w_h(g) π_h(·, g) ≥ w_h(g) π_h(·, g)``, the weights are bounded by
  ``1 / w_h(g)`` (16 for 16 equally weighted goals), so this plain (not
  self-normalised) importance sampling is unbiased with bounded variance; the
  robot's part is exact because every ``a_r`` was computed.

``V^m_h``, ``V^e_h``, ``Q_r`` at successors come from target networks (soft updates)
through :mod:`empo.theory`; ``X_h`` is the exact sum over goals (eq. 7) and ``U_r``
follows eq. (8). ``Q_r`` is regressed in ``log(-Q_r)`` like
:class:`empo.learning.losses.Phase2Loss`.
"""

from __future__ import annotations

from typing import Callable

import torch
from jaxtyping import Float, Int64
from tensordict import TensorDict, TensorDictBase
from tensordict.nn import TensorDictModule, TensorDictParams
from torch import Tensor
from torchrl.objectives import LossModule

from empo import theory
from empo.learning.losses import (
    X_FLOOR,
    human_policy_and_value,
    log_q_loss,
    masked_mse,
)
from empo.learning.sampled.row_model import RowModel, sample_actions
from empo.parameters.theory import TheoryParameters
from empo.worlds.hashing import hash_rows

__all__ = [
    "SampledPhase1Loss",
    "SampledPhase2Loss",
    "phase1_target",
    "phase2_target",
]

Rows = Int64[Tensor, "batch dim"]


def _distinct(
    succ: Int64[Tensor, "*lead dim"], prob: Float[Tensor, "*lead"]
) -> tuple[Int64[Tensor, "n dim"], Int64[Tensor, "*lead"]]:
    """Distinct successor rows of positive probability and, per entry, its index
    among them (0 for zero-probability padding, whose weight is 0 anyway).

    Rows are identified by their 64-bit hash (:func:`empo.worlds.hashing.hash_rows`),
    a one-dimensional sort instead of a row-wise one; two distinct rows of one batch
    collide with probability about ``n² / 2^65``.
    """
    flat = succ.reshape(-1, succ.shape[-1])
    valid = prob.reshape(-1) > 0
    valid[0] = True
    rows = flat[valid]
    keys, inverse_valid = torch.unique(hash_rows(rows), return_inverse=True)
    first = torch.zeros(keys.shape[0], dtype=torch.long, device=succ.device)
    first.scatter_(0, inverse_valid, torch.arange(rows.shape[0], device=succ.device))
    inverse = torch.zeros(flat.shape[0], dtype=torch.long, device=succ.device)
    inverse[valid] = inverse_valid
    return rows[first], inverse.reshape(succ.shape[:-1])


def phase1_target(
    model: RowModel,
    rows: Rows,
    profiles: Int64[Tensor, "batch m human"],
    v_next: Callable[[Rows], Float[Tensor, "n human goal"]],
    gamma_h: float,
    sampled: bool = False,
    generator: torch.Generator | None = None,
) -> Float[Tensor, "batch human goal action"]:
    """Sampled target of ``Q^m_h(s, g, ·)`` for every human and goal (eq. 1).

    Parameters
    ----------
    model
        The row model.
    rows
        ``[B, dim]`` states.
    profiles
        ``[B, M, H]`` human action profiles drawn from ``μ`` (only the other humans'
        parts are read for each human).
    v_next
        ``V^m_h(s', g)`` of successor rows, ``[n, H, G]`` (0 at terminal rows).
    gamma_h
        Human discount.
    sampled
        One successor drawn per action profile instead of all of them.
    generator
        Generator of that draw.

    Returns
    -------
    Tensor
        ``[B, H, G, A_h]`` (0 at disallowed actions and terminal rows).
    """
    b, m, n_h = profiles.shape
    a_h = model.max_human_actions
    a_r = model.robot_actions
    humans = torch.arange(n_h, device=rows.device)
    own = torch.arange(a_h, device=rows.device)
    counts = torch.tensor([model.counts[i] for i in model.humans], device=rows.device)
    human_actions = profiles[:, None, :, None, :].expand(b, n_h, m, a_h, n_h).clone()
    choice = torch.minimum(own[None, :], counts[:, None] - 1)
    is_own = humans[:, None] == humans[None, :]
    human_actions = torch.where(
        is_own[None, :, None, None, :],
        choice[None, :, None, :, None].expand_as(human_actions),
        human_actions,
    )
    robot = torch.arange(a_r, device=rows.device)
    actions = model.profiles(
        human_actions[..., None, :], robot.reshape(1, 1, 1, 1, a_r)
    ).reshape(b, n_h * m * a_h * a_r, -1)
    succ, prob = model.successors(rows, actions, sampled, generator)
    unique, inverse = _distinct(succ, prob)
    backup = theory.goal_backup(model.in_goal(unique), v_next(unique), gamma_h)
    k = prob.shape[-1]
    inverse = inverse.reshape(b, n_h, m, a_h, a_r, k)
    per_human = backup[inverse, humans.reshape(1, n_h, 1, 1, 1, 1)]
    prob = prob.reshape(b, n_h, m, a_h, a_r, k)
    y = (prob[..., None] * per_human).sum(-2)
    allowed_r = model.robot_mask(rows).reshape(b, 1, 1, 1, a_r, 1)
    worst = torch.where(allowed_r, y, torch.full_like(y, torch.inf)).amin(-2)
    worst = torch.where(torch.isinf(worst), torch.zeros_like(worst), worst)
    target = worst.mean(2).transpose(2, 3)
    return target * model.human_mask(rows)[:, :, None, :]


def phase2_target(
    model: RowModel,
    rows: Rows,
    pi_h: Float[Tensor, "batch human goal action"],
    pi_r: Float[Tensor, "batch a_r"],
    profiles: Int64[Tensor, "batch m human"],
    successor_values: Callable[[Rows], dict[str, Tensor]],
    gamma_h: float,
    gamma_r: float,
    sampled: bool = False,
    generator: torch.Generator | None = None,
) -> tuple[Float[Tensor, "batch human goal"], Float[Tensor, "batch a_r"]]:
    """Sampled targets of ``V^e_h(s, g)`` (eqs. 6, 13) and ``Q_r(s, ·)`` (4, 12).

    Parameters
    ----------
    model
        The row model.
    rows
        ``[B, dim]`` states.
    pi_h
        Frozen phase-1 policy ``π_h(s, g)`` at ``rows``.
    pi_r
        Robot policy ``π_r(s)`` at ``rows`` (eq. 5).
    profiles
        ``[B, M, H]`` human actions drawn from ``Π_h π̄_h(s)``.
    successor_values
        ``rows -> {"v_e": [n, H, G], "v_r": [n]}`` at successor rows.
    gamma_h, gamma_r
        Discounts.
    sampled, generator
        One successor drawn per action profile instead of all of them.

    Returns
    -------
    tuple
        ``v_e`` target ``[B, H, G]`` and ``q_r`` target ``[B, A_r]``.
    """
    b, m, n_h = profiles.shape
    a_r = model.robot_actions
    robot = torch.arange(a_r, device=rows.device)
    actions = model.profiles(profiles[:, :, None, :], robot.reshape(1, 1, a_r))
    succ, prob = model.successors(
        rows, actions.reshape(b, m * a_r, -1), sampled, generator
    )
    unique, inverse = _distinct(succ, prob)
    nxt = successor_values(unique)
    k = prob.shape[-1]
    prob = prob.reshape(b, m, a_r, k)
    inverse = inverse.reshape(b, m, a_r, k)
    q_target = gamma_r * (prob * nxt["v_r"][inverse]).sum(-1).mean(1)
    backup = theory.goal_backup(model.in_goal(unique), nxt["v_e"], gamma_h)
    expected = (prob[..., None, None] * backup[inverse]).sum(3)
    robot_part = (pi_r[:, None, :, None, None] * expected).sum(2)
    pi_bar = theory.goal_marginal_policy(pi_h, model.goal_weights)
    index = profiles[:, :, :, None, None].expand(b, m, n_h, pi_h.shape[2], 1)
    own = torch.gather(pi_h[:, None].expand(b, m, *pi_h.shape[1:]), 4, index)[..., 0]
    marginal = torch.gather(
        pi_bar[:, None].expand(b, m, *pi_bar.shape[1:]), 3, profiles[..., None]
    )
    ratio = own / marginal.clamp_min(1e-30)
    return (ratio * robot_part).mean(1), q_target


class SampledPhase1Loss(LossModule):
    """Phase-1 loss on rows: ``Q^m_h(s, g, ·)`` regressed on :func:`phase1_target`.

    The network outputs ``Q^m_h(s, g, a_h)`` for every human, goal and own action;
    ``V^m_h`` follows through eqs. (2)-(3) with ``ν_h``, the uniform ``π⁰_h`` and the
    rest-action convention. Every allowed action of every real goal of a non-terminal
    batch row is regressed (rows inside a goal too, where eq. (1) still defines
    ``Q^m``).

    Parameters
    ----------
    network
        :func:`empo.learning.sampled.networks.goal_head_module` with ``A_h`` outputs.
    model
        The row model.
    theory_params
        ``β_h``, ``γ_h``, ``ν_h``.
    samples
        ``M`` profiles of the other humans per row.
    sampled
        One successor drawn per action profile instead of all of them.
    generator
        Generator of the profiles and successor draws.
    """

    q_network: TensorDictModule
    q_network_params: TensorDictParams
    target_q_network_params: TensorDictParams

    def __init__(
        self,
        network: TensorDictModule,
        model: RowModel,
        theory_params: TheoryParameters,
        samples: int,
        sampled: bool = False,
        generator: torch.Generator | None = None,
    ):
        super().__init__()
        self.convert_to_functional(network, "q_network", create_target_params=True)
        self.in_keys = ["state"]
        self.out_keys = ["loss_q_m"]
        self.model = model
        self.theory_params = theory_params
        self.samples = samples
        self.sampled = sampled
        self.generator = generator

    def phase1_values(self, params: TensorDictParams, rows: Rows) -> dict[str, Tensor]:
        """``q_m``, ``pi_h`` ``[B, H, G, A_h]`` and ``v_m`` ``[B, H, G]`` (eqs. 1-3)."""
        model = self.model
        with params.to_module(self.q_network):
            q_m = self.q_network.module(rows).clamp(0.0, 1.0)
        return human_policy_and_value(
            q_m,
            model.human_mask(rows),
            model.in_goal(rows),
            ~model.terminal(rows),
            model.rest_action,
            self.theory_params,
        )

    @torch.no_grad()
    def policy(self, rows: Rows) -> Float[Tensor, "batch human goal action"]:
        """``π_h(s, g)`` of the online network (eq. 2)."""
        return self.phase1_values(self.q_network_params, rows)["pi_h"]

    def forward(self, tensordict: TensorDictBase) -> TensorDict:
        """Loss ``loss_q_m``: mean squared error over allowed actions and real goals."""
        model = self.model
        rows = tensordict.get("state")
        mask = model.human_mask(rows)
        with torch.no_grad():
            profiles = model.uniform_human_actions(mask, self.samples, self.generator)
            target = phase1_target(
                model,
                rows,
                profiles,
                lambda r: self.phase1_values(self.target_q_network_params, r)["v_m"],
                self.theory_params.gamma_h,
                self.sampled,
                self.generator,
            )
        with self.q_network_params.to_module(self.q_network):
            pred = self.q_network.module(rows)
        weight = (
            mask[:, :, None, :]
            & model.goal_mask[None, :, :, None]
            & ~model.terminal(rows)[:, None, None, None]
        )
        loss = masked_mse(pred, target, weight)
        return TensorDict({"loss_q_m": loss}, batch_size=[])


class SampledPhase2Loss(LossModule):
    """Phase-2 loss on rows: ``V^e_h`` and ``log(-Q_r)`` on :func:`phase2_target`.

    Parameters
    ----------
    ve_network
        :func:`~empo.learning.sampled.networks.goal_head_module` with one output.
    qr_network
        :func:`~empo.learning.sampled.networks.robot_head_module`.
    model
        The row model.
    theory_params
        Normative parameters.
    human_policy
        ``rows -> π_h(s, g)`` of the frozen phase 1.
    samples
        ``M`` human profiles per row.
    sampled, generator
        One successor drawn per action profile instead of all of them; generator
        of the profiles and draws.
    advantage_weight
        Weight of the action-dependent part of the ``log(-Q_r)`` error
        (:class:`empo.learning.losses.Phase2Loss`).
    """

    ve_network: TensorDictModule
    ve_network_params: TensorDictParams
    target_ve_network_params: TensorDictParams
    qr_network: TensorDictModule
    qr_network_params: TensorDictParams
    target_qr_network_params: TensorDictParams

    def __init__(
        self,
        ve_network: TensorDictModule,
        qr_network: TensorDictModule,
        model: RowModel,
        theory_params: TheoryParameters,
        human_policy: Callable[[Rows], Tensor],
        samples: int,
        sampled: bool = False,
        generator: torch.Generator | None = None,
        advantage_weight: float = 1.0,
    ):
        super().__init__()
        self.convert_to_functional(ve_network, "ve_network", create_target_params=True)
        self.convert_to_functional(qr_network, "qr_network", create_target_params=True)
        self.in_keys = ["state"]
        self.out_keys = ["loss_v_e", "loss_q_r"]
        self.model = model
        self.theory_params = theory_params
        self.human_policy = human_policy
        self.samples = samples
        self.sampled = sampled
        self.generator = generator
        self.advantage_weight = advantage_weight
        self.beta_r = float(theory_params.beta_r)

    def _log_neg_q(self, params: TensorDictParams, rows: Rows) -> Tensor:
        with params.to_module(self.qr_network):
            return self.qr_network.module(rows)

    def robot_values(
        self,
        ve_params: TensorDictParams,
        qr_params: TensorDictParams,
        rows: Rows,
        beta_r: float,
    ) -> dict[str, Tensor]:
        """``v_e, x_h, u_r, q_r, pi_r, v_r`` at ``rows`` (eqs. 5, 7-9); ``q_r``,
        ``pi_r``, ``u_r`` and ``v_e`` are 0 and ``v_r = terminal_v_r`` at terminal
        rows (the exact solver's layout)."""
        model = self.model
        terminal = model.terminal(rows)
        with ve_params.to_module(self.ve_network):
            v_e = self.ve_network.module(rows).clamp(0.0, 1.0)
        v_e = v_e * ~terminal[:, None, None]
        chain = theory.robot_chain(
            -torch.exp(self._log_neg_q(qr_params, rows)),
            v_e,
            model.robot_mask(rows),
            model.goal_weights,
            self.theory_params,
            beta_r=beta_r,
            terminal=terminal,
            x_floor=X_FLOOR,
        )
        return {"v_e": v_e, **vars(chain)}

    @torch.no_grad()
    def online_values(self, rows: Rows, beta_r: float) -> dict[str, Tensor]:
        """:meth:`robot_values` of the online networks."""
        return self.robot_values(
            self.ve_network_params, self.qr_network_params, rows, beta_r
        )

    @torch.no_grad()
    def acting_policy(self, rows: Rows, beta_r: float) -> Float[Tensor, "batch a_r"]:
        """Robot policy of the rollouts: eq. (5) at ``beta_r`` from the online ``Q_r``."""
        mask = self.model.robot_mask(rows)
        q_r = -torch.exp(self._log_neg_q(self.qr_network_params, rows))
        return theory.robot_policy_of(q_r, mask, self.theory_params, beta_r)

    @torch.no_grad()
    def targets(
        self, rows: Rows
    ) -> tuple[Float[Tensor, "batch human goal"], Float[Tensor, "batch a_r"]]:
        """:func:`phase2_target` with fresh profiles and the target networks."""
        model = self.model
        tp = self.theory_params
        pi_h = self.human_policy(rows)
        pi_bar = theory.goal_marginal_policy(pi_h, model.goal_weights)
        pi_bar = torch.where(
            pi_bar.sum(-1, keepdim=True) > 0, pi_bar, torch.ones_like(pi_bar)
        )
        profiles = sample_actions(pi_bar, self.samples, self.generator)
        here = self.robot_values(
            self.target_ve_network_params,
            self.target_qr_network_params,
            rows,
            self.beta_r,
        )
        return phase2_target(
            model,
            rows,
            pi_h,
            here["pi_r"],
            profiles,
            lambda r: self.robot_values(
                self.target_ve_network_params,
                self.target_qr_network_params,
                r,
                self.beta_r,
            ),
            tp.gamma_h,
            tp.gamma_r,
            self.sampled,
            self.generator,
        )

    def forward(self, tensordict: TensorDictBase) -> TensorDict:
        """Losses ``loss_v_e`` (squared error) and ``loss_q_r`` (in ``log(-Q_r)``,
        squared mean error plus ``advantage_weight`` times the squared deviations)."""
        model = self.model
        rows = tensordict.get("state")
        ve_target, q_target = self.targets(rows)
        alive = ~model.terminal(rows)
        with self.ve_network_params.to_module(self.ve_network):
            ve_pred = self.ve_network.module(rows)
        loss_ve = masked_mse(
            ve_pred, ve_target, model.goal_mask[None] & alive[:, None, None]
        )
        log_pred = self._log_neg_q(self.qr_network_params, rows)
        loss_q = log_q_loss(
            log_pred, q_target, model.robot_mask(rows), self.advantage_weight
        )
        return TensorDict({"loss_v_e": loss_ve, "loss_q_r": loss_q}, batch_size=[])
