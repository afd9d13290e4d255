"""Actor-critic variant of phase 2: a critic ``V_r(s)`` and an actor ``π_r(a_r | s)``.

THEORY.md (learning-based approximation, phase 2): instead of ``Q_r`` learn ``V_r``
and a policy ``π_r``; the critic is regressed on target (12) plus ``U_r(s)`` from
eq. (8), ``V^e_h`` on target (13) exactly as in the DQN variant
(:class:`empo.learning.losses.Phase2Base`), and the actor by an advantage-weighted
log-probability loss.

As in the DQN variant the targets are computed at a sampled state ``s`` from the
world model's explicit transitions, so every action is evaluated, not only the one a
rollout took: for each robot action ``a_r``

    q_r(s, a_r) = γ_r Σ_{a_H} Π_h π̄_h(s)(a_h) Σ_{s'} P(s'|s,a) V_r(s')      (4, 12)

with ``V_r(s')`` from the critic's target network (``terminal_v_r`` at terminal
states), and the critic's target is ``v_r(s) = U_r(s) + Σ_a π_r(s)(a) q_r(s, a)``
(eqs. 8, 9, 12) with ``π_r`` the current actor.

Actor loss (THEORY.md, learning-based approximation, phase 2). Eq. (5) is a power law
in ``-Q_r``, so advantages are measured on its log scale,
``A(s, a_r) = -log((-q_r(s, a_r) + ε_Q) / (-V_r(s) + ε_Q))``, and each allowed action
is weighted by ``exp(β'_r A(s, a_r))`` normalised over the allowed actions. The
baseline ``V_r(s)`` cancels in the normalisation, so the weights are eq. (5) at the
annealed ``β'_r`` applied to ``q_r(s, ·)``: they are computed as exactly that, through
:func:`empo.theory.robot_policy_of` (which covers the normalised-Boltzmann variant
too), and the loss is the Kullback–Leibler divergence from the weights to ``π_r(s)``.
Its minimiser is the power-law policy of the theory; a plain policy gradient on the
linear advantage ``v_r(s) − V_r(s)`` would converge to the greedy policy instead.
"""

from __future__ import annotations

import torch
from jaxtyping import Float, Int64
from tensordict import TensorDict, TensorDictBase
from tensordict.nn import TensorDictModule, TensorDictParams
from torch import Tensor

from empo import theory
from empo.learning.losses import X_FLOOR, Phase2Base, masked_mse
from empo.learning.model import TransitionModel
from empo.parameters.theory import TheoryParameters

__all__ = ["ActorCriticLoss"]


class ActorCriticLoss(Phase2Base):
    """Phase-2 loss of the actor-critic variant (see the module docstring).

    Losses: ``loss_v_e`` (target 13), ``loss_v_r`` (squared error in ``log(-V_r)``
    against target 12 plus ``U_r``) and ``loss_pi_r`` (advantage-weighted
    log-probability, as a Kullback–Leibler divergence). The critic bootstraps from a
    target network; the actor has none (its targets come from the critic).

    Parameters
    ----------
    ve_network
        The ``V^e`` network.
    vr_network
        The critic (:func:`empo.learning.modules.robot_value_module`).
    policy_network
        The actor (:func:`empo.learning.modules.robot_policy_module`).
    model
        The batched world model.
    theory_params
        Normative parameters.
    pi_h
        ``[state, human, goal, action]`` frozen phase-1 policy.
    sampled
        Sampled instead of expected targets.
    generator
        Random generator for sampled successors.
    tabular
        The networks are lookup tables (as in
        :class:`empo.learning.losses.Phase1Loss`): the critic bootstraps from itself
        and the losses are summed over states (each table entry's gradient is its
        error; for the actor's logits, ``π_r − weights``).
    """

    vr_network: TensorDictModule
    vr_network_params: TensorDictParams
    target_vr_network_params: TensorDictParams
    policy_network: TensorDictModule
    policy_network_params: TensorDictParams
    target_policy_network_params: TensorDictParams

    def __init__(
        self,
        ve_network: TensorDictModule,
        vr_network: TensorDictModule,
        policy_network: TensorDictModule,
        model: TransitionModel,
        theory_params: TheoryParameters,
        pi_h: Float[Tensor, "state human goal action"],
        sampled: bool = False,
        generator: torch.Generator | None = None,
        tabular: bool = False,
    ):
        super().__init__(
            ve_network, model, theory_params, pi_h, sampled, generator, tabular
        )
        self.convert_to_functional(
            vr_network, "vr_network", create_target_params=not tabular
        )
        self.convert_to_functional(
            policy_network, "policy_network", create_target_params=False
        )
        self.out_keys = ["loss_v_e", "loss_v_r", "loss_pi_r"]

    def log_neg_robot_value(
        self, params: TensorDictParams, states: Int64[Tensor, " batch"]
    ) -> Float[Tensor, " batch"]:
        """The critic's raw output ``log(-V_r(s))``."""
        with params.to_module(self.vr_network):
            return self.vr_network.module(states).squeeze(-1)

    def robot_v(
        self, params: TensorDictParams, states: Int64[Tensor, " batch"]
    ) -> Float[Tensor, " batch"]:
        """``V_r(s) = -exp(log_neg_v_r)``, ``terminal_v_r`` at terminal states."""
        v_r = -torch.exp(self.log_neg_robot_value(params, states))
        terminal = self.model.terminal[states]
        return torch.where(
            terminal, torch.full_like(v_r, self.theory_params.terminal_v_r), v_r
        )

    def log_policy(
        self, params: TensorDictParams, states: Int64[Tensor, " batch"]
    ) -> Float[Tensor, "batch a_r"]:
        """``log π_r(s)`` over the allowed robot actions (``-inf`` elsewhere)."""
        mask = self.model.robot_mask(states)
        with params.to_module(self.policy_network):
            logits = self.policy_network.module(states)
        logits = logits.masked_fill(~mask, -torch.inf)
        safe = torch.where(mask.any(-1, keepdim=True), logits, torch.zeros_like(logits))
        return torch.log_softmax(safe, -1).masked_fill(~mask, -torch.inf)

    def robot_pi(
        self, params: TensorDictParams, states: Int64[Tensor, " batch"]
    ) -> Float[Tensor, "batch a_r"]:
        """``π_r(s)`` of the actor, zeros at terminal states."""
        return torch.exp(self.log_policy(params, states))

    @torch.no_grad()
    def acting_policy(
        self, states: Int64[Tensor, " batch"], beta_r: float
    ) -> Float[Tensor, "batch a_r"]:
        """Robot policy of the rollouts: the actor (it tracks eq. (5) at ``β'_r``)."""
        return self.robot_pi(self.policy_network_params, states)

    def lookahead(
        self,
        vr_params: TensorDictParams,
        ve_params: TensorDictParams,
        states: Int64[Tensor, " batch"],
        sampled: bool,
    ) -> dict[str, Tensor]:
        """One step of the explicit model from ``states``.

        Returns
        -------
        dict
            ``q_r`` ``[batch, a_r]`` (eqs. 4, 12, 0 at disallowed actions),
            ``succ``, ``prob`` ``[batch, joint, k]``, ``v_e_next``
            ``[batch, joint, k, human, goal]``, ``pi_h`` and ``pi_bar``.
        """
        model = self.model
        succ, prob = model.successors_of(states, sampled, self.generator)
        unique, inverse = torch.unique(succ, return_inverse=True)
        v_r_next = (prob * self.robot_v(vr_params, unique)[inverse]).sum(-1)
        pi_h = self.pi_h[states]
        pi_bar = theory.goal_marginal_policy(pi_h, model.goal_weights)
        marginals = {agent: pi_bar[:, h] for h, agent in enumerate(model.humans)}
        q_r = self.theory_params.gamma_r * model.robot_marginal(v_r_next, marginals)
        return {
            "q_r": q_r * model.robot_mask(states),
            "succ": succ,
            "prob": prob,
            "v_e_next": self.goal_values(ve_params, unique)[inverse],
            "pi_h": pi_h,
            "pi_bar": pi_bar,
        }

    def robot_side(
        self,
        ve_params: TensorDictParams,
        states: Int64[Tensor, " batch"],
        q_r: Float[Tensor, "batch a_r"],
        pi_r: Float[Tensor, "batch a_r"],
    ) -> dict[str, Tensor]:
        """``v_e`` and the chain of eqs. (7)-(9) under the actor's ``pi_r``
        (:func:`empo.theory.robot_chain` with a given policy)."""
        v_e = self.goal_values(ve_params, states)
        chain = theory.robot_chain(
            q_r,
            v_e,
            self.model.robot_mask(states),
            self.model.goal_weights,
            self.theory_params,
            pi_r=pi_r,
            terminal=self.model.terminal[states],
            x_floor=X_FLOOR,
        )
        return {"v_e": v_e, **vars(chain)}

    @torch.no_grad()
    def online_values(
        self, states: Int64[Tensor, " batch"], beta_r: float
    ) -> dict[str, Tensor]:
        """``v_e, x_h, u_r, q_r, pi_r, v_r`` of the online networks (eqs. 7–9).

        ``pi_r`` is the actor; ``q_r`` is the expected one-step look-ahead of the
        critic (eq. 12) and ``v_r = U_r + Σ π_r q_r`` (eq. 9), ``terminal_v_r`` at
        terminal states (the exact solver's layout). ``beta_r`` is unused: the actor
        has been trained towards eq. (5) at the annealed ``β'_r``.
        """
        q_r = self.lookahead(
            self.vr_network_params, self.ve_network_params, states, False
        )["q_r"]
        pi_r = self.robot_pi(self.policy_network_params, states)
        return self.robot_side(self.ve_network_params, states, q_r, pi_r)

    @torch.no_grad()
    def _targets(self, states: Int64[Tensor, " batch"]) -> tuple[
        Float[Tensor, "batch human goal"],
        Float[Tensor, " batch"],
        Float[Tensor, "batch a_r"],
    ]:
        """Targets of ``V^e_h`` (13), ``V_r`` (12 with eqs. 8, 9) and the actor's
        normalised advantage weights (eq. 5 at ``β'_r``)."""
        step = self.lookahead(
            self.target_vr_network_params,
            self.target_ve_network_params,
            states,
            self.sampled,
        )
        pi_r = self.robot_pi(self.policy_network_params, states)
        ve_target = self.goal_value_target(
            step["succ"],
            step["prob"],
            step["v_e_next"],
            step["pi_h"],
            step["pi_bar"],
            pi_r,
        )
        here = self.robot_side(self.target_ve_network_params, states, step["q_r"], pi_r)
        weights = theory.robot_policy_of(
            step["q_r"], self.model.robot_mask(states), self.theory_params, self.beta_r
        )
        return ve_target, here["v_r"], weights

    def forward(self, tensordict: TensorDictBase) -> TensorDict:
        """Losses ``loss_v_e``, ``loss_v_r`` and ``loss_pi_r``."""
        states = tensordict.get("state")
        mask = self.model.robot_mask(states)
        alive = mask.any(-1)
        ve_target, v_target, weights = self._targets(states)
        loss_ve = self.goal_value_loss(states, ve_target)
        log_v = self.log_neg_robot_value(self.vr_network_params, states)
        log_target = torch.log((-v_target).clamp_min(1e-30))
        loss_v = masked_mse(log_v, log_target, alive, self.tabular)
        log_pi = self.log_policy(self.policy_network_params, states)
        log_w = torch.log(weights.clamp_min(1e-30))
        kl = torch.where(mask, weights * (log_w - log_pi), torch.zeros_like(log_pi))
        loss_pi = kl.sum()
        if not self.tabular:
            loss_pi = loss_pi / alive.sum().clamp_min(1).to(kl.dtype)
        return TensorDict(
            {"loss_v_e": loss_ve, "loss_v_r": loss_v, "loss_pi_r": loss_pi},
            batch_size=[],
        )
