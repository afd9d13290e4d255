"""Paradigm worlds solved exactly: closed forms and the predicted behaviours."""

import math

import pytest

from empo.exact import solve
from empo.parameters.theory import TheoryParameters
from empo.worlds import paradigms

INF = math.inf


def menu_closed_form(k: int, beta: float, zeta: float) -> float:
    """``X_h(s_k) = k (e^β / (e^β + k - 1))^ζ`` (docstring of ``menu_size``)."""
    return k * (math.exp(beta) / (math.exp(beta) + k - 1)) ** zeta


@pytest.mark.parametrize(
    ("beta_h", "zeta"), [(1.0, 2.0), (2.0, 1.5), (0.5, 3.0), (3.0, 1.0), (0.0, 2.0)]
)
def test_menu_size_closed_form(beta_h: float, zeta: float) -> None:
    theory = TheoryParameters(
        beta_h=beta_h, zeta=zeta, gamma_h=0.9, gamma_r=0.9, beta_r=INF
    )
    solution = solve(paradigms.menu_size(max_k=6), theory)
    x = [solution.x_h(("menu", k), "human") for k in range(1, 7)]
    assert x == pytest.approx(
        [menu_closed_form(k, beta_h, zeta) for k in range(1, 7)], rel=1e-10
    )
    best = max(range(1, 7), key=lambda k: menu_closed_form(k, beta_h, zeta))
    assert solution.robot_policy(("start",))[f"offer {best}"] == pytest.approx(1.0)


def test_menu_size_robot_avoids_largest_menu() -> None:
    # k* = (e^β - 1) / (ζ - 1) = e - 1 ≈ 1.7 for β = 1, ζ = 2: the robot offers 2.
    theory = TheoryParameters(beta_h=1.0, zeta=2.0, beta_r=5.0)
    policy = solve(paradigms.menu_size(max_k=6), theory).robot_policy(("start",))
    assert max(policy, key=policy.get) == "offer 2"
    assert policy["offer 6"] < policy["offer 2"] / 2


@pytest.mark.parametrize("beta_h", [0.5, 2.0, 8.0])
def test_commitment_powers(beta_h: float) -> None:
    gamma_h, zeta = 0.9, 2.0
    theory = TheoryParameters(beta_h=beta_h, gamma_h=gamma_h, zeta=zeta, gamma_r=0.9)
    solution = solve(paradigms.commitment(), theory)
    # committed: button 1 gets A for sure, "pass" leaves the robot's uniform last
    # move (A with probability 1/3), button 2 gets B (eq. 6 uses the actual pi_r)
    p = math.exp(beta_h * gamma_h) / (math.exp(beta_h * gamma_h) + 2)
    q = 1 / (math.exp(beta_h * gamma_h) + 2)
    committed = (1, "commit 1A 2B", None, False, False)
    assert solution.human_policy(committed, "human", "A") == pytest.approx(
        {"button 1": p, "button 2": q, "pass": q}
    )
    assert solution.x_h(committed, "human") == pytest.approx(
        2 * (gamma_h * (p + q / 3)) ** zeta
    )
    did_a = (1, "A", None, True, False)
    assert solution.x_h(did_a, "human") == pytest.approx(1 + (gamma_h / 3) ** zeta)
    uncommitted = (1, "pass", None, False, False)
    assert solution.x_h(uncommitted, "human") == pytest.approx(
        2 * (gamma_h / 3) ** zeta
    )


def test_commitment_depends_on_rationality() -> None:
    start = (0, None, None, False, False)

    def commit_probability(beta_h: float) -> float:
        theory = TheoryParameters(beta_h=beta_h, gamma_h=1.0, gamma_r=1.0, beta_r=5.0)
        policy = solve(paradigms.commitment(), theory).robot_policy(start)
        assert policy["A"] == pytest.approx(policy["B"])
        return policy["commit 1A 2B"] + policy["commit 1B 2A"]

    assert commit_probability(INF) > 0.7
    assert commit_probability(20.0) > 0.7
    assert commit_probability(0.5) < 0.05
    assert commit_probability(0.0) < commit_probability(2.0) < commit_probability(5.0)


@pytest.mark.parametrize("units", [2, 3])
def test_resource_split_closed_form(units: int) -> None:
    theory = TheoryParameters(beta_h=INF, gamma_h=1.0, gamma_r=1.0, beta_r=INF)
    solution = solve(paradigms.resource_split(units=units), theory)
    for m in range(units + 1):
        assert solution.x_h(("split", m), "human1") == pytest.approx(2**m)
        assert solution.x_h(("split", m), "human2") == pytest.approx(2 ** (units - m))
    policy = solution.robot_policy(("start",))
    fair = {units // 2, (units + 1) // 2}
    expected = {
        f"give {m}": 1 / len(fair) if m in fair else 0.0 for m in range(units + 1)
    }
    assert policy == pytest.approx(expected)


def test_pause_destroy_powers_and_choice() -> None:
    theory = TheoryParameters(beta_h=INF, gamma_h=1.0, gamma_r=1.0, beta_r=5.0)
    solution = solve(paradigms.pause_destroy(tasks=3, tasks_alone=1), theory)
    buttons = {
        c: solution.x_h(("buttons", c), "human")
        for c in ("neither", "pause", "destroy", "both")
    }
    assert buttons == pytest.approx(
        {"neither": 3.0, "pause": 4.0, "destroy": 4.0, "both": 4.0}
    )
    modes = {
        m: solution.x_h(("act", m), "human") for m in ("working", "paused", "destroyed")
    }
    assert modes == pytest.approx({"working": 3.0, "paused": 4.0, "destroyed": 2.0})
    policy = solution.robot_policy(("start",))
    assert max(policy, key=policy.get) == "pause"
    assert policy["pause"] > policy["both"] > policy["destroy"] > policy["neither"]


@pytest.mark.parametrize("eps_x", [0.0, 1e-3])
@pytest.mark.parametrize("beta_h", [1.0, 4.0])
def test_confirmation_cyclic_matches_unrolled(beta_h: float, eps_x: float) -> None:
    theory = TheoryParameters(
        beta_h=beta_h, gamma_h=0.9, gamma_r=0.9, beta_r=5.0, eps_x=eps_x
    )
    cyclic = solve(paradigms.confirmation(max_confirmations=1), theory, tolerance=1e-13)
    unrolled = solve(
        paradigms.confirmation(max_confirmations=1, max_restarts=40), theory
    )
    assert cyclic.converged == {"phase1": True, "phase2": True}
    assert unrolled.world.height is not None
    for state in [("start",), ("order", 1, 0), ("confirm", 1, 0, "B", 0)]:
        assert cyclic.x_h(state, "human") == pytest.approx(
            unrolled.x_h(state, "human"), abs=1e-10
        )
        assert cyclic.v_r(state) == pytest.approx(unrolled.v_r(state), rel=1e-9)
    assert cyclic.robot_policy(("start",)) == pytest.approx(
        unrolled.robot_policy(("start",)), abs=1e-10
    )
    # without confirmation the order is final: X_h = 2 (e^β / (e^β + 1))^ζ
    p = math.exp(beta_h) / (math.exp(beta_h) + 1)
    assert cyclic.x_h(("order", 0, 0), "human") == pytest.approx(2 * p**2.0)


def test_confirmation_with_slips() -> None:
    beta_h, slip = 10.0, 0.2
    theory = TheoryParameters(
        beta_h=beta_h, gamma_h=0.9, gamma_r=0.9, beta_r=5.0, eps_x=1e-3
    )
    ends = solve(paradigms.confirmation(max_confirmations=2, slip=slip), theory)
    # k = 0: Q^m = 1 - slip for the right order and slip for the wrong one
    p = 1 / (1 + math.exp(-beta_h * (1 - 2 * slip)))
    v_e = p * (1 - slip) + (1 - p) * slip
    assert ends.x_h(("order", 0, 0), "human") == pytest.approx(2 * v_e**2)
    assert ends.x_h(("order", 1, 0), "human") > ends.x_h(("order", 0, 0), "human")
    policy = ends.robot_policy(("start",))
    assert max(policy, key=policy.get) == "ask 0"
    lives_on = solve(
        paradigms.confirmation(max_confirmations=2, slip=slip, absorbing=True), theory
    )
    policy = lives_on.robot_policy(("start",))
    assert max(policy, key=policy.get) == "ask 1"
