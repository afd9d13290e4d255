"""The vectorised exact solver agrees with the per-state reference implementation."""

import math

import pytest
import torch

from empo.exact import HumanModel, solve
from empo.parameters.theory import TheoryParameters
from empo.worlds.random_world import random_layered_world

from .reference import Beliefs, reference_solve

TOL = 1e-6


def compare(solution, ref) -> None:
    world = solution.world
    S = world.num_states
    counts = world.action_counts
    for s in range(S):
        if bool(world.terminal[s]):
            assert solution["v_r"][s].item() == pytest.approx(ref["v_r"][s])
            continue
        for i in range(world.num_humans):
            for g, _ in enumerate(world.goal_names[i]):
                for key in ("q_m", "pi_h"):
                    for a, value in ref[key][s][i][g].items():
                        got = solution[key][s, i, g, a].item()
                        assert got == pytest.approx(value, abs=TOL), (key, s, i, g, a)
                for key in ("v_m", "v_e"):
                    got = solution[key][s, i, g].item()
                    assert got == pytest.approx(ref[key][s][i][g], abs=TOL), (key, s)
            got = solution["x_h"][s, i].item()
            assert got == pytest.approx(ref["x_h"][s][i], abs=TOL, rel=TOL)
        for key in ("q_r", "pi_r"):
            for a, value in ref[key][s].items():
                got = solution[key][s, a].item()
                assert got == pytest.approx(value, abs=TOL, rel=TOL), (key, s, a)
        for key in ("u_r", "v_r"):
            got = solution[key][s].item()
            assert got == pytest.approx(ref[key][s], abs=TOL, rel=TOL), (key, s)
    assert counts  # the world has agents


CASES = [
    dict(roles="hr", num_actions=[3, 2], num_goals=[3]),
    dict(roles="hhr", num_actions=[2, 3, 2], num_goals=[2, 3], random_weights=True),
    dict(roles="rhh", num_actions=[2, 2, 3], num_goals=[3, 2], rest_action=True),
    dict(roles="hrr", num_actions=[3, 2, 2], num_goals=[2], max_outcomes=3),
    dict(roles="hrh", num_actions=[2, 2, 2], num_goals=[2, 2], mask_fraction=0.4),
    dict(roles="h", num_actions=[3], num_goals=[4]),
]

THEORIES = [
    TheoryParameters(beta_h=3.0, gamma_h=0.9, gamma_r=0.95, beta_r=2.0),
    TheoryParameters(beta_h=math.inf, gamma_h=1.0, gamma_r=1.0, beta_r=math.inf),
    TheoryParameters(
        beta_h=0.0,
        nu_h=0.3,
        others="habitual",
        zeta=1.5,
        xi=0.7,
        eta=1.3,
        eps_q=0.05,
        eps_x=0.01,
        robot_policy="normalized_boltzmann",
        beta_r=4.0,
    ),
    TheoryParameters(beta_h=20.0, gamma_r=0.0, beta_r=50.0, terminal_v_r=-0.5),
]


@pytest.mark.parametrize("case", range(len(CASES)))
@pytest.mark.parametrize("theory", range(len(THEORIES)))
def test_solver_matches_reference(case: int, theory: int) -> None:
    world = random_layered_world(
        24, num_layers=5, seed=10 * case + theory, **CASES[case]
    )
    params = THEORIES[theory]
    solution = solve(world, params)
    compare(solution, reference_solve(world, params))


@pytest.mark.parametrize("others", ["uniform", "habitual"])
def test_solver_matches_reference_with_human_model(others: str) -> None:
    world = random_layered_world(
        24,
        roles="hhr",
        num_actions=[2, 3, 2],
        num_goals=[2, 3],
        num_layers=5,
        random_weights=True,
        rest_action=True,
        seed=7,
    )
    gen = torch.Generator().manual_seed(3)
    S, H, G, A = world.num_states, 2, 3, 3
    beta = torch.rand(S, H, G, generator=gen, dtype=torch.float64) * 5
    beta[::3, 0] = math.inf
    nu = torch.rand(S, H, G, generator=gen, dtype=torch.float64) * 0.5
    pi0 = torch.rand(S, H, G, A, generator=gen, dtype=torch.float64) + 0.1
    mask1 = world.action_mask[:, 1, :3].to(torch.float64)
    mu0 = torch.rand(S, G, 3, generator=gen, dtype=torch.float64) * mask1[:, None, :]
    mu0 = (mu0 / mu0.sum(-1, keepdim=True)).nan_to_num(0.0)
    model = HumanModel(beta_h=beta, nu_h=nu, pi0_h=pi0, mu_others=(mu0, None))
    params = TheoryParameters(beta_r=3.0, others=others, gamma_h=0.95)
    solution = solve(world, params, human_model=model)
    beliefs = Beliefs(
        beta=beta.tolist(),
        nu=nu.tolist(),
        pi0=pi0.tolist(),
        mu=[mu0.tolist(), None],
    )
    compare(solution, reference_solve(world, params, beliefs))


def test_chunking_and_float32_agree() -> None:
    world = random_layered_world(
        200, roles="hhr", num_actions=[3, 2, 4], num_goals=[5, 3], num_layers=6
    )
    params = TheoryParameters(beta_h=4.0, beta_r=3.0)
    whole = solve(world, params)
    small = solve(world, params, chunk_size=7)
    single = solve(world, params, dtype=torch.float32)
    for key in ("q_m", "pi_h", "v_m", "q_r", "pi_r", "v_e", "x_h", "u_r", "v_r"):
        assert torch.allclose(whole[key], small[key], atol=1e-12), key
        assert torch.allclose(
            whole[key], single[key].double(), atol=1e-4, rtol=1e-4
        ), key
