"""Loss of phase 1: the goal-conditioned ``Q^m_h`` (eqs. 1-3).

Shared parts (keys, target options, error functions) are in
:mod:`empo.learning.losses`.
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
from empo.learning.data import STATE_ID, WorldData
from empo.learning.losses import (
    EmpoLoss,
    TargetOptions,
    human_policy_and_value,
    masked_mse,
)
from empo.learning.targets import phase1_target
from empo.parameters.theory import TheoryParameters

__all__ = ["Phase1Loss"]


class Phase1Loss(EmpoLoss):
    """Loss of phase 1: ``Q^m_h(s, g, ·)`` regressed on :func:`phase1_target` (eq. 1).

    ``V^m_h`` follows from ``Q^m_h`` through eqs. (2)-(3) (:func:`empo.theory.
    human_policy`, with ``ν_h``, the uniform ``π⁰_h`` and the rest-action convention).
    Every allowed action of every real goal of a non-terminal state is regressed
    (states inside a goal too, where eq. (1) still defines ``Q^m``).

    Potential-based shaping: with a potential ``Φ(s, g)`` the network outputs
    ``Q^m_h(s, g, ·) − Φ(s, g)``; its regression target is the original one minus
    ``Φ(s, g)``, which is the shaped target with reward ``γ_h 1[s'∉g] Φ(s', g) −
    Φ(s, g)``; adding ``Φ`` back gives the unshaped values, so the fixed point is
    unchanged (THEORY.md, phase 1).

    Parameters
    ----------
    network
        The phase-1 network (:func:`empo.learning.modules.goal_network` with
        ``A_h`` outputs).
    data, theory_params, options
        As in :class:`EmpoLoss`. A table's ``V^m_h`` changes only where its rows do,
        so it is kept for every state in the buffer ``v_m_table`` (:meth:`refresh`
        after each update) and targets read it at the successors.
    potential
        ``[state, human, goal]`` shaping potential by state id, or ``None``.
    """

    @dataclass
    class _AcceptedKeys(EmpoLoss._AcceptedKeys):
        """Batch keys, the network's output ``q_m`` (``Q^m_h − Φ``, raw) and the
        fixed target ``q_m_target`` (read when a batch carries it)."""

        q_m: NestedKey = "q_m_raw"
        q_m_target: NestedKey = "q_m_target"

    q_network: TensorDictModuleBase
    q_network_params: TensorDictParams
    target_q_network_params: TensorDictParams

    def __init__(
        self,
        network: TensorDictModuleBase,
        data: WorldData,
        theory_params: TheoryParameters,
        options: TargetOptions = TargetOptions(),
        potential: Float[Tensor, "state human goal"] | None = None,
    ):
        super().__init__(data, theory_params, options)
        self.convert_to_functional(
            network, "q_network", create_target_params=not self.tabular
        )
        self.out_keys = ["loss_q_m"]
        self.potential = potential
        if self.tabular:
            shape = (data.num_states, data.num_humans, data.num_goals)
            self.register_buffer("v_m_table", torch.zeros(shape, device=data.device))
            everything = data.all_states()
            for chunk in everything.split(4096):
                self.refresh(chunk)

    def shaped(
        self, params: TensorDictBase | None, states: TensorDict
    ) -> Float[Tensor, "batch human goal action"]:
        """The network's output with the shaping potential added back."""
        q = self.evaluate(self.q_network, params, states, self.tensor_keys.q_m)
        if self.potential is not None:
            q = q + self.potential[states.get(STATE_ID)][..., None]
        return q

    def phase1_values(
        self, params: TensorDictBase | None, states: TensorDict
    ) -> dict[str, Tensor]:
        """``q_m``, ``pi_h`` ``[B, H, G, A_h]`` and ``v_m`` ``[B, H, G]`` (eqs. 1-3;
        ``Q^m`` clamped to ``[0, 1]``, ``v_m`` 0 at terminal states)."""
        data = self.data
        return human_policy_and_value(
            self.shaped(params, states).clamp(0.0, 1.0),
            data.human_mask(states),
            data.in_goal(states),
            ~data.terminal(states),
            data.rest_action,
            self.theory_params,
        )

    @torch.no_grad()
    def refresh(self, states: TensorDict) -> None:
        """Recompute ``v_m_table`` at ``states`` (tables only)."""
        values = self.phase1_values(self.q_network_params, states)["v_m"]
        self.v_m_table[states.get(STATE_ID)] = values.to(self.v_m_table.dtype)

    def successor_v_m(self, states: TensorDict) -> Float[Tensor, "batch human goal"]:
        """``V^m_h(s', g)`` that targets bootstrap from: the table's buffer or the
        target network."""
        if self.tabular:
            return self.v_m_table[states.get(STATE_ID)]
        return self.phase1_values(self.target_q_network_params, states)["v_m"]

    @torch.no_grad()
    def policy(self, states: TensorDict) -> Float[Tensor, "batch human goal action"]:
        """``π_h(s, g)`` of the online network (eq. 2)."""
        return self.phase1_values(self.q_network_params, states)["pi_h"]

    @torch.no_grad()
    def target(
        self,
        states: TensorDict,
        successor_v_m: Callable[[TensorDict], Tensor] | None = None,
    ) -> Float[Tensor, "batch human goal action"]:
        """Regression target of the network's output at ``states``: eq. (1) from
        :func:`phase1_target` minus the shaping potential.

        Parameters
        ----------
        states
            ``[B]`` states.
        successor_v_m
            ``V^m_h`` at successors; default :meth:`successor_v_m` (the target
            network). Fitted backward induction passes the online network, whose
            later layers are final.
        """
        data = self.data
        others = data.others_profiles(states, self.samples, self.generator)
        target = phase1_target(
            data,
            states,
            others,
            successor_v_m or self.successor_v_m,
            self.theory_params.gamma_h,
            self.sampled,
            self.generator,
        )
        if self.potential is not None:
            target = target - self.potential[states.get(STATE_ID)][..., None]
        return target

    @torch.no_grad()
    def online_v_m(self, states: TensorDict) -> Float[Tensor, "batch human goal"]:
        """``V^m_h`` of the online network (eqs. 2-3)."""
        return self.phase1_values(self.q_network_params, states)["v_m"]

    def forward(self, tensordict: TensorDictBase) -> TensorDict:
        """Loss ``loss_q_m``: squared error over allowed actions and real goals,
        against the batch's ``q_m_target`` where it carries one (fitted backward
        induction) and :meth:`target` otherwise."""
        data = self.data
        states = self.batch_states(tensordict)
        target = tensordict.get(self.tensor_keys.q_m_target, None)
        if target is None:
            target = self.target(states)
        pred = self.evaluate(
            self.q_network, self.q_network_params, states, self.tensor_keys.q_m
        )
        weight = (
            data.human_mask(states)[:, :, None, :]
            & data.goal_mask[None, :, :, None]
            & ~data.terminal(states)[:, None, None, None]
        )
        loss = masked_mse(pred, target, weight, self.tabular)
        return TensorDict({"loss_q_m": loss}, batch_size=[])
