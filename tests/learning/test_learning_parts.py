"""Schedules, shaping potential and greedy rollouts of the learned solver."""

from __future__ import annotations

import math

import pytest
import torch

from empo.learning.evaluate import greedy_rollout
from empo.learning.model import TransitionModel
from empo.learning.schedules import annealed_beta, linear_epsilon
from empo.learning.shaping import goal_distance_potential
from empo.worlds.tabular import TabularWorld


def test_linear_epsilon() -> None:
    assert linear_epsilon(0, 1.0, 0.1, 10) == 1.0
    assert linear_epsilon(5, 1.0, 0.1, 10) == pytest.approx(0.55)
    assert linear_epsilon(10, 1.0, 0.1, 10) == 0.1
    assert linear_epsilon(3, 1.0, 0.1, 0) == 0.1


def test_annealed_beta_is_geometric_and_reaches_the_final_value() -> None:
    assert annealed_beta(0, 0.1, 5.0, 100) == pytest.approx(0.1)
    assert annealed_beta(50, 0.1, 5.0, 100) == pytest.approx(math.sqrt(0.5))
    assert annealed_beta(100, 0.1, 5.0, 100) == 5.0
    assert annealed_beta(50, 0.0, 4.0, 100) == pytest.approx(2.0)
    assert annealed_beta(50, 1.0, math.inf, 100) == 1.0
    assert annealed_beta(100, 1.0, math.inf, 100) == math.inf


def _chain() -> TabularWorld:
    """a -> b -> c, or a -> d (robot's choice); goal {c} and goal {d}."""
    return TabularWorld(
        transitions={
            "a": {("stay", "on"): [(1.0, "b")], ("stay", "off"): [(1.0, "d")]},
            "b": {("stay", "on"): [(1.0, "c")], ("stay", "off"): [(1.0, "c")]},
        },
        initial_state="a",
        agents=("human", "robot"),
        humans=("human",),
        robots=("robot",),
        goals={"human": {"c": ["c"], "d": ["d"]}},
    )


def test_goal_distance_potential_by_hand() -> None:
    world = _chain().compile()
    model = TransitionModel(world)
    phi = goal_distance_potential(model, gamma_h=0.5)
    label = {lab: i for i, lab in enumerate(world.state_labels)}
    expected = {("a", 0): 0.5, ("b", 0): 1.0, ("a", 1): 1.0, ("b", 1): 0.0}
    for (state, goal), value in expected.items():
        assert float(phi[label[state], 0, goal]) == pytest.approx(value)
    assert float(phi[label["c"]].abs().sum()) == 0.0  # terminal: no successor


def test_greedy_rollout_follows_the_most_likely_robot_action() -> None:
    world = _chain().compile()
    label = {lab: i for i, lab in enumerate(world.state_labels)}
    off = world.action_names[1].index("off")
    pi_r = torch.zeros(world.num_states, len(world.action_names[1]))
    pi_r[:, off] = 1.0
    path = greedy_rollout(world, pi_r)
    assert [world.state_labels[s] for s in path] == ["a", "d"]
    pi_r[label["a"]] = 1.0 - pi_r[label["a"]]
    path = greedy_rollout(world, pi_r)
    assert [world.state_labels[s] for s in path] == ["a", "b", "c"]
