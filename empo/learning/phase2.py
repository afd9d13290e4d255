"""Losses of phase 2: ``V^e_h`` (eq. 13) and, DQN variant, ``Q_r`` (eq. 12).

The actor-critic variant is :mod:`empo.learning.actor_critic`; shared parts (keys,
target options, error functions) are in :mod:`empo.learning.losses`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch
from jaxtyping import Float
from tensordict import NestedKey, TensorDict, TensorDictBase
from tensordict.nn import TensorDictModuleBase, TensorDictParams
from torch import Tensor

from empo import theory
from empo.learning.data import WorldData
from empo.learning.losses import (
    X_FLOOR,
    EmpoLoss,
    HumanPolicy,
    TargetOptions,
    log_q_loss,
    masked_mse,
)
from empo.learning.targets import phase2_target
from empo.parameters.theory import TheoryParameters

__all__ = ["Phase2Base", "Phase2Loss"]


class Phase2Base(EmpoLoss):
    """What both phase-2 variants share: the ``V^e_h`` network, its target (13) and
    the frozen phase-1 policy.

    Parameters
    ----------
    ve_network
        The ``V^e`` network (:func:`empo.learning.modules.goal_network`, one output).
    data, theory_params, options
        As in :class:`EmpoLoss`.
    human_policy
        ``states -> π_h(s, g)`` of the frozen phase 1.
    """

    @dataclass
    class _AcceptedKeys(EmpoLoss._AcceptedKeys):
        """Batch keys, the ``V^e`` network's raw output and its fixed target
        ``v_e_target`` (read when a batch carries it)."""

        v_e: NestedKey = "v_e_raw"
        v_e_target: NestedKey = "v_e_target"

    ve_network: TensorDictModuleBase
    ve_network_params: TensorDictParams
    target_ve_network_params: TensorDictParams

    def __init__(
        self,
        ve_network: TensorDictModuleBase,
        data: WorldData,
        theory_params: TheoryParameters,
        human_policy: HumanPolicy,
        options: TargetOptions = TargetOptions(),
    ):
        super().__init__(data, theory_params, options)
        self.convert_to_functional(
            ve_network, "ve_network", create_target_params=not self.tabular
        )
        self.human_policy = human_policy
        self.beta_r = float(theory_params.beta_r)

    def goal_values(
        self, params: TensorDictBase | None, states: TensorDict
    ) -> Float[Tensor, "batch human goal"]:
        """``V^e_h(s, g)`` for all humans and goals, in ``[0, 1]``, 0 when terminal."""
        v_e = self.evaluate(self.ve_network, params, states, self.tensor_keys.v_e)
        alive = ~self.data.terminal(states)
        return v_e.clamp(0.0, 1.0) * alive[:, None, None]

    def chain(
        self,
        states: TensorDict,
        q_r: Float[Tensor, "batch a_r"],
        v_e: Float[Tensor, "batch human goal"],
        **given: Tensor | float,
    ) -> dict[str, Tensor]:
        """``v_e`` and :func:`empo.theory.robot_chain` (eqs. 5, 7-9) at ``states``
        (``given``: a robot policy ``pi_r`` or an annealed ``beta_r``), with the
        training floor :data:`X_FLOOR` on ``X_h``."""
        data = self.data
        chain = theory.robot_chain(
            q_r,
            v_e,
            data.robot_mask(states),
            data.goal_weights,
            self.theory_params,
            terminal=data.terminal(states),
            x_floor=X_FLOOR,
            **given,
        )
        return {"v_e": v_e, **vars(chain)}

    def eq5(self, states: TensorDict) -> Callable[[Tensor], Tensor]:
        """``q_r -> π_r`` by eq. (5) at the loss's ``β_r`` on ``states``."""
        mask = self.data.robot_mask(states)
        return lambda q_r: theory.robot_policy_of(
            q_r, mask, self.theory_params, self.beta_r
        )

    def goal_value_loss(
        self, states: TensorDict, ve_target: Float[Tensor, "batch human goal"]
    ) -> Tensor:
        """Squared error of the online ``V^e_h`` against ``ve_target``."""
        data = self.data
        alive = ~data.terminal(states)
        ve_pred = self.evaluate(
            self.ve_network, self.ve_network_params, states, self.tensor_keys.v_e
        )
        return masked_mse(
            ve_pred,
            ve_target,
            data.goal_mask[None] & alive[:, None, None],
            self.tabular,
        )

    def lookahead(
        self,
        states: TensorDict,
        pi_r: Float[Tensor, "batch a_r"] | Callable[[Tensor], Tensor],
        successor_values: Callable[[TensorDict], dict[str, Tensor]],
        sampled: bool,
        generator: torch.Generator | None,
    ) -> tuple[Float[Tensor, "batch human goal"], Float[Tensor, "batch a_r"]]:
        """:func:`~empo.learning.targets.phase2_target` at ``states`` under the
        frozen ``π_h``, profiles from its goal marginals (eqs. 4, 6); ``pi_r`` may
        be a function of the ``Q_r`` target."""
        pi_h = self.human_policy(states)
        pi_bar = theory.goal_marginal_policy(pi_h, self.data.goal_weights)
        profiles = self.data.human_profiles(pi_bar, self.samples, generator)
        tp = self.theory_params
        return phase2_target(
            self.data,
            states,
            pi_h,
            pi_r,
            profiles,
            successor_values,
            tp.gamma_h,
            tp.gamma_r,
            sampled,
            generator,
        )


class Phase2Loss(Phase2Base):
    """Loss of phase 2, DQN variant: ``V^e_h`` by target (13), ``Q_r`` by (12).

    With phase 1 frozen, the targets at a state ``s`` use ``π_r(s)`` from the target
    ``Q_r`` through eq. (5) at the current (annealed) ``β'_r`` and, at successors,
    ``V_r(s') = U_r(s') + Σ π_r(s') Q_r(s')`` (eq. 9) with ``U_r`` from eq. (8) and
    ``X_h`` the exact sum over goals of eq. (7) from the target ``V^e_h``
    (:func:`empo.theory.robot_chain`); ``V_r = terminal_v_r`` at terminal states.
    ``Q_r`` is regressed in ``log(-Q_r)`` (:func:`log_q_loss`).

    Parameters
    ----------
    ve_network, qr_network
        The ``V^e`` and ``log(-Q_r)`` networks.
    data, theory_params, human_policy, options
        As in :class:`Phase2Base`.
    advantage_weight
        Weight of the action-dependent part of the ``log(-Q_r)`` error. Only the
        deviations from a state's mean decide ``π_r`` (eq. 5) and they can be much
        smaller than the state's value, so weighting them more focuses the fit on
        what the policy reads. It changes the loss, not its minimiser (1: plain
        mean squared error).
    """

    @dataclass
    class _AcceptedKeys(Phase2Base._AcceptedKeys):
        """Batch keys, the networks' outputs and the fixed target
        ``q_r_target``."""

        log_neg_q_r: NestedKey = "log_neg_q_r"
        q_r_target: NestedKey = "q_r_target"

    qr_network: TensorDictModuleBase
    qr_network_params: TensorDictParams
    target_qr_network_params: TensorDictParams

    def __init__(
        self,
        ve_network: TensorDictModuleBase,
        qr_network: TensorDictModuleBase,
        data: WorldData,
        theory_params: TheoryParameters,
        human_policy: HumanPolicy,
        options: TargetOptions = TargetOptions(),
        advantage_weight: float = 1.0,
    ):
        super().__init__(ve_network, data, theory_params, human_policy, options)
        self.convert_to_functional(
            qr_network, "qr_network", create_target_params=not self.tabular
        )
        self.out_keys = ["loss_v_e", "loss_q_r"]
        self.advantage_weight = advantage_weight

    def robot_q(
        self, params: TensorDictBase | None, states: TensorDict
    ) -> Float[Tensor, "batch a_r"]:
        """``Q_r(s, ·) = -exp(log_neg_q_r)``."""
        key = self.tensor_keys.log_neg_q_r
        return -torch.exp(self.evaluate(self.qr_network, params, states, key))

    def robot_values(
        self,
        ve_params: TensorDictBase | None,
        qr_params: TensorDictBase | None,
        states: TensorDict,
        beta_r: float,
    ) -> dict[str, Tensor]:
        """``v_e`` and ``q_r, pi_r, x_h, u_r, v_r`` (eqs. 5, 7-9) at ``states``.

        ``q_r``, ``pi_r``, ``x_h`` and ``u_r`` are 0 at terminal states, where
        ``v_r = terminal_v_r`` (the exact solver's layout).
        """
        v_e = self.goal_values(ve_params, states)
        return self.chain(states, self.robot_q(qr_params, states), v_e, beta_r=beta_r)

    @torch.no_grad()
    def targets(
        self, states: TensorDict
    ) -> tuple[Float[Tensor, "batch human goal"], Float[Tensor, "batch a_r"]]:
        """Targets of ``V^e_h`` (13) and ``Q_r`` (12) from the target networks."""
        ve_params, qr_params = (
            self.target_ve_network_params,
            self.target_qr_network_params,
        )
        here = self.robot_values(ve_params, qr_params, states, self.beta_r)
        return self.lookahead(
            states,
            here["pi_r"],
            lambda s: self.robot_values(ve_params, qr_params, s, self.beta_r),
            self.sampled,
            self.generator,
        )

    @torch.no_grad()
    def layer_targets(self, states: TensorDict) -> dict[str, Tensor]:
        """Fixed targets of fitted backward induction at ``states`` whose successors
        lie in finished layers: ``Q_r`` (12) from the online networks at the
        successors, and ``V^e_h`` (13) under ``π_r(s)`` of eq. (5) applied to that
        ``Q_r`` target, i.e. the exact backup of eqs. (4)-(6) at ``s``."""
        ve_params, qr_params = self.ve_network_params, self.qr_network_params
        ve_target, q_target = self.lookahead(
            states,
            self.eq5(states),
            lambda s: self.robot_values(ve_params, qr_params, s, self.beta_r),
            False,
            self.generator,
        )
        return {"v_e_target": ve_target, "q_r_target": q_target}

    @torch.no_grad()
    def online_values(self, states: TensorDict, beta_r: float) -> dict[str, Tensor]:
        """:meth:`robot_values` of the online networks."""
        return self.robot_values(
            self.ve_network_params, self.qr_network_params, states, beta_r
        )

    @torch.no_grad()
    def acting_policy(
        self, states: TensorDict, beta_r: float
    ) -> Float[Tensor, "batch a_r"]:
        """Robot policy of the rollouts: eq. (5) at ``beta_r`` from the online
        ``Q_r``."""
        q_r = self.robot_q(self.qr_network_params, states)
        return theory.robot_policy_of(
            q_r, self.data.robot_mask(states), self.theory_params, beta_r
        )

    def forward(self, tensordict: TensorDictBase) -> TensorDict:
        """Losses ``loss_v_e`` (squared error) and ``loss_q_r`` (in ``log(-Q_r)``,
        squared mean error plus ``advantage_weight`` times the squared deviations),
        against the batch's fixed targets where it carries them."""
        states = self.batch_states(tensordict)
        keys = self.tensor_keys
        q_target = tensordict.get(keys.q_r_target, None)
        if q_target is None:
            ve_target, q_target = self.targets(states)
        else:
            ve_target = tensordict.get(keys.v_e_target)
        loss_ve = self.goal_value_loss(states, ve_target)
        log_pred = self.evaluate(
            self.qr_network,
            self.qr_network_params,
            states,
            self.tensor_keys.log_neg_q_r,
        )
        loss_q = log_q_loss(
            log_pred,
            q_target,
            self.data.robot_mask(states),
            self.advantage_weight,
            self.tabular,
        )
        return TensorDict({"loss_v_e": loss_ve, "loss_q_r": loss_q}, batch_size=[])
