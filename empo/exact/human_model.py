"""Per-state and per-goal beliefs about the humans (THEORY.md, phase 1).

``beta_h``, ``nu_h``, ``pi0_h`` and ``mu_-h`` are the robot's beliefs about the humans.
Scalar defaults live in :class:`~empo.parameters.theory.TheoryParameters`; a
:class:`HumanModel` overrides them with tensors that may depend on state and goal.
:meth:`HumanModel.resolve` checks the shapes and values against a compiled world and
returns broadcast views (no copies of size ``S``).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from jaxtyping import Bool, Float
from torch import Tensor

from empo.parameters.theory import OthersModel, TheoryParameters
from empo.theory import (
    goal_marginal_policy,
    joint_action_distribution,
    uniform_policy,
)
from empo.worlds.compiled import CompiledWorld

_SUM_TOL = 1e-6


@dataclass
class HumanModel:
    """Optional tensors that refine the scalar human parameters of eqs. (1)-(2).

    Parameters
    ----------
    beta_h
        Rationality, broadcastable to ``[state, human, goal]``; ``inf`` allowed.
    nu_h
        Habitual weight in ``[0, 1]``, broadcastable to ``[state, human, goal]``.
    pi0_h
        Habitual policy, broadcastable to ``[state, human, goal, A_h]`` (``A_h`` the
        largest human action count); renormalised over the allowed actions.
    mu_others
        One entry per human (``None`` for the default): the belief ``mu_-h`` of that
        human about the other humans' joint action, ``[state, J_-h]`` or
        ``[state, goal, J_-h]``, where ``J_-h`` is the mixed-radix joint action of
        the other humans in ``world.humans`` order. Rows of non-terminal states sum
        to 1 and put no mass on disallowed actions.
    """

    beta_h: Tensor | None = None
    nu_h: Tensor | None = None
    pi0_h: Tensor | None = None
    mu_others: tuple[Tensor | None, ...] | None = None

    def resolve(
        self, world: CompiledWorld, theory: TheoryParameters
    ) -> ResolvedHumanModel:
        """Check the tensors against ``world`` and broadcast them.

        Raises
        ------
        ValueError
            Naming the field whose shape or values are invalid.
        """
        device = world.probabilities.device
        dtype = world.probabilities.dtype
        S, H, G = world.num_states, world.num_humans, world.max_goals
        counts = [world.action_counts[h] for h in world.humans]
        A_h = max(counts)
        human_mask = world.action_mask[:, list(world.humans), :A_h]

        def field(
            name: str, value: Tensor | None, default: float, shape: tuple
        ) -> Tensor:
            if value is None:
                return torch.full((), default, dtype=dtype, device=device).expand(shape)
            value = torch.as_tensor(value).to(device=device, dtype=dtype)
            try:
                return value.expand(shape)
            except RuntimeError:
                raise ValueError(
                    f"human_model.{name} has shape {tuple(value.shape)}, which does "
                    f"not broadcast to {shape}"
                ) from None

        beta = field("beta_h", self.beta_h, theory.beta_h, (S, H, G))
        if self.beta_h is not None and bool((torch.isnan(beta) | (beta < 0)).any()):
            raise ValueError("human_model.beta_h must be >= 0 (inf allowed), no NaN")
        nu = field("nu_h", self.nu_h, theory.nu_h, (S, H, G))
        if self.nu_h is not None and bool((~((nu >= 0) & (nu <= 1))).any()):
            raise ValueError("human_model.nu_h must lie in [0, 1]")
        if self.pi0_h is None:
            pi0 = uniform_policy(human_mask, dtype)[:, :, None, :].expand(S, H, G, A_h)
        else:
            pi0 = field("pi0_h", self.pi0_h, 0.0, (S, H, G, A_h))
            if bool((~torch.isfinite(pi0) | (pi0 < 0)).any()):
                raise ValueError("human_model.pi0_h must be finite and >= 0")
            pi0 = pi0 * human_mask[:, :, None, :]
            total = pi0.sum(-1, keepdim=True)
            live = ~world.terminal[:, None, None]
            if bool((live & (total[..., 0] <= 0)).any()):
                raise ValueError(
                    "human_model.pi0_h puts no mass on any allowed action of some "
                    "non-terminal state"
                )
            pi0 = pi0 / total.clamp_min(torch.finfo(dtype).tiny)
        mu = self._resolve_mu(world, theory, pi0, counts)
        habitual = self.nu_h is not None or theory.nu_h > 0
        return ResolvedHumanModel(
            beta_h=beta,
            nu_h=nu,
            pi0_h=pi0,
            mu_others=mu,
            habitual=habitual,
            beta_scalar=theory.beta_h if self.beta_h is None else None,
        )

    def _resolve_mu(
        self,
        world: CompiledWorld,
        theory: TheoryParameters,
        pi0: Float[Tensor, "state human goal action"],
        counts: list[int],
    ) -> tuple[Tensor, ...]:
        S, H, G = world.num_states, world.num_humans, world.max_goals
        given = self.mu_others if self.mu_others is not None else (None,) * H
        if len(given) != H:
            raise ValueError(
                f"human_model.mu_others needs one entry per human ({H}), got "
                f"{len(given)}"
            )
        dtype, device = world.goal_weights.dtype, world.goal_weights.device
        masks = [world.action_mask[:, h, :n] for h, n in zip(world.humans, counts)]
        if OthersModel(theory.others) is OthersModel.HABITUAL:
            pi0_bar = goal_marginal_policy(pi0, world.goal_weights)
            marginals = [pi0_bar[:, i, :n] for i, n in enumerate(counts)]
        else:
            marginals = [uniform_policy(m, dtype) for m in masks]
        result = []
        for i in range(H):
            others = [j for j in range(H) if j != i]
            if not others:
                result.append(torch.ones(S, 1, dtype=dtype, device=device))
                continue
            if given[i] is None:
                result.append(joint_action_distribution([marginals[j] for j in others]))
                continue
            result.append(self._check_mu(world, i, given[i], others, masks, G))
        return tuple(result)

    @staticmethod
    def _check_mu(
        world: CompiledWorld,
        human: int,
        mu: Tensor,
        others: list[int],
        masks: list[Bool[Tensor, "state _"]],
        num_goals: int,
    ) -> Float[Tensor, "state *goal joint"]:
        dtype = world.probabilities.dtype
        mu = torch.as_tensor(mu).to(device=world.probabilities.device, dtype=dtype)
        allowed = joint_action_distribution([masks[j].to(dtype) for j in others]) > 0
        S, width = allowed.shape
        name = f"human_model.mu_others[{human}]"
        if mu.shape not in ((S, width), (S, num_goals, width)):
            raise ValueError(
                f"{name} has shape {tuple(mu.shape)}; expected {(S, width)} or "
                f"{(S, num_goals, width)}"
            )
        if bool((~torch.isfinite(mu) | (mu < 0)).any()):
            raise ValueError(f"{name} must be finite and >= 0")
        view = allowed if mu.ndim == 2 else allowed[:, None, :]
        if bool(((mu > 0) & ~view).any()):
            raise ValueError(f"{name} puts mass on disallowed actions of the others")
        live = ~world.terminal if mu.ndim == 2 else ~world.terminal[:, None]
        if bool((live & ((mu.sum(-1) - 1).abs() > _SUM_TOL)).any()):
            raise ValueError(f"{name} does not sum to 1 at some non-terminal state")
        return mu


@dataclass
class ResolvedHumanModel:
    """Broadcast human beliefs for one compiled world (see :class:`HumanModel`).

    Parameters
    ----------
    beta_h, nu_h
        ``[state, human, goal]`` (possibly expanded views).
    pi0_h
        ``[state, human, goal, A_h]`` normalised over the allowed actions.
    mu_others
        Per human, ``[state, J_-h]`` or ``[state, goal, J_-h]``.
    habitual
        Whether ``nu_h`` may be positive somewhere (else the mixture is skipped).
    beta_scalar
        The single ``beta_h`` of all states and goals, if there is one.
    """

    beta_h: Float[Tensor, "state human goal"]
    nu_h: Float[Tensor, "state human goal"]
    pi0_h: Float[Tensor, "state human goal action"]
    mu_others: tuple[Tensor, ...]
    habitual: bool
    beta_scalar: float | None = None
