"""Actor-critic variant of phase 2: a critic ``V_r(s)`` and an actor ``π_r(a_r | s)``.

THEORY.md (learning-based approximation, phase 2): instead of ``Q_r`` learn ``V_r``
and a policy ``π_r``; the critic is regressed on target (12) plus ``U_r(s)`` from
eq. (8), ``V^e_h`` on target (13) exactly as in the DQN variant
(:class:`empo.learning.phase2.Phase2Base`), and the actor by an advantage-weighted
log-probability loss.

As in the DQN variant the targets are computed at a state ``s`` of the batch from the
data source's transitions (:func:`empo.learning.targets.phase2_target`), so every robot
action is evaluated, not only the one a rollout took: for each robot action ``a_r``

    q_r(s, a_r) = γ_r Σ_{a_H} Π_h π̄_h(s)(a_h) Σ_{s'} P(s'|s,a) V_r(s')      (4, 12)

(exact on enumerated worlds, an unbiased estimate from drawn human profiles
otherwise) with ``V_r(s')`` from the critic's target network (``terminal_v_r`` at
terminal states), and the critic's target is ``v_r(s) = U_r(s) + Σ_a π_r(s)(a)
q_r(s, a)`` (eqs. 8, 9, 12, :func:`empo.theory.robot_chain` under the actor's
``π_r``).

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

from dataclasses import dataclass

import torch
from jaxtyping import Float
from tensordict import NestedKey, TensorDict, TensorDictBase
from tensordict.nn import TensorDictModuleBase, TensorDictParams
from torch import Tensor

from empo import theory
from empo.learning.data import WorldData
from empo.learning.losses import HumanPolicy, TargetOptions, masked_mse
from empo.learning.phase2 import Phase2Base
from empo.parameters.theory import TheoryParameters

__all__ = ["ActorCriticLoss"]

EVALUATION_SEED = 0
"""Seed of the action profiles drawn when the online values are evaluated on a world
reached by rows (so that evaluating twice gives the same numbers)."""


class ActorCriticLoss(Phase2Base):
    """Phase-2 loss of the actor-critic variant (see the module docstring).

    Losses: ``loss_v_e`` (target 13), ``loss_v_r`` (squared error in ``log(-V_r)``
    against target 12 plus ``U_r``) and ``loss_pi_r`` (the Kullback–Leibler
    divergence from the normalised advantage weights to the actor). The critic
    bootstraps from a target network; the actor has none (its targets come from the
    critic).

    Parameters
    ----------
    ve_network
        The ``V^e`` network.
    vr_network
        The critic (:func:`empo.learning.modules.state_network`, one output).
    policy_network
        The actor (:func:`empo.learning.modules.state_network`, ``A_r`` logits).
    data, theory_params, human_policy, options
        As in :class:`~empo.learning.phase2.Phase2Base`; with tables the losses are
        summed over states (each entry's gradient is its error; for the actor's
        logits, ``π_r − weights``).
    """

    @dataclass
    class _AcceptedKeys(Phase2Base._AcceptedKeys):
        """Batch keys, the networks' outputs and the fixed targets ``v_r_target``
        and ``pi_r_target``."""

        log_neg_v_r: NestedKey = "log_neg_v_r"
        logits_r: NestedKey = "logits_r"
        v_r_target: NestedKey = "v_r_target"
        pi_r_target: NestedKey = "pi_r_target"

    vr_network: TensorDictModuleBase
    vr_network_params: TensorDictParams
    target_vr_network_params: TensorDictParams
    policy_network: TensorDictModuleBase
    policy_network_params: TensorDictParams
    target_policy_network_params: TensorDictParams

    def __init__(
        self,
        ve_network: TensorDictModuleBase,
        vr_network: TensorDictModuleBase,
        policy_network: TensorDictModuleBase,
        data: WorldData,
        theory_params: TheoryParameters,
        human_policy: HumanPolicy,
        options: TargetOptions = TargetOptions(),
    ):
        super().__init__(ve_network, data, theory_params, human_policy, options)
        self.convert_to_functional(
            vr_network, "vr_network", create_target_params=not self.tabular
        )
        self.convert_to_functional(
            policy_network, "policy_network", create_target_params=False
        )
        self.out_keys = ["loss_v_e", "loss_v_r", "loss_pi_r"]

    def log_neg_robot_value(
        self, params: TensorDictBase | None, states: TensorDict
    ) -> Float[Tensor, " batch"]:
        """The critic's raw output ``log(-V_r(s))``."""
        key = self.tensor_keys.log_neg_v_r
        return self.evaluate(self.vr_network, params, states, key)

    def robot_v(
        self, params: TensorDictBase | None, states: TensorDict
    ) -> Float[Tensor, " batch"]:
        """``V_r(s) = -exp(log_neg_v_r)``, ``terminal_v_r`` at terminal states."""
        v_r = -torch.exp(self.log_neg_robot_value(params, states))
        return theory.terminal_robot_value(
            v_r, self.data.terminal(states), self.theory_params
        )

    def log_policy(
        self, params: TensorDictBase | None, states: TensorDict
    ) -> Float[Tensor, "batch a_r"]:
        """``log π_r(s)`` over the allowed robot actions (``-inf`` elsewhere)."""
        mask = self.data.robot_mask(states)
        logits = self.evaluate(
            self.policy_network, params, states, self.tensor_keys.logits_r
        )
        logits = logits.masked_fill(~mask, -torch.inf)
        safe = torch.where(mask.any(-1, keepdim=True), logits, torch.zeros_like(logits))
        return torch.log_softmax(safe, -1).masked_fill(~mask, -torch.inf)

    def robot_pi(
        self, params: TensorDictBase | None, states: TensorDict
    ) -> Float[Tensor, "batch a_r"]:
        """``π_r(s)`` of the actor, zeros at terminal states."""
        return torch.exp(self.log_policy(params, states))

    @torch.no_grad()
    def acting_policy(
        self, states: TensorDict, beta_r: float
    ) -> Float[Tensor, "batch a_r"]:
        """Robot policy of the rollouts: the actor (it tracks eq. (5) at ``β'_r``)."""
        return self.robot_pi(self.policy_network_params, states)

    def robot_side(self, states: TensorDict, target: bool) -> dict[str, Tensor]:
        """``v_e``, the actor's ``pi_r``, the critic's one-step look-ahead ``q_r``
        (eqs. 4, 12), the chain of eqs. (7)-(9) under ``pi_r``
        (:func:`empo.theory.robot_chain` with a given policy) and the look-ahead's
        ``V^e_h`` target (13): from the target networks with the loss's successor
        draws (``target``), or from the online ones with expected successors and,
        where profiles are drawn, the fixed :data:`EVALUATION_SEED`."""
        if target:
            ve_params, vr_params = (
                self.target_ve_network_params,
                self.target_vr_network_params,
            )
            sampled, generator = self.sampled, self.generator
        else:
            ve_params, vr_params = self.ve_network_params, self.vr_network_params
            sampled, generator = False, torch.Generator(device=self.data.device)
            generator.manual_seed(EVALUATION_SEED)

        def successor_values(succ: TensorDict) -> dict[str, Tensor]:
            return {
                "v_e": self.goal_values(ve_params, succ),
                "v_r": self.robot_v(vr_params, succ),
            }

        pi_r = self.robot_pi(self.policy_network_params, states)
        ve_target, q_r = self.lookahead(
            states, pi_r, successor_values, sampled, generator
        )
        v_e = self.goal_values(ve_params, states)
        return {**self.chain(states, q_r, v_e, pi_r=pi_r), "v_e_target": ve_target}

    @torch.no_grad()
    def online_values(self, states: TensorDict, beta_r: float) -> dict[str, Tensor]:
        """``v_e, q_r, pi_r, x_h, u_r, v_r`` of the online networks (eqs. 7-9).

        ``pi_r`` is the actor; ``q_r`` is the critic's expected one-step look-ahead
        (eq. 12) and ``v_r = U_r + Σ π_r q_r`` (eq. 9), ``terminal_v_r`` at terminal
        states. ``beta_r`` is unused: the actor has been trained towards eq. (5) at
        the annealed ``β'_r``.
        """
        out = self.robot_side(states, target=False)
        del out["v_e_target"]
        return out

    @torch.no_grad()
    def targets(self, states: TensorDict) -> tuple[
        Float[Tensor, "batch human goal"],
        Float[Tensor, " batch"],
        Float[Tensor, "batch a_r"],
    ]:
        """Targets of ``V^e_h`` (13), ``V_r`` (12 with eqs. 8, 9) and the actor's
        normalised advantage weights (eq. 5 at ``β'_r``)."""
        here = self.robot_side(states, target=True)
        weights = theory.robot_policy_of(
            here["q_r"], self.data.robot_mask(states), self.theory_params, self.beta_r
        )
        return here["v_e_target"], here["v_r"], weights

    @torch.no_grad()
    def layer_targets(self, states: TensorDict) -> dict[str, Tensor]:
        """Fixed targets of fitted backward induction at ``states`` whose successors
        lie in finished layers: the critic's look-ahead ``q_r`` (12) from the online
        networks at the successors, the actor's target eq. (5) of it at ``β_r``,
        ``V^e_h`` (13) under that policy and ``V_r = U_r + Σ π_r q_r`` (eqs. 7-9)
        with ``X_h`` from that ``V^e_h`` target: the exact backup at ``s``."""
        ve_params, vr_params = self.ve_network_params, self.vr_network_params

        def successor_values(succ: TensorDict) -> dict[str, Tensor]:
            return {
                "v_e": self.goal_values(ve_params, succ),
                "v_r": self.robot_v(vr_params, succ),
            }

        eq5 = self.eq5(states)
        ve_target, q_r = self.lookahead(
            states, eq5, successor_values, False, self.generator
        )
        pi_r = eq5(q_r)
        chain = self.chain(states, q_r, ve_target.clamp(0.0, 1.0), pi_r=pi_r)
        return {
            "v_e_target": ve_target,
            "v_r_target": chain["v_r"],
            "pi_r_target": pi_r,
        }

    def forward(self, tensordict: TensorDictBase) -> TensorDict:
        """Losses ``loss_v_e``, ``loss_v_r`` and ``loss_pi_r``, against the batch's
        fixed targets where it carries them."""
        states = self.batch_states(tensordict)
        mask = self.data.robot_mask(states)
        alive = mask.any(-1)
        keys = self.tensor_keys
        v_target = tensordict.get(keys.v_r_target, None)
        if v_target is None:
            ve_target, v_target, weights = self.targets(states)
        else:
            ve_target = tensordict.get(keys.v_e_target)
            weights = tensordict.get(keys.pi_r_target)
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
