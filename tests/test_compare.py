"""empo.analysis.compare: visitation weights and per-quantity errors."""

from __future__ import annotations

import copy

import pytest
import torch

from empo.analysis import compare, visitation
from empo.exact import solve
from empo.parameters.theory import TheoryParameters
from empo.worlds.tabular import TabularWorld


def _fork_world() -> TabularWorld:
    """Robot picks left (L) or right (R); from L the human can reach goal G or stop."""
    return TabularWorld(
        transitions={
            "s": {("wait", "left"): [(1.0, "L")], ("wait", "right"): [(1.0, "R")]},
            "L": {
                ("go", "wait"): [(1.0, "G")],
                ("stop", "wait"): [(1.0, "E")],
            },
            "R": {("wait", "wait"): [(0.5, "G"), (0.5, "E")]},
        },
        initial_state="s",
        agents=("human", "robot"),
        humans=("human",),
        robots=("robot",),
        goals={"human": {"g": ["G"], "e": ["E"]}},
    )


@pytest.fixture
def exact():
    return solve(_fork_world(), TheoryParameters(beta_h=2.0, beta_r=1.0))


def test_visitation_counts_each_visit_once(exact) -> None:
    world = exact.world
    weights = visitation(world, exact.joint_policy())
    label = {lab: i for i, lab in enumerate(world.state_labels)}
    pi_r = exact.phase2["pi_r"][label["s"]]
    pi_go = exact.phase1["pi_h"][label["L"]].mean(1)  # goal-marginal, equal weights
    go = float(pi_go[0, world.action_names[0].index("go")])
    left, right = float(pi_r[0]), float(pi_r[1])
    # one visit of s, one of L or R, one of G or E: three visits in all
    expected = {
        "s": 1 / 3,
        "L": left / 3,
        "R": right / 3,
        "G": (left * go + right * 0.5) / 3,
        "E": (left * (1 - go) + right * 0.5) / 3,
    }
    for name, value in expected.items():
        assert float(weights[label[name]]) == pytest.approx(value, abs=1e-12)


def test_compare_is_zero_against_itself_and_weights_errors(exact) -> None:
    errors = compare(exact, exact)
    assert set(errors) == {"v_m", "pi_h", "v_e", "x_h", "v_r", "v_r_rel", "pi_r"}
    assert all(value == 0.0 for value in errors.values())
    learned = copy.deepcopy(exact)
    world = exact.world
    s = world.state_labels.index("s")
    learned.phase2["v_e"][s, 0, 0] += 0.2  # one of two goals: mean error 0.1 there
    learned.phase2["pi_r"][s] = torch.tensor([1.0, 0.0, 0.0], dtype=torch.float64)
    weights = visitation(world, exact.joint_policy())
    errors = compare(learned, exact)
    assert errors["v_e"] == pytest.approx(float(weights[s]) * 0.1, abs=1e-12)
    tv = 0.5 * float((learned.phase2["pi_r"][s] - exact.phase2["pi_r"][s]).abs().sum())
    alive = float(weights[~world.terminal].sum())
    assert errors["pi_r"] == pytest.approx(float(weights[s]) * tv / alive, abs=1e-12)
    assert errors["v_m"] == 0.0


def test_compare_rejects_other_worlds(exact) -> None:
    other = copy.deepcopy(exact)
    other.phase2 = other.phase2[:2]
    with pytest.raises(ValueError, match="learned solution has 2 states"):
        compare(other, exact)
