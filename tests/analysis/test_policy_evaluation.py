"""Exact policy evaluation: the exact robot reproduces itself, a uniform robot matches
a hand computation, and the report names the largest per-state errors."""

import math
from dataclasses import replace

import pytest
import torch

from empo.analysis.policy_evaluation import (
    compare_robots,
    evaluate_robot,
    largest_errors,
    policy_report,
    robot_policy_table,
    visited_states,
)
from empo.exact import solve
from empo.parameters import TheoryParameters
from empo.worlds.random_world import random_layered_world
from empo.worlds.registry import build_world, compile_any
from empo.worlds.tabular import TabularWorld

KEYS = ("q_r", "pi_r", "v_e", "x_h", "u_r", "v_r")


@pytest.mark.parametrize("cyclic", [False, True])
def test_the_exact_robot_reproduces_the_exact_solution(cyclic: bool) -> None:
    world = random_layered_world(60, roles="hhr", seed=7, cyclic=cyclic)
    theory = TheoryParameters(gamma_h=0.9, gamma_r=0.9)
    exact = solve(world, theory, tolerance=1e-13)
    evaluated = evaluate_robot(exact, robot_policy_table(exact.robot_probs, exact))
    for key in KEYS:
        torch.testing.assert_close(
            evaluated.phase2[key], exact.phase2[key], atol=1e-9, rtol=1e-9
        )


def _help_or_block() -> TabularWorld:
    """The robot opens a room with two goals or one with a single goal."""
    return TabularWorld(
        transitions={
            "s": {
                ("wait", "help"): [(1.0, "open")],
                ("wait", "block"): [(1.0, "shut")],
            },
            "open": {("l", "wait"): [(1.0, "L")], ("r", "wait"): [(1.0, "R")]},
            "shut": {("l", "wait"): [(1.0, "L")], ("r", "wait"): [(1.0, "L")]},
        },
        initial_state="s",
        agents=("human", "robot"),
        humans=("human",),
        robots=("robot",),
        goals={"human": {"L": ["L"], "R": ["R"]}},
    )


def test_a_uniform_robot_matches_the_hand_computation() -> None:
    g_h, g_r, xi, eta, v_t = 0.9, 0.8, 1.0, 1.1, -0.5
    theory = TheoryParameters(
        beta_h=math.inf, gamma_h=g_h, gamma_r=g_r, xi=xi, eta=eta, terminal_v_r=v_t
    )
    exact = solve(_help_or_block(), theory)
    world = exact.world
    names = world.action_names[1]
    uniform = world.action_mask[:, 1, : len(names)].double()
    uniform = uniform / uniform.sum(-1, keepdim=True)
    comparison = compare_robots(exact, lambda rows: uniform[rows[:, 0]])
    got = comparison.evaluated
    s, opened, shut = (world.index_of(x) for x in ("s", "open", "shut"))
    u = {x: -((x_h ** (-xi)) ** eta) for x, x_h in (("open", 2.0), ("shut", 1.0))}
    v_r = {x: u[x] + g_r * v_t for x in u}
    x_s = g_h**2 + (0.5 * g_h) ** 2  # V^e(s, L) = g_h, V^e(s, R) = g_h / 2
    u_s = -((x_s ** (-xi)) ** eta)
    assert float(got.phase2["x_h"][s, 0]) == pytest.approx(x_s)
    assert float(got.phase2["u_r"][s]) == pytest.approx(u_s)
    q = [g_r * v_r["open"], g_r * v_r["shut"]]
    help_block = [names.index("help"), names.index("block")]
    assert got.phase2["q_r"][s, help_block].tolist() == pytest.approx(q)
    assert float(got.phase2["v_r"][s]) == pytest.approx(u_s + 0.5 * sum(q))
    assert float(got.phase2["v_r"][opened]) == pytest.approx(v_r["open"])
    assert float(got.phase2["v_r"][shut]) == pytest.approx(v_r["shut"])
    summary = comparison.summary(exact)
    assert summary["w_h_expected"]["human"]["robot"][:2] == pytest.approx(
        [math.log2(x_s), 0.5]
    )
    assert summary["v_r_s0"]["robot"] == pytest.approx(u_s + 0.5 * sum(q))
    # the exact robot helps more often than not and so does better
    assert summary["v_r_s0"]["exact"] > summary["v_r_s0"]["robot"]
    assert summary["peak"]["human"]["step"] in (0, 1)


def test_bad_policies_are_rejected() -> None:
    exact = solve(_help_or_block(), TheoryParameters())
    policy = exact.phase2["pi_r"].clone()
    with pytest.raises(ValueError, match="shape"):
        evaluate_robot(exact, policy[:, :1])
    policy[exact.world.index_of("s")] = torch.tensor([0.7, 0.7, 0.0])
    with pytest.raises(ValueError, match="at state 0 .'s'. is not a distribution"):
        evaluate_robot(exact, policy)


def test_largest_errors_over_visited_states() -> None:
    exact = solve(compile_any(build_world("corridor")), TheoryParameters())
    comparison = compare_robots(exact, exact)
    assert comparison.summary(exact)["v_r_s0"]["robot"] == pytest.approx(
        comparison.summary(exact)["v_r_s0"]["exact"], abs=1e-12
    )
    states = visited_states([comparison.robot])
    d = comparison.exact.distribution
    assert bool((d.amax(0)[states] >= 1e-3).all())
    live = states[~exact.world.terminal[states]]
    target = int(live[len(live) // 2])
    v_e = exact.phase2["v_e"].clone()
    v_e[target, 0, 1] += 0.3
    learned = replace(exact, phase2=exact.phase2.clone().set("v_e", v_e))
    errors = largest_errors(learned, exact, states)
    assert errors["v_e"]["error"] == pytest.approx(0.3)
    assert errors["v_e"]["state"] == str(exact.world.state_table[target].tolist())
    assert errors["v_r"]["error"] == 0.0 and errors["pi_r"]["error"] == 0.0
    report = policy_report(exact, exact)
    assert report["visited_states"] == len(visited_states([comparison.robot]))
    assert max(e["error"] for e in report["largest_errors"].values()) == 0.0
