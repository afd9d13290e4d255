"""Schedules, shaping potential, greedy rollouts, collectors' goal draws and the
network keys."""

from __future__ import annotations

import math

import pytest
import torch
from tensordict import TensorDict

from empo.goals import sample_goal_profiles
from empo.learning.collect import Phase2Collector
from empo.learning.evaluate import greedy_rollout
from empo.learning.losses import masked_mse
from empo.learning.data import CompiledData, RowData
from empo.learning.schedules import annealed_beta, linear_epsilon
from empo.learning.shaping import goal_distance_potential
from empo.learning.modules import (
    GoalHead,
    MeanDeviationHead,
    goal_network,
    state_network,
)
from empo.parameters.learning import Phase1Parameters
from empo.worlds.registry import build_world, compile_any
from empo.worlds.tabular import TabularWorld
from empo.worlds.transport.builtin import small


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
    phi = goal_distance_potential(CompiledData(world), gamma_h=0.5)
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


def test_networks_run_on_environment_rows_and_on_batches_alike() -> None:
    """A network reads the root ``"state"`` row (ids are read only by the encodings
    that need them), so it runs on what an environment emits and on the solver's
    batches alike, and leaves no intermediate keys behind."""
    world = small(n_humans=2, horizon=3)
    knobs = Phase1Parameters(state_encoding="features", embed_dim=4, hidden_sizes=(8,))
    torch.manual_seed(0)
    for data in (CompiledData(compile_any(world)), RowData(world)):
        q_net = goal_network(data, knobs, data.max_human_actions, "q_m_raw")
        q_r = state_network(data, knobs, data.robot_actions, "log_neg_q_r")
        batch = data.states(world.initial_states()[:1].repeat(5, 1))
        out = q_r(q_net(batch.copy()))
        assert set(out.keys()) == set(batch.keys()) | {"q_m_raw", "log_neg_q_r"}
        assert out["q_m_raw"].shape == (5, 2, data.num_goals, data.max_human_actions)
        assert out["log_neg_q_r"].shape == (5, data.robot_actions)
        single = q_net(TensorDict({"state": world.initial_states()[0]}, batch_size=[]))
        torch.testing.assert_close(single["q_m_raw"], out["q_m_raw"][0])


def test_masked_mse_refuses_shapes_that_would_broadcast() -> None:
    pred, target = torch.zeros(3, 1), torch.ones(1, 5)
    mask = torch.ones(3, 5, dtype=torch.bool)
    with pytest.raises((ValueError, TypeError), match="shape"):
        masked_mse(pred, target, mask)
    assert masked_mse(torch.zeros(3, 5), torch.ones(3, 5), mask).item() == 1.0


def test_collectors_draw_goal_profiles_with_the_shared_sampler() -> None:
    data = CompiledData(compile_any(build_world("two_humans_door")))
    drawn = Phase2Collector(data, None, 64, 10, torch.Generator().manual_seed(7))
    want = sample_goal_profiles(data.goal_weights, 64, torch.Generator().manual_seed(7))
    assert drawn.goals.shape == (64, 2)
    assert torch.equal(drawn.goals, want)


def test_goal_head_is_one_linear_layer_over_the_concatenated_inputs() -> None:
    """The factored first layer equals ``nn.Linear`` over ``[state, human, goal,
    pair vector]`` and is initialised as that layer (``±1/√fan_in``, whole fan-in)."""
    torch.manual_seed(0)
    head = GoalHead(
        6, 3, 3, num_humans=2, num_goals=5, out_dim=1, hidden=(8,), pair_dim=7
    )
    bound = (6 + 3 + 3 + 7) ** -0.5
    for part in (head.from_state, head.from_human, head.from_goal, head.from_pair):
        assert 0.9 * bound < float(part.weight.abs().max()) <= bound
    state, human, goal = torch.randn(9, 6), torch.randn(9, 2, 3), torch.randn(9, 5, 3)
    first = torch.nn.Linear(19, 8)
    with torch.no_grad():
        first.weight.copy_(
            torch.cat(
                [
                    head.from_state.weight,
                    head.from_human.weight,
                    head.from_goal.weight,
                    head.from_pair.weight,
                ],
                1,
            )
        )
        first.bias.copy_(head.from_state.bias)
    pair = head.pair.weight.reshape(2, 5, 7)
    inputs = torch.cat(
        [
            state[:, None, None].expand(9, 2, 5, 6),
            human[:, :, None].expand(9, 2, 5, 3),
            goal[:, None].expand(9, 2, 5, 3),
            pair[None].expand(9, 2, 5, 7),
        ],
        -1,
    )
    want = head.body(first(inputs)).squeeze(-1)
    torch.testing.assert_close(head(state, human, goal), want)


def test_mean_deviation_head_by_hand() -> None:
    """``m(s) + d(s, ·) - mean d(s, ·)``: with the deviation's last layer at 0 and
    biases (1, 2, 6) every state's outputs are its mean ``m(s)`` plus (-2, -1, 3)."""
    torch.manual_seed(0)
    head = MeanDeviationHead(4, 3, (5,))
    with torch.no_grad():
        head.deviation[-1].weight.zero_()
        head.deviation[-1].bias.copy_(torch.tensor([1.0, 2.0, 6.0]))
    state = torch.randn(7, 4)
    out = head(state)
    torch.testing.assert_close(
        out - head.mean(state), torch.tensor([-2.0, -1.0, 3.0]).expand(7, 3)
    )
    torch.testing.assert_close(out.mean(-1, keepdim=True), head.mean(state))
