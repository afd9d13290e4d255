"""Loss modules of the two phases (TorchRL ``LossModule`` subclasses).

Both losses bootstrap from target networks (``target_<name>_params``, updated by
:class:`torchrl.objectives.SoftUpdate`) and compute their targets from the world
model's explicit transitions at each sampled state ``s``:

* ``expected`` targets average over *all* successors with their probabilities (the
  exact expectation over ``s'``), so the only noise is which states are in the batch;
* ``sampled`` targets draw one successor per (state, joint action) from the world
  model, as a model-free learner would see it, and rely on averaging over updates.

Actions are never sampled inside a target: every policy involved (``π_h`` from the
network through eq. (2), ``μ_-h``, ``π_r`` through eq. (5)) is known at ``s``, so the
targets take the exact expectation over joint actions. This is the expected-SARSA
form of THEORY.md with the expectation made exact, and the reason the minimum over
robot actions of eq. (1) can be taken explicitly.

All equations go through :mod:`empo.theory`.
"""

from __future__ import annotations

import torch
from jaxtyping import Bool, Float, Int64
from tensordict import TensorDict, TensorDictBase
from tensordict.nn import TensorDictModule, TensorDictParams
from torch import Tensor
from torchrl.objectives import LossModule

from empo import theory
from empo.learning.model import TransitionModel
from empo.parameters.theory import TheoryParameters

__all__ = [
    "Phase1Loss",
    "Phase2Base",
    "Phase2Loss",
    "X_FLOOR",
    "human_policy_and_value",
    "log_q_loss",
    "masked_mse",
]

X_FLOOR = 1e-8
"""Floor on ``X_h`` inside training targets so that a network still near its random
initialisation cannot produce ``U_r = -inf`` (eq. 8); it is far below any ``X_h`` of a
human who can reach a goal."""


def masked_mse(
    pred: Float[Tensor, "*shape"],
    target: Float[Tensor, "*shape"],
    mask: Bool[Tensor, "*shape"],
    tabular: bool = False,
) -> Tensor:
    """Squared error over the entries where ``mask`` holds (0 if none).

    The mean for networks; for lookup tables (``tabular``) half the sum, whose
    gradient on each entry is that entry's error, so that an SGD step of rate ``α``
    is the tabular update ``y ← y + α (target − y)`` (see :mod:`empo.learning.trainer`).
    """
    weight = mask.to(pred.dtype)
    squared = ((pred - target).pow(2) * weight).sum()
    if tabular:
        return 0.5 * squared
    return squared / weight.sum().clamp_min(1.0)


def human_policy_and_value(
    q_m: Float[Tensor, "batch human goal action"],
    mask: Bool[Tensor, "batch human action"],
    reached: Bool[Tensor, "batch human goal"],
    alive: Bool[Tensor, " batch"],
    rest_action: Int64[Tensor, " human"],
    theory_params: TheoryParameters,
) -> dict[str, Tensor]:
    """``q_m`` (0 at disallowed actions), ``pi_h`` (eq. 2) and ``v_m`` (eq. 3, 0 at
    terminal states) from the cautious action values of eq. (1)."""
    q_m = q_m * mask[:, :, None, :]
    pi_h = theory.human_policy(
        q_m,
        theory_params.beta_h,
        mask[:, :, None, :],
        nu_h=theory_params.nu_h,
        reached=reached,
        rest_action=rest_action[None, :, None],
    )
    v_m = theory.human_value(pi_h, q_m) * alive[:, None, None]
    return {"q_m": q_m, "pi_h": pi_h, "v_m": v_m}


def log_q_loss(
    log_pred: Float[Tensor, "batch a_r"],
    q_target: Float[Tensor, "batch a_r"],
    mask: Bool[Tensor, "batch a_r"],
    advantage_weight: float,
    tabular: bool = False,
) -> Tensor:
    """Error of a ``log(-Q_r)`` prediction against a ``Q_r`` target (eq. 12).

    Per state, the squared mean error over the allowed robot actions plus
    ``advantage_weight`` times the mean squared deviation from that mean (the part
    eq. (5) reads); averaged over states with an allowed action. For lookup tables
    (``tabular``) half the sum over states of that count times, so that the gradient
    on each entry is its mean error plus ``advantage_weight`` times its deviation
    (the tabular update, as in :func:`masked_mse`).
    """
    weight = mask.to(log_pred.dtype)
    log_target = torch.log((-q_target).clamp_min(1e-30))
    log_target = torch.where(mask, log_target, log_pred.detach())
    error = (log_pred - log_target) * weight
    count = weight.sum(-1, keepdim=True).clamp_min(1.0)
    mean = error.sum(-1, keepdim=True) / count
    deviation = (error - mean) * weight
    live = (weight.sum(-1) > 0).to(log_pred.dtype)
    if tabular:
        squared = count.squeeze(-1) * mean.squeeze(-1).pow(2) * live
        return 0.5 * (squared + advantage_weight * deviation.pow(2).sum(-1)).sum()
    loss = (mean.squeeze(-1).pow(2) * live).sum() + advantage_weight * (
        deviation.pow(2).sum(-1) / count.squeeze(-1)
    ).sum()
    return loss / live.sum().clamp_min(1.0)


def over_humans_and_goals(
    network: TensorDictModule,
    params: TensorDictParams,
    states: Int64[Tensor, " batch"],
    humans: Int64[Tensor, " human"],
    goals: Int64[Tensor, " goal"],
) -> Float[Tensor, "batch human goal ..."]:
    """Evaluate a goal-conditioned ``(state, human, goal)`` network with ``params`` for
    every human and goal of each state."""
    with params.to_module(network):
        return network.module(states[:, None, None], humans[None, :, None], goals[None])


class Phase1Loss(LossModule):
    """Expected-SARSA loss of phase 1 (eqs. 1–3) on the joint-action head.

    The target of ``z(s, g, j)`` is ``Σ_{s'} P(s'|s,j) goal_backup(s' ∈ g,
    V^m_h(s', g))`` with ``V^m_h`` from the target network through eq. (1) (explicit
    minimum over robot actions), eq. (2) (:func:`empo.theory.human_policy`, with
    ``ν_h``, the uniform ``π⁰_h`` and the rest-action convention) and eq. (3).

    Potential-based shaping: with a potential ``Φ(s, g)`` the network outputs
    ``z(s, g, ·) − Φ(s, g)``. Its regression target is then the original one minus
    ``Φ(s, g)``, which is the shaped target with reward
    ``γ_h 1[s'∉g] Φ(s', g) − Φ(s, g)``; adding ``Φ`` back gives the unshaped values, so
    the fixed point is unchanged (THEORY.md, phase 1).

    Parameters
    ----------
    network
        The joint-action head (:func:`empo.learning.modules.joint_backup_module`).
    model
        The batched world model.
    theory_params
        ``β_h``, ``γ_h``, ``ν_h``.
    sampled
        Sampled instead of expected targets.
    potential
        ``[state, human, goal]`` shaping potential, or ``None``.
    generator
        Random generator for sampled successors.
    tabular
        The network is a lookup table (``state_encoding = "table"``): targets
        bootstrap from the table itself (no target copy, as in tabular TD learning)
        and the loss is half the summed squared error (:func:`masked_mse`). A
        table's ``V^m_h`` changes only where its rows do, so it is kept for every
        state in the buffer ``v_m_table`` (:meth:`refresh` after each update) and
        targets read it at the successors instead of evaluating eqs. (1)–(3) there.
    """

    z_network: TensorDictModule
    z_network_params: TensorDictParams
    target_z_network_params: TensorDictParams

    def __init__(
        self,
        network: TensorDictModule,
        model: TransitionModel,
        theory_params: TheoryParameters,
        sampled: bool = False,
        potential: Float[Tensor, "state human goal"] | None = None,
        generator: torch.Generator | None = None,
        tabular: bool = False,
    ):
        super().__init__()
        self.tabular = tabular
        self.convert_to_functional(
            network, "z_network", create_target_params=not tabular
        )
        self.in_keys = ["state"]
        self.out_keys = ["loss_z"]
        self.model = model
        self.theory_params = theory_params
        self.sampled = sampled
        self.potential = potential
        self.generator = generator
        self.humans = torch.arange(model.num_humans, device=model.device)
        self.goals = torch.arange(model.num_goals, device=model.device)
        if tabular:
            shape = (model.num_states, model.num_humans, model.num_goals)
            self.register_buffer("v_m_table", torch.zeros(shape, device=model.device))
            ids = torch.arange(model.num_states, device=model.device)
            for chunk in torch.split(ids, 4096):
                self.refresh(chunk)

    @torch.no_grad()
    def refresh(self, states: Int64[Tensor, " batch"]) -> None:
        """Recompute ``v_m_table`` at ``states`` (tables only) after their rows
        changed."""
        values = self.phase1_values(self.z_network_params, states)["v_m"]
        self.v_m_table[states] = values.to(self.v_m_table.dtype)

    def joint_backups(
        self, params: TensorDictParams, states: Int64[Tensor, " batch"]
    ) -> Float[Tensor, "batch human goal joint"]:
        """``z(s, g, ·)`` for every human and goal, shaping potential added back."""
        z = over_humans_and_goals(
            self.z_network, params, states, self.humans, self.goals
        )
        if self.potential is not None:
            z = z + self.potential[states][..., None]
        return z

    def phase1_values(
        self, params: TensorDictParams, states: Int64[Tensor, " batch"]
    ) -> dict[str, Tensor]:
        """``q_m``, ``pi_h`` and ``v_m`` (eqs. 1–3) at ``states`` for all goals.

        Returns
        -------
        dict
            ``q_m`` and ``pi_h`` of shape ``[batch, human, goal, action]`` and
            ``v_m`` of shape ``[batch, human, goal]`` (0 at terminal states).
        """
        model = self.model
        z = self.joint_backups(params, states)
        q_m = torch.stack(
            [
                model.cautious_q(z[:, h], h, states[:, None])
                for h in range(len(model.humans))
            ],
            dim=1,
        )
        return human_policy_and_value(
            q_m,
            model.human_mask(states),
            model.in_goal(states),
            ~model.terminal[states],
            model.rest_action,
            self.theory_params,
        )

    def forward(self, tensordict: TensorDictBase) -> TensorDict:
        """Loss ``loss_z``: mean squared error of ``z`` over allowed joint actions."""
        model = self.model
        states = tensordict.get("state")
        succ, prob = model.successors_of(states, self.sampled, self.generator)
        with torch.no_grad():
            if self.tabular:
                v_next = self.v_m_table[succ]
            else:
                unique, inverse = torch.unique(succ, return_inverse=True)
                params = self.target_z_network_params
                v_next = self.phase1_values(params, unique)["v_m"][inverse]
            backup = theory.goal_backup(
                model.in_goal(succ), v_next, self.theory_params.gamma_h
            )
            target = (prob[..., None, None] * backup).sum(2).permute(0, 2, 3, 1)
            if self.potential is not None:
                target = target - self.potential[states][..., None]
        pred = over_humans_and_goals(
            self.z_network, self.z_network_params, states, self.humans, self.goals
        )
        weight = (
            model.joint_mask[states][:, None, None, :]
            & model.goal_mask[None, :, :, None]
            & ~model.terminal[states][:, None, None, None]
        )
        loss = masked_mse(pred, target, weight, self.tabular)
        return TensorDict({"loss_z": loss}, batch_size=[])


class Phase2Base(LossModule):
    """Parts shared by the phase-2 losses: the ``V^e_h`` network and its target (13).

    Parameters
    ----------
    ve_network
        The ``V^e`` network.
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
        The networks are lookup tables (as in :class:`Phase1Loss`).
    """

    ve_network: TensorDictModule
    ve_network_params: TensorDictParams
    target_ve_network_params: TensorDictParams

    def __init__(
        self,
        ve_network: TensorDictModule,
        model: TransitionModel,
        theory_params: TheoryParameters,
        pi_h: Float[Tensor, "state human goal action"],
        sampled: bool = False,
        generator: torch.Generator | None = None,
        tabular: bool = False,
    ):
        super().__init__()
        self.tabular = tabular
        self.convert_to_functional(
            ve_network, "ve_network", create_target_params=not tabular
        )
        self.in_keys = ["state"]
        self.model = model
        self.theory_params = theory_params
        self.pi_h = pi_h
        self.sampled = sampled
        self.generator = generator
        self.beta_r = float(theory_params.beta_r)
        self.humans = torch.arange(model.num_humans, device=model.device)
        self.goals = torch.arange(model.num_goals, device=model.device)

    def goal_values(
        self, params: TensorDictParams, states: Int64[Tensor, " batch"]
    ) -> Float[Tensor, "batch human goal"]:
        """``V^e_h(s, g)`` for all humans and goals, in ``[0, 1]``, 0 when terminal."""
        v_e = over_humans_and_goals(
            self.ve_network, params, states, self.humans, self.goals
        )
        alive = ~self.model.terminal[states]
        return v_e.clamp(0.0, 1.0) * alive[:, None, None]

    def goal_value_target(
        self,
        succ: Int64[Tensor, "batch joint k"],
        prob: Float[Tensor, "batch joint k"],
        v_e_next: Float[Tensor, "batch joint k human goal"],
        pi_h: Float[Tensor, "batch human goal action"],
        pi_bar: Float[Tensor, "batch human action"],
        pi_r: Float[Tensor, "batch a_r"],
    ) -> Float[Tensor, "batch human goal"]:
        """Target (13) of ``V^e_h(s, g)`` in expectation over joint actions (eq. 6).

        Human ``h`` follows ``π_h(s, g)``, the other humans their goal marginals
        ``π̄_h'(s)`` and the robot ``pi_r``.
        """
        model = self.model
        backup = theory.goal_backup(
            model.in_goal(succ), v_e_next, self.theory_params.gamma_h
        )
        expected = (prob[..., None, None] * backup).sum(2)
        ve_target = []
        for h, agent in enumerate(model.humans):
            factors = {
                other: pi_bar[:, k, None, :]
                for k, other in enumerate(model.humans)
                if other != agent
            }
            factors[agent] = pi_h[:, h]
            weights = model.joint_weights(factors, pi_r[:, None, :])
            ve_target.append((weights * expected[:, :, h].transpose(1, 2)).sum(-1))
        return torch.stack(ve_target, dim=1)

    def goal_value_loss(
        self,
        states: Int64[Tensor, " batch"],
        ve_target: Float[Tensor, "batch human goal"],
    ) -> Tensor:
        """Mean squared error of the online ``V^e_h`` against ``ve_target``."""
        model = self.model
        alive = ~model.terminal[states]
        ve_pred = over_humans_and_goals(
            self.ve_network, self.ve_network_params, states, self.humans, self.goals
        )
        return masked_mse(
            ve_pred,
            ve_target,
            model.goal_mask[None] & alive[:, None, None],
            self.tabular,
        )


class Phase2Loss(Phase2Base):
    """Loss of phase 2: ``V^e_h`` by target (13) and ``Q_r`` by target (12).

    With phase 1 frozen (the table ``pi_h`` of eq. (2)), the targets at a state ``s``
    are, with ``π_r(s)`` from the target ``Q_r`` through eq. (5) at the current
    (annealed) ``β'_r``:

    * ``V^e_h(s, g)``: ``Σ_a π_h(s,g)(a_h) Π_{h'≠h} π̄_h'(s)(a_h') π_r(s)(a_r)
      Σ_{s'} P(s'|s,a) goal_backup(s' ∈ g, V^e_h(s', g))`` (eqs. 6, 13);
    * ``Q_r(s, a_r)``: ``γ_r Σ_{a_H} Π_h π̄_h(s)(a_h) Σ_{s'} P(s'|s,a) V_r(s')``
      (eqs. 4, 12) with ``V_r(s') = U_r(s') + Σ π_r(s') Q_r(s')`` (eq. 9), ``U_r``
      from eq. (8) and ``X_h`` as the exact sum over goals of eq. (7) from the
      target ``V^e_h``; ``V_r = terminal_v_r`` at terminal states.

    ``Q_r`` is regressed in ``log(-Q_r)`` (see :mod:`empo.learning.modules`).

    Parameters
    ----------
    ve_network, qr_network
        The ``V^e`` and ``Q_r`` networks.
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
    advantage_weight
        Weight of the action-dependent part of the ``log(-Q_r)`` error. The squared
        error over a state's allowed actions splits into the squared mean error plus
        the squared deviations from it; only the deviations decide ``π_r`` (eq. 5),
        and they can be much smaller than the state's value, so weighting them more
        focuses the fit on what the policy reads. It changes the loss, not its
        minimiser (1: plain mean squared error).
    tabular
        The networks are lookup tables (as in :class:`Phase1Loss`).
    """

    qr_network: TensorDictModule
    qr_network_params: TensorDictParams
    target_qr_network_params: TensorDictParams

    def __init__(
        self,
        ve_network: TensorDictModule,
        qr_network: TensorDictModule,
        model: TransitionModel,
        theory_params: TheoryParameters,
        pi_h: Float[Tensor, "state human goal action"],
        sampled: bool = False,
        generator: torch.Generator | None = None,
        advantage_weight: float = 1.0,
        tabular: bool = False,
    ):
        super().__init__(
            ve_network, model, theory_params, pi_h, sampled, generator, tabular
        )
        self.convert_to_functional(
            qr_network, "qr_network", create_target_params=not tabular
        )
        self.out_keys = ["loss_v_e", "loss_q_r"]
        self.advantage_weight = advantage_weight

    def robot_q(
        self, params: TensorDictParams, states: Int64[Tensor, " batch"]
    ) -> Float[Tensor, "batch a_r"]:
        """``Q_r(s, ·) = -exp(log_neg_q_r)``."""
        with params.to_module(self.qr_network):
            return -torch.exp(self.qr_network.module(states))

    def robot_values(
        self,
        ve_params: TensorDictParams,
        qr_params: TensorDictParams,
        states: Int64[Tensor, " batch"],
        beta_r: float,
    ) -> dict[str, Tensor]:
        """``v_e, x_h, u_r, q_r, pi_r, v_r`` at ``states`` (eqs. 5, 7–9).

        ``q_r``, ``pi_r`` and ``u_r`` are 0 at terminal states, where
        ``v_r = terminal_v_r`` (the exact solver's layout).
        """
        model = self.model
        v_e = self.goal_values(ve_params, states)
        chain = theory.robot_chain(
            self.robot_q(qr_params, states),
            v_e,
            model.robot_mask(states),
            model.goal_weights,
            self.theory_params,
            beta_r=beta_r,
            terminal=model.terminal[states],
            x_floor=X_FLOOR,
        )
        return {"v_e": v_e, **vars(chain)}

    def _targets(
        self, states: Int64[Tensor, " batch"]
    ) -> tuple[Float[Tensor, "batch human goal"], Float[Tensor, "batch a_r"]]:
        model = self.model
        tp = self.theory_params
        succ, prob = model.successors_of(states, self.sampled, self.generator)
        unique, inverse = torch.unique(succ, return_inverse=True)
        nxt = self.robot_values(
            self.target_ve_network_params,
            self.target_qr_network_params,
            unique,
            self.beta_r,
        )
        mask_r = model.robot_mask(states)
        q_here = self.robot_q(self.target_qr_network_params, states) * mask_r
        pi_r = theory.robot_policy_of(q_here, mask_r, tp, self.beta_r)
        pi_h = self.pi_h[states]
        pi_bar = theory.goal_marginal_policy(pi_h, model.goal_weights)
        v_r_next = (prob * nxt["v_r"][inverse]).sum(-1)
        marginals = {agent: pi_bar[:, h] for h, agent in enumerate(model.humans)}
        q_target = tp.gamma_r * model.robot_marginal(v_r_next, marginals)
        ve_target = self.goal_value_target(
            succ, prob, nxt["v_e"][inverse], pi_h, pi_bar, pi_r
        )
        return ve_target, q_target

    @torch.no_grad()
    def online_values(
        self, states: Int64[Tensor, " batch"], beta_r: float
    ) -> dict[str, Tensor]:
        """:meth:`robot_values` of the online networks."""
        return self.robot_values(
            self.ve_network_params, self.qr_network_params, states, beta_r
        )

    @torch.no_grad()
    def acting_policy(
        self, states: Int64[Tensor, " batch"], beta_r: float
    ) -> Float[Tensor, "batch a_r"]:
        """Robot policy of the rollouts: eq. (5) at ``beta_r``, online ``Q_r``."""
        mask_r = self.model.robot_mask(states)
        q_r = self.robot_q(self.qr_network_params, states)
        return theory.robot_policy_of(q_r, mask_r, self.theory_params, beta_r)

    def forward(self, tensordict: TensorDictBase) -> TensorDict:
        """Losses ``loss_v_e`` (squared error) and ``loss_q_r`` (in ``log(-Q_r)``).

        ``loss_q_r`` per state: squared mean error over the allowed robot actions
        plus ``advantage_weight`` times the mean squared deviation from it.
        """
        model = self.model
        states = tensordict.get("state")
        with torch.no_grad():
            ve_target, q_target = self._targets(states)
        loss_ve = self.goal_value_loss(states, ve_target)
        with self.qr_network_params.to_module(self.qr_network):
            log_pred = self.qr_network.module(states)
        loss_q = log_q_loss(
            log_pred,
            q_target,
            model.robot_mask(states),
            self.advantage_weight,
            self.tabular,
        )
        return TensorDict({"loss_v_e": loss_ve, "loss_q_r": loss_q}, batch_size=[])
