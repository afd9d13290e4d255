"""Evaluation from the initial state on a hand-built world with hand-computed numbers.

World: from ``start`` the robot picks ``a`` (to the terminal states ``L``/``R`` with
probability 1/2 each) or ``b`` (to ``mid``, whose every action leads to ``R``). The
robot plays ``a`` w.p. 1/4 at ``start``, the human is uniform; ``X_h = 4, 2`` at
``start``, ``mid`` (``W_h = 2, 1`` bits), ``U_r = -1, -2``, ``γ_r = 0.9`` and
``terminal_v_r = -0.5``, so ``V_r(mid) = -2 + 0.9·(-0.5) = -2.45`` and
``V_r(start) = -1 + 0.9·(0.25·(-0.5) + 0.75·(-2.45)) = -2.76625``.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass

import pytest
import torch
from tensordict import TensorDict
from torch import Tensor

from empo.evaluation import (
    CYCLIC_HORIZON,
    evaluate,
    propagate,
    robot_action_names,
    robot_marginal,
)
from empo.parameters import EvaluationParameters, TheoryParameters
from empo.worlds.compiled import CompiledWorld

GAMMA_R = 0.9
TERMINAL_V_R = -0.5
V_R_START = -1 + 0.9 * (0.25 * -0.5 + 0.75 * -2.45)


def tiny_world(cyclic_marker: bool = False) -> CompiledWorld:
    live = torch.ones(2, 2, dtype=torch.bool)
    dead = torch.zeros(2, 2, dtype=torch.bool)
    return CompiledWorld(
        agents=("robot", "human"),
        humans=(1,),
        robots=(0,),
        action_names=(("a", "b"), ("stay", "go")),
        action_mask=torch.stack([live, dead, dead, live]),
        successors=torch.tensor(
            [
                [[1, 2], [1, 2], [3, 0], [3, 0]],
                [[1, 1]] * 4,
                [[2, 2]] * 4,
                [[2, 3]] * 4,
            ]
        ),
        probabilities=torch.tensor(
            [
                [[0.5, 0.5], [0.5, 0.5], [1.0, 0.0], [1.0, 0.0]],
                [[0.0, 0.0]] * 4,
                [[0.0, 0.0]] * 4,
                [[1.0, 0.0]] * 4,
            ],
            dtype=torch.float64,
        ),
        terminal=torch.tensor([False, True, True, False]),
        goal_membership=torch.tensor([[[False, True, False, False]]]),
        goal_weights=torch.tensor([[1.0]], dtype=torch.float64),
        goal_names=(("L",),),
        height=None if cyclic_marker else torch.tensor([2, 0, 0, 1]),
        initial_state=0,
        rest_action=(None, None),
        state_labels=["start", "L", "R", "mid"],
    )


@dataclass
class FakeSolution:
    world: CompiledWorld
    phase2: TensorDict

    def joint_policy(self) -> Tensor:
        return torch.tensor(
            [
                [0.125, 0.125, 0.375, 0.375],
                [0.0] * 4,
                [0.0] * 4,
                [1.0, 0.0, 0.0, 0.0],
            ],
            dtype=torch.float64,
        )


def fake_solution(cyclic_marker: bool = False) -> FakeSolution:
    phase2 = TensorDict(
        {
            "x_h": torch.tensor([[4.0], [0.0], [0.0], [2.0]], dtype=torch.float64),
            "u_r": torch.tensor([-1.0, 0.0, 0.0, -2.0], dtype=torch.float64),
            "v_r": torch.tensor(
                [V_R_START, TERMINAL_V_R, TERMINAL_V_R, -2.45], dtype=torch.float64
            ),
        },
        batch_size=[4],
    )
    return FakeSolution(tiny_world(cyclic_marker), phase2)


def run_evaluation(
    horizon: int | None = None, rollouts: int = 0, cyclic_marker: bool = False
):
    return evaluate(
        fake_solution(cyclic_marker),
        EvaluationParameters(rollouts=rollouts, horizon=horizon),
        TheoryParameters(gamma_r=GAMMA_R, terminal_v_r=TERMINAL_V_R),
        torch.Generator().manual_seed(7),
    )


def test_most_likely_trajectory_and_its_power() -> None:
    result = run_evaluation()
    # (b, stay) and (b, go) tie at 0.375: the lowest joint index wins
    assert result.trajectory == [0, 3, 2]
    assert result.trajectory_labels == ["start", "mid", "R"]
    assert result.trajectory_actions == [
        {"robot": "b", "human": "stay"},
        {"robot": "a", "human": "stay"},
    ]
    assert result.w_h_trajectory[:2, 0].tolist() == [2.0, 1.0]
    assert result.w_h_trajectory[2, 0] == -math.inf
    assert result.u_r_trajectory[:2].tolist() == [-1.0, -2.0]
    assert math.isnan(result.u_r_trajectory[2])
    assert result.final_step() == 1


def test_expectation_is_propagated_exactly() -> None:
    result = run_evaluation()
    assert result.alive.tolist() == pytest.approx([1.0, 0.75, 0.0])
    assert result.w_h_expected[:2, 0].tolist() == pytest.approx([2.0, 1.0])
    assert math.isnan(result.w_h_expected[2, 0])
    assert result.u_r_expected.tolist() == pytest.approx([-1.0, -1.5, 0.0])
    assert result.robot_policy_s0 == pytest.approx({"a": 0.25, "b": 0.75})
    assert result.v_r_s0 == pytest.approx(V_R_START)
    assert result.discounted_return == pytest.approx(V_R_START, abs=1e-12)
    d = propagate(tiny_world(), fake_solution().joint_policy(), 2)
    expected = [[1, 0, 0, 0], [0, 0.125, 0.125, 0.75], [0, 0, 0.75, 0]]
    assert torch.allclose(d, torch.tensor(expected, dtype=torch.float64))


def test_horizon_cuts_trajectory_and_cyclic_default() -> None:
    short = run_evaluation(horizon=1)
    assert short.trajectory == [0, 3]
    assert short.alive.shape == (2,)
    assert short.discounted_return == pytest.approx(-1 + 0.9 * (-1.5 - 0.125))
    cyclic = run_evaluation(cyclic_marker=True)
    assert cyclic.alive.shape == (CYCLIC_HORIZON + 1,)
    assert cyclic.trajectory == [0, 3, 2]
    assert cyclic.discounted_return == pytest.approx(V_R_START, abs=1e-12)


def test_sampled_rollouts_estimate_the_expectation() -> None:
    result = run_evaluation(rollouts=4000)
    sampled = result.sampled
    assert sampled["rollouts"] == 4000
    # length is 1 (robot a) w.p. 1/4 and 2 otherwise; returns -1.45 and -3.205
    assert sampled["mean_length"] == pytest.approx(1.75, abs=0.03)
    assert sampled["discounted_return_mean"] == pytest.approx(V_R_START, abs=0.05)
    std = math.sqrt(0.25 * 0.75) * (3.205 - 1.45)
    assert sampled["discounted_return_std"] == pytest.approx(std, rel=0.05)
    # the last live state is start (W=2) w.p. 1/4 and mid (W=1) otherwise
    assert sampled["w_h/human/final_mean"] == pytest.approx(1.25, abs=0.03)
    again = run_evaluation(rollouts=4000).sampled
    assert again == sampled


def test_metrics_are_flat_and_strict_json() -> None:
    metrics = run_evaluation(rollouts=10).metrics()
    text = json.dumps(metrics, allow_nan=False)
    assert json.loads(text) == metrics
    assert metrics["v_r_s0"] == pytest.approx(V_R_START)
    assert metrics["w_h/human/s0"] == 2.0
    assert metrics["w_h/human/final"] == 1.0
    assert metrics["w_h/human/trajectory/2"] == "-inf"
    assert metrics["u_r/expected/1"] == pytest.approx(-1.5)
    assert metrics["alive/expected/1"] == pytest.approx(0.75)
    assert metrics["robot_policy_s0/b"] == pytest.approx(0.75)
    assert metrics["trajectory/length"] == 2
    assert metrics["sampled/rollouts"] == 10
    assert all(
        isinstance(v, (int, float, str)) and not isinstance(v, bool)
        for v in metrics.values()
    )


@pytest.mark.parametrize(("robots", "names"), [((0, 2), "r1+r2"), ((2, 0), "r2+r1")])
def test_robot_marginal_over_several_robots(
    robots: tuple[int, int], names: str
) -> None:
    world = tiny_world()
    world.agents = ("r1", "h", "r2")
    world.action_names = (("a", "b"), ("x", "y", "z"), ("p", "q"))
    world.robots = robots
    world.humans = (1,)
    p1 = torch.tensor([0.2, 0.8], dtype=torch.float64)
    ph = torch.tensor([0.5, 0.3, 0.2], dtype=torch.float64)
    p2 = torch.tensor([0.9, 0.1], dtype=torch.float64)
    joint = torch.einsum("i,j,k->ijk", p1, ph, p2).reshape(-1)
    marginal = robot_marginal(world, joint[None].expand(3, -1))
    first, second = (p1, p2) if robots == (0, 2) else (p2, p1)
    expected = torch.outer(first, second).reshape(-1)
    assert torch.allclose(marginal, expected.expand(3, -1))
    action_names = robot_action_names(world)
    assert len(action_names) == 4
    assert action_names[1] == ("a+q" if names == "r1+r2" else "p+b")
