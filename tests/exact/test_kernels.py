"""The fused gathers of :mod:`empo.exact.layout` equal their dense definitions."""

import math

import pytest
import torch

from empo.exact import solve
from empo.exact.layout import Layout
from empo.parameters.theory import TheoryParameters
from empo.worlds.compiled import CompiledWorld
from empo.worlds.random_world import random_layered_world


def _world(roles: str = "hrr") -> CompiledWorld:
    return random_layered_world(
        120,
        roles=roles,
        num_actions=[3, 2, 3],
        num_goals=[4],
        num_layers=5,
        max_outcomes=3,
        stochastic_fraction=0.5,
        mask_fraction=0.3,
    )


@pytest.mark.parametrize("roles", ["hrr", "rhr"])
def test_transitions_redirect_impossible_successors_to_state_zero(roles: str) -> None:
    world = _world(roles)
    layout = Layout(world)
    assert (layout.perm is None) == (roles == "hrr")
    order = torch.arange(world.num_joint_actions)
    order = order if layout.perm is None else layout.perm
    ids = torch.arange(world.num_states)
    succ, prob = layout.transitions(ids)
    assert bool((succ[prob == 0] == 0).all())
    live = prob > 0
    assert bool(live.any())
    assert torch.equal(prob, world.probabilities[:, order])
    assert torch.equal(succ[live], world.successors[:, order][live])


@pytest.mark.parametrize("roles", ["hrr", "rhr"])
def test_expected_after_robot_equals_dense_contraction(roles: str) -> None:
    world = _world(roles)
    layout = Layout(world)
    ids = torch.nonzero(~world.terminal).flatten()
    generator = torch.Generator().manual_seed(1)
    table = torch.rand(world.num_states, 7, generator=generator, dtype=torch.float64)
    pi_r = torch.rand(len(ids), layout.num_robot_actions, generator=generator)
    pi_r = (pi_r / pi_r.sum(-1, keepdim=True)).double()
    succ, prob = layout.transitions(ids)
    dense = layout.expected(table, succ, prob).view(
        len(ids), layout.num_human_joint, layout.num_robot_actions, 7
    )
    # The definition: sum over robot actions and outcomes, computed state by state.
    manual = torch.einsum("ljrc,lr->ljc", dense, pi_r)
    by_hand = sum(
        prob[:, :, k, None] * table[succ[:, :, k]] for k in range(succ.shape[2])
    ).view_as(dense)
    assert torch.allclose(dense, by_hand, atol=1e-14)
    fused = layout.expected_after_robot(table, succ, prob, pi_r)
    assert torch.allclose(fused, manual, atol=1e-13)


def test_disallowed_robot_actions_never_attain_the_minimum() -> None:
    world = _world()
    theory = TheoryParameters(beta_h=math.inf, beta_r=2.0)
    solution = solve(world, theory)
    layout = Layout(world)
    ids = torch.nonzero(~world.terminal).flatten()
    table = torch.cat(
        [
            (
                layout.member_float
                + theory.gamma_h * (1 - layout.member_float) * solution["v_m"]
            ).flatten(1),
            torch.full((1, layout.num_humans * layout.num_goals), math.inf),
        ]
    )
    succ, prob = layout.transitions(ids)
    dense = layout.expected(table, succ, prob).view(
        len(ids), layout.num_human_joint, layout.num_robot_actions, -1
    )
    mask = layout.robot_mask(ids)
    worst = dense.masked_fill(~mask[:, None, :, None], math.inf).amin(2)
    q_m = solution["q_m"][ids][:, 0].transpose(1, 2)
    allowed = layout.human_mask(ids)[:, 0, :, None].expand_as(worst)
    assert torch.allclose(q_m[allowed], worst[allowed], atol=1e-12)
    assert bool(torch.isfinite(solution["q_m"]).all())
