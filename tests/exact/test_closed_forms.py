"""Closed-form checks of the exact solver on tiny hand-written worlds."""

import math

import pytest
import torch

from empo.exact import HumanModel, solve
from empo.parameters.theory import TheoryParameters
from empo.worlds.random_world import random_layered_world
from empo.worlds.tabular import TabularWorld


def one_step(robot_decides: bool = False) -> TabularWorld:
    """Human picks left/right; the outcome follows the human (or the robot)."""
    table = {}
    for h, r in [("l", "a"), ("l", "b"), ("r", "a"), ("r", "b")]:
        choice = (r == "a") if robot_decides else (h == "l")
        table[(h, r)] = [(1.0, "L" if choice else "R")]
    return TabularWorld(
        transitions={"s": table},
        initial_state="s",
        agents=("human", "robot"),
        humans=("human",),
        robots=("robot",),
        goals={"human": {"L": ["L"], "R": ["R"]}},
    )


def test_single_step_world_closed_form() -> None:
    beta, zeta, xi, eta, g_r, v_t = 2.0, 2.0, 1.0, 1.1, 0.9, -0.25
    theory = TheoryParameters(
        beta_h=beta, zeta=zeta, xi=xi, eta=eta, gamma_r=g_r, terminal_v_r=v_t
    )
    solution = solve(one_step(), theory)
    p = math.exp(beta) / (math.exp(beta) + 1)
    assert solution.q_m("s", "human", "L") == pytest.approx({"l": 1.0, "r": 0.0})
    assert solution.human_policy("s", "human", "L") == pytest.approx(
        {"l": p, "r": 1 - p}
    )
    assert solution.v_m("s", "human", "R") == pytest.approx(p)
    assert solution.q_r("s") == pytest.approx({"a": g_r * v_t, "b": g_r * v_t})
    assert solution.robot_policy("s") == pytest.approx({"a": 0.5, "b": 0.5})
    assert solution.v_e("s", "human", "L") == pytest.approx(p)
    x = 2 * p**zeta
    assert solution.x_h("s", "human") == pytest.approx(x)
    assert solution.power_bits("s", "human") == pytest.approx(math.log2(x))
    u = -((x ** (-xi)) ** eta)
    assert solution.u_r("s") == pytest.approx(u)
    assert solution.v_r("s") == pytest.approx(u + g_r * v_t)
    assert solution.v_r("L") == pytest.approx(v_t)


def test_min_over_robot_is_inside_the_expectation() -> None:
    theory = TheoryParameters(beta_h=math.inf, zeta=2.0)
    solution = solve(one_step(robot_decides=True), theory)
    # the cautious human expects the worst robot action: no goal is sure
    assert solution.v_m("s", "human", "L") == pytest.approx(0.0)
    # the robot's own estimate uses its uniform policy
    assert solution.v_e("s", "human", "L") == pytest.approx(0.5)
    assert solution.x_h("s", "human") == pytest.approx(0.5)


def test_beta_infinity_is_the_limit_of_large_beta() -> None:
    world = one_step()
    exact = solve(world, TheoryParameters(beta_h=math.inf))
    assert exact.human_policy("s", "human", "L") == {"l": 1.0, "r": 0.0}
    large = solve(world, TheoryParameters(beta_h=40.0))
    for key in ("pi_h", "v_m", "v_e", "x_h", "v_r"):
        assert torch.allclose(exact[key], large[key], atol=1e-12), key


def test_robot_beta_infinity_is_argmax() -> None:
    world = random_layered_world(40, roles="hr", num_actions=[3, 3], num_layers=5)
    solution = solve(world, TheoryParameters(beta_r=math.inf))
    live = ~solution.world.terminal
    pi_r, q_r = solution["pi_r"][live], solution["q_r"][live]
    support = pi_r > 0
    best = q_r.masked_fill(~support, -math.inf).amax(-1, keepdim=True)
    allowed = solution.world.action_mask[live][:, 1, :3]
    assert not (allowed & (q_r > best + 1e-12)).any()
    sizes = support.sum(-1, keepdim=True).double()
    assert torch.allclose(pi_r, support.double() / sizes)


def test_full_habit_gives_the_habitual_policy() -> None:
    world = random_layered_world(30, roles="hhr", num_actions=[3, 2, 2], num_layers=4)
    S, G = world.num_states, world.max_goals
    pi0 = torch.rand(S, 2, G, 3, dtype=torch.float64) + 0.1
    solution = solve(
        world, TheoryParameters(nu_h=1.0), human_model=HumanModel(pi0_h=pi0)
    )
    mask = solution.world.action_mask[:, [0, 1], :3][:, :, None, :]
    expected = pi0 * mask
    expected = expected / expected.sum(-1, keepdim=True)
    live = ~solution.world.terminal
    assert torch.allclose(solution["pi_h"][live], expected[live], atol=1e-12)


@pytest.mark.parametrize("k", [1, 2, 5])
def test_power_of_k_sure_goals_is_log2_k(k: int) -> None:
    table = {(f"go{i}", "wait"): [(1.0, f"end{i}")] for i in range(k)}
    world = TabularWorld(
        transitions={"s": table},
        initial_state="s",
        agents=("human", "robot"),
        humans=("human",),
        robots=("robot",),
        goals={"human": {f"g{i}": [f"end{i}"] for i in range(k)}},
    )
    solution = solve(world, TheoryParameters(beta_h=math.inf, zeta=3.0))
    assert solution.power_bits("s", "human") == pytest.approx(math.log2(k))


def test_rest_action_keeps_power_in_a_goal() -> None:
    """A human standing in a goal who can stay keeps the goal reachable."""
    world = TabularWorld(
        transitions={
            "home": {("stay", "wait"): [(1.0, "home")], ("go", "wait"): [(1.0, "t")]},
        },
        initial_state="home",
        agents=("human", "robot"),
        humans=("human",),
        robots=("robot",),
        goals={"human": {"home": ["home"], "t": ["t"]}},
        rest_action="stay",
    )
    theory = TheoryParameters(beta_h=math.inf, gamma_h=0.9, gamma_r=0.9)
    solution = solve(world, theory)
    assert solution.human_policy("home", "human", "home") == {"stay": 1.0, "go": 0.0}
    assert solution.v_m("home", "human", "home") == pytest.approx(1.0)
    assert solution.v_e("home", "human", "t") == pytest.approx(1.0)
    assert solution.x_h("home", "human") == pytest.approx(2.0)
