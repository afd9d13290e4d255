"""Potential for potential-based reward shaping of phase 1 (THEORY.md, phase 1)."""

from __future__ import annotations

import torch
from jaxtyping import Float
from torch import Tensor

from empo.learning.model import TransitionModel

__all__ = ["goal_distance_potential"]


@torch.no_grad()
def goal_distance_potential(
    model: TransitionModel, gamma_h: float
) -> Float[Tensor, "state human goal"]:
    """``Φ(s, g) = γ_h^(d(s, g) − 1)``, with ``d`` the fewest steps to enter ``g``.

    ``d`` counts steps along transitions of positive probability under any joint
    action, so ``Φ`` is the value of a human who controls everything; it is 0 where
    ``g`` cannot be entered. Any potential leaves the fixed point unchanged
    (:class:`empo.learning.losses.Phase1Loss`); this one is a good first guess of
    ``V^m_h``.

    Parameters
    ----------
    model
        The batched world model.
    gamma_h
        Human discount.
    """
    succ = model.successors
    possible = model.probabilities > 0
    entered = model.in_goal(succ) & possible[..., None, None]
    inf = torch.tensor(float("inf"), device=model.device)
    dist = torch.full(
        (model.num_states, model.num_humans, model.num_goals),
        float("inf"),
        device=model.device,
    )
    for _ in range(model.num_states):
        via = torch.where(entered, torch.ones_like(dist[succ]), 1.0 + dist[succ])
        via = torch.where(possible[..., None, None], via, inf)
        new = via.flatten(1, 2).amin(1)
        if torch.equal(new, dist):
            break
        dist = new
    potential = torch.pow(torch.as_tensor(gamma_h, device=model.device), dist - 1.0)
    return torch.where(torch.isinf(dist), torch.zeros_like(dist), potential)
