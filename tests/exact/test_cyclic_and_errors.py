"""Cyclic worlds (fixed point vs unrolling) and the solver's error reporting."""

import dataclasses
import math

import pytest
import torch

from empo.exact import HumanModel, NotConvergedError, solve
from empo.parameters.theory import TheoryParameters
from empo.worlds.random_world import random_layered_world, unroll_world
from empo.worlds.tabular import TabularWorld

KEYS = ("q_m", "pi_h", "v_m", "q_r", "pi_r", "v_e", "x_h", "u_r", "v_r")


@pytest.mark.parametrize("roles", ["hr", "hhr"])
def test_cyclic_fixed_point_equals_long_unrolling(roles: str) -> None:
    world = random_layered_world(
        12, roles=roles, num_actions=2, num_goals=2, num_layers=3, cyclic=True, seed=5
    )
    assert world.height is None
    theory = TheoryParameters(gamma_h=0.5, gamma_r=0.5, beta_h=2.0, beta_r=2.0)
    cyclic = solve(world, theory)
    assert cyclic.converged == {"phase1": True, "phase2": True}
    assert cyclic.iterations["phase1"] > 1
    unrolled = solve(unroll_world(world, 70), theory)
    first = slice(0, world.num_states)
    for key in KEYS:
        assert torch.allclose(cyclic[key], unrolled[key][first], atol=1e-8), key


def test_unconverged_iteration_raises_or_is_marked() -> None:
    world = random_layered_world(12, num_layers=3, cyclic=True, seed=1)
    theory = TheoryParameters(gamma_h=0.9, gamma_r=0.9)
    with pytest.raises(NotConvergedError, match="phase 1"):
        solve(world, theory, max_iterations=2)
    with pytest.warns(UserWarning, match="unconverged"):
        solution = solve(world, theory, max_iterations=2, allow_unconverged=True)
    assert solution.converged["phase1"] is False
    assert solution.iterations["phase1"] == 2


@pytest.mark.parametrize("name", ["gamma_h", "gamma_r"])
def test_discount_one_is_rejected_for_cyclic_worlds(name: str) -> None:
    world = random_layered_world(10, num_layers=3, cyclic=True)
    theory = TheoryParameters(**{name: 1.0})
    with pytest.raises(ValueError, match=f"theory.{name} = 1.0 is not allowed"):
        solve(world, theory)


def test_invalid_human_model_tensors() -> None:
    world = random_layered_world(10, roles="hhr", num_actions=2, num_layers=3)
    S = world.num_states
    theory = TheoryParameters()
    with pytest.raises(ValueError, match="human_model.beta_h has shape"):
        solve(world, theory, human_model=HumanModel(beta_h=torch.ones(S + 1, 2, 3)))
    with pytest.raises(ValueError, match="beta_h must be >= 0"):
        solve(world, theory, human_model=HumanModel(beta_h=-torch.ones(S, 1, 1)))
    with pytest.raises(ValueError, match="nu_h must lie in"):
        solve(world, theory, human_model=HumanModel(nu_h=torch.full((S, 1, 1), 1.5)))
    with pytest.raises(ValueError, match="pi0_h must be finite"):
        pi0 = torch.full((S, 2, 3, 2), -1.0)
        solve(world, theory, human_model=HumanModel(pi0_h=pi0))
    with pytest.raises(ValueError, match=r"mu_others\[0\] has shape"):
        solve(world, theory, human_model=HumanModel(mu_others=(torch.ones(S, 5), None)))
    with pytest.raises(ValueError, match="one entry per human"):
        solve(world, theory, human_model=HumanModel(mu_others=(None,)))
    bad = world.action_mask[:, 1, :2].double() * 0.7
    with pytest.raises(ValueError, match="does not sum to 1"):
        solve(world, theory, human_model=HumanModel(mu_others=(bad, None)))


def test_invalid_solver_arguments_and_worlds() -> None:
    world = random_layered_world(10, num_layers=3)
    with pytest.raises(ValueError, match="tolerance"):
        solve(world, tolerance=0.0)
    with pytest.raises(ValueError, match="chunk_size"):
        solve(world, chunk_size=0)
    with pytest.raises(ValueError, match="max_iterations"):
        solve(world, max_iterations=0)
    bare = dataclasses.replace(world, robots=())
    with pytest.raises(ValueError, match="neither humans nor robots"):
        solve(bare)
    timed = dataclasses.replace(world, durations=torch.ones_like(world.probabilities))
    with pytest.raises(ValueError, match="durations"):
        solve(timed)


def test_unreachable_goals_warn_with_the_state() -> None:
    world = TabularWorld(
        transitions={"s": {("a", "w"): [(1.0, "t")]}},
        initial_state="s",
        agents=("human", "robot"),
        humans=("human",),
        robots=("robot",),
        goals={"human": {"elsewhere": ["s"]}},
    )
    with pytest.warns(UserWarning, match=r"U_r = -inf at 1 non-terminal.*'s'"):
        solution = solve(world)
    assert solution.u_r("s") == -math.inf
    quiet = solve(world, TheoryParameters(eps_x=0.5, xi=1.0, eta=1.0))
    assert quiet.u_r("s") == pytest.approx(-2.0)
