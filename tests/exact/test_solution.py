"""The Solution object: keys, TensorDicts, joint policy and label-level queries."""

import math

import pytest
import torch

from empo.exact import solve
from empo.parameters.theory import TheoryParameters
from empo.worlds.random_world import random_layered_world
from empo.worlds.tabular import TabularWorld


def two_robot_world() -> TabularWorld:
    table = {}
    for h in ("x", "y"):
        for r1 in ("p", "q"):
            for r2 in ("u", "v", "w"):
                end = "A" if (h == "x") == (r1 == "p") else "B"
                table[(r1, h, r2)] = [(0.5, end), (0.5, "C" if r2 == "w" else end)]
    return TabularWorld(
        transitions={"s": table},
        initial_state="s",
        agents=("r1", "human", "r2"),
        humans=("human",),
        robots=("r1", "r2"),
        goals={"human": {"A": ["A"], "B": (["B"], 2.0), "C": ["C"]}},
    )


def test_shapes_keys_and_tensordicts() -> None:
    world = random_layered_world(
        30, roles="hhr", num_actions=[2, 4, 3], num_goals=[2, 5], num_layers=4
    )
    solution = solve(world)
    S = world.num_states
    assert solution.phase1.batch_size == torch.Size([S])
    assert solution["q_m"].shape == (S, 2, 5, 4)
    assert solution["pi_h"].shape == (S, 2, 5, 4)
    assert solution["v_m"].shape == (S, 2, 5)
    assert solution["q_r"].shape == (S, 3)
    assert solution["v_e"].shape == (S, 2, 5)
    assert solution["x_h"].shape == (S, 2)
    assert solution["v_r"].shape == (S,)
    terminal = world.terminal
    assert (solution["pi_h"][terminal] == 0).all()
    assert (solution["v_r"][terminal] == TheoryParameters().terminal_v_r).all()
    assert (solution["pi_h"][:, 0, 2:] == 0).all()  # padded goals of human 0
    with pytest.raises(KeyError, match="no quantity"):
        solution["nope"]


def test_joint_policy_is_the_product_in_world_order() -> None:
    solution = solve(two_robot_world(), TheoryParameters(beta_h=1.0, beta_r=2.0))
    joint = solution.joint_policy()
    world = solution.world
    s = solution.state_id("s")
    assert joint.shape == (world.num_states, 2 * 2 * 3)
    assert joint[s].sum().item() == pytest.approx(1.0)
    pi_r = solution.robot_policy("s")
    weights = torch.tensor([1.0, 2.0, 1.0]) / 4.0
    bar = {
        a: sum(
            w.item() * solution.human_policy("s", "human", g)[a]
            for w, g in zip(weights, "ABC")
        )
        for a in ("x", "y")
    }
    index = world.joint_action_index(("q", "y", "w"))
    assert joint[s, index].item() == pytest.approx(pi_r[("q", "w")] * bar["y"])
    assert joint[world.terminal].abs().sum() == 0


def test_label_queries_with_two_robots() -> None:
    solution = solve(two_robot_world(), TheoryParameters(beta_h=math.inf))
    names = solution.robot_action_names
    assert names[0] == ("p", "u") and names[-1] == ("q", "w")
    policy = solution.robot_policy("s")
    assert set(policy) == set(names)
    assert sum(policy.values()) == pytest.approx(1.0)
    assert set(solution.q_r("s")) == set(names)
    assert set(solution.human_policy("s", "human", "B")) == {"x", "y"}
    # the robots could force B against the cautious human: V^m is the worst case
    assert solution.v_m("s", 0, 1) == pytest.approx(0.0)
    assert solution.x_h("s", "human") > 0
    with pytest.raises(KeyError, match="no human"):
        solution.x_h("s", "robot")
    with pytest.raises(KeyError, match="no goal"):
        solution.v_e("s", "human", "Z")
    with pytest.raises(KeyError):
        solution.v_r("nowhere")
