"""Potential for potential-based reward shaping of phase 1 (THEORY.md, phase 1)."""

from __future__ import annotations

import torch
from jaxtyping import Float
from torch import Tensor

from empo.learning.data import CompiledData

__all__ = ["goal_distance_potential"]


@torch.no_grad()
def goal_distance_potential(
    data: CompiledData, gamma_h: float
) -> Float[Tensor, "state human goal"]:
    """``Φ(s, g) = γ_h^(d(s, g) − 1)``, with ``d`` the fewest steps to enter ``g``.

    ``d`` counts steps along transitions of positive probability under any joint
    action, so ``Φ`` is the value of a human who controls everything; it is 0 where
    ``g`` cannot be entered. Any potential leaves the fixed point unchanged
    (:class:`empo.learning.phase1.Phase1Loss`); this one is a good first guess of
    ``V^m_h``.

    Parameters
    ----------
    data
        The enumerated world.
    gamma_h
        Human discount.
    """
    succ = data.successor_ids
    possible = data.probabilities > 0
    entered = data.membership[succ] & possible[..., None, None]
    inf = torch.tensor(float("inf"), device=data.device)
    dist = torch.full(
        (data.num_states, data.num_humans, data.num_goals),
        float("inf"),
        device=data.device,
    )
    for _ in range(data.num_states):
        via = torch.where(entered, torch.ones_like(dist[succ]), 1.0 + dist[succ])
        via = torch.where(possible[..., None, None], via, inf)
        new = via.flatten(1, 2).amin(1)
        if torch.equal(new, dist):
            break
        dist = new
    potential = torch.pow(torch.as_tensor(gamma_h, device=data.device), dist - 1.0)
    return torch.where(torch.isinf(dist), torch.zeros_like(dist), potential)
