"""Learned-versus-exact comparison (THEORY.md: "trusted only where it matches").

:func:`compare` reports, per quantity, the error of a learned solution against the
exact one, weighted by how often the *exact* joint policy visits each state from the
initial state: mean absolute error for values (``v_m``, ``v_e``, ``x_h``, ``v_r``)
and total variation distance for policies (``pi_h``, ``pi_r``).
"""

from __future__ import annotations

from typing import Any

import torch
from jaxtyping import Float
from torch import Tensor

from empo.solution import SolutionTables
from empo.worlds.compiled import CompiledWorld

__all__ = ["compare", "visitation"]


def visitation(
    world: CompiledWorld,
    joint_policy: Float[Tensor, "state joint"],
    discount: float = 1.0,
    horizon: int = 1000,
    tol: float = 1e-12,
) -> Float[Tensor, " state"]:
    """Normalised expected (discounted) visit counts of each state from the start.

    Parameters
    ----------
    world
        The compiled world.
    joint_policy
        ``[state, joint]`` joint action distribution.
    discount
        Weight ``discount^t`` of a visit at step ``t`` (1: plain counts).
    horizon
        Longest rollout counted (bounds cyclic worlds).
    tol
        Stop once the mass still moving falls below this.

    Returns
    -------
    Tensor
        ``[state]`` weights summing to 1.
    """
    probs = world.probabilities.to(torch.float64)
    flow = joint_policy.to(torch.float64)[..., None] * probs
    succ = world.successors.flatten(1)
    flow = flow.flatten(1)
    mass = torch.zeros(world.num_states, dtype=torch.float64, device=probs.device)
    mass[world.initial_state] = 1.0
    total = torch.zeros_like(mass)
    weight = 1.0
    for _ in range(horizon):
        total += weight * mass
        moved = torch.zeros_like(mass)
        moved.index_add_(0, succ.flatten(), (mass[:, None] * flow).flatten())
        mass = moved
        weight *= discount
        if float(mass.sum()) * weight < tol:
            break
    return total / total.sum()


def _per_state(diff: Tensor, valid: Tensor | None) -> Tensor:
    """Mean of ``diff`` over its trailing axes per state (over ``valid`` entries)."""
    diff = diff.reshape(diff.shape[0], -1)
    if valid is None:
        return diff.mean(-1)
    mask = valid.reshape(1, -1).to(diff.dtype)
    return (diff * mask).sum(-1) / mask.sum().clamp_min(1.0)


def _mae(
    learned: Tensor, exact: Tensor, weight: Tensor, valid: Tensor | None = None
) -> float:
    """State-weighted mean over the trailing axes of ``|learned - exact|``."""
    diff = (learned.to(torch.float64) - exact.to(torch.float64)).abs()
    return float((weight * _per_state(diff, valid)).sum())


def _tv(
    learned: Tensor,
    exact: Tensor,
    weight: Tensor,
    alive: Tensor,
    valid: Tensor | None = None,
) -> float:
    """State-weighted mean total variation over the trailing axes but the last."""
    diff = 0.5 * (learned.to(torch.float64) - exact.to(torch.float64)).abs().sum(-1)
    w = weight * alive.to(weight.dtype)
    return float((w * _per_state(diff, valid)).sum() / w.sum().clamp_min(1e-300))


def compare(
    learned: SolutionTables, exact: SolutionTables, discount: float = 1.0
) -> dict[str, float]:
    """Errors of a learned solution against the exact one on the exact visitation.

    Parameters
    ----------
    learned
        A solution laid out on the same compiled world (``learned.tabulate(world)``
        of any :class:`~empo.solution.Solution`).
    exact
        The exact :class:`~empo.exact.ExactSolution`.
    discount
        Discount of the visit counts (see :func:`visitation`).

    Returns
    -------
    dict
        ``v_m, v_e, x_h, v_r`` (weighted mean absolute error), ``pi_h, pi_r``
        (weighted mean total variation, over non-terminal states) and ``v_r_rel``
        (weighted mean relative error of ``V_r``).

    Raises
    ------
    ValueError
        If the two solutions live on worlds of different sizes.
    """
    world: CompiledWorld = exact.world
    num_states = world.num_states
    for name, sol in (("learned", learned), ("exact", exact)):
        got = sol.phase2["v_r"].shape[0]
        if got != num_states:
            raise ValueError(
                f"{name} solution has {got} states, the exact world has {num_states}"
            )
    weight = visitation(world, exact.joint_policy(), discount)
    alive = ~world.terminal
    goals = (world.goal_weights > 0).cpu()
    p1l, p1e = learned.phase1, exact.phase1
    p2l, p2e = learned.phase2, exact.phase2
    weight = weight.cpu()
    alive = alive.cpu()

    def cpu(td: Any, key: str) -> Tensor:
        return td[key].detach().cpu()

    v_r_l, v_r_e = cpu(p2l, "v_r").double(), cpu(p2e, "v_r").double()
    rel = (v_r_l - v_r_e).abs() / v_r_e.abs().clamp_min(1e-300)
    return {
        "v_m": _mae(cpu(p1l, "v_m"), cpu(p1e, "v_m"), weight, goals),
        "pi_h": _tv(cpu(p1l, "pi_h"), cpu(p1e, "pi_h"), weight, alive, goals),
        "v_e": _mae(cpu(p2l, "v_e"), cpu(p2e, "v_e"), weight, goals),
        "x_h": _mae(cpu(p2l, "x_h"), cpu(p2e, "x_h"), weight),
        "v_r": _mae(v_r_l, v_r_e, weight),
        "v_r_rel": float((weight * rel).sum()),
        "pi_r": _tv(cpu(p2l, "pi_r"), cpu(p2e, "pi_r"), weight, alive),
    }
