"""The generic environment: specs of every built-in world, groups, masks, rejection of
disallowed actions, goals, partial resets and sampling that matches the world model."""

import pytest
import torch
from torchrl.envs import ActionMask, Compose, TransformedEnv
from torchrl.envs.utils import check_env_specs

from empo.envs import keys
from empo.envs.world_env import WorldEnv
from empo.worlds.multigrid.env import MultiGridEnv
from empo.worlds.random_world import random_layered_world
from empo.worlds.registry import WorldName, build_world
from empo.worlds.transport.env import TransportEnv

SMALL = [w.value for w in WorldName if w not in (WorldName.MULTIGRID,)]
SMALL.remove("transport_large")  # checked once in tests/worlds/transport


@pytest.mark.parametrize("name", SMALL)
def test_every_builtin_world_passes_check_env_specs(name: str) -> None:
    env = WorldEnv(build_world(name), batch_size=(2,), seed=0)
    check_env_specs(env, seed=0)
    rollout = env.rollout(4, break_when_any_done=False)
    assert rollout["next", keys.HUMAN_REWARD].shape[-1] == 1
    assert rollout["next", keys.ROBOT_REWARD].abs().sum() == 0


def test_random_compiled_world_rows_are_state_ids() -> None:
    world = random_layered_world(40, roles="hhr", seed=3)
    env = WorldEnv(world, seed=1)
    check_env_specs(env, seed=0)
    rollout = env.rollout(5)
    assert rollout[keys.STATE].shape[-1] == 1
    assert rollout[keys.HUMANS].batch_size[-1] == 2


def test_world_envs_share_the_generic_environment() -> None:
    assert isinstance(MultiGridEnv(build_world("corridor")), WorldEnv)
    assert isinstance(TransportEnv(build_world("transport_small")), WorldEnv)


@pytest.mark.parametrize("batch_size", [(), (3,)])
def test_action_mask_transform_accepts_the_masks(batch_size: tuple) -> None:
    base = TransportEnv(build_world("transport_small", {"n_humans": 2}), batch_size)
    env = TransformedEnv(
        base,
        Compose(
            ActionMask(keys.HUMAN_ACTION, keys.HUMAN_MASK),
            ActionMask(keys.ROBOT_ACTION, keys.ROBOT_MASK),
        ),
    )
    check_env_specs(env, seed=0)
    rollout = env.rollout(12, break_when_any_done=False)
    for group in (keys.HUMANS, keys.ROBOTS):
        mask = rollout[group, keys.ACTION_MASK]
        taken = mask.gather(-1, rollout[group, keys.ACTION][..., None])
        assert taken.all()


def test_random_actions_are_allowed_and_disallowed_ones_rejected() -> None:
    world = build_world("transport_small")
    env = TransportEnv(world, batch_size=(64,), seed=0)
    rollout = env.rollout(12, break_when_any_done=False)  # raises if one is not
    assert not rollout[keys.ROBOT_MASK].all()  # some actions were masked
    td = env.reset()
    td[keys.HUMAN_ACTION] = torch.zeros(64, 1, dtype=torch.long)
    td[keys.ROBOT_ACTION] = torch.full((64, 1), 2)  # drive_1: no such edge at s0
    with pytest.raises(ValueError, match="'vehicle_0' may not take action 2 .drive_1."):
        env.step(td)


def test_goals_can_be_given_and_are_checked() -> None:
    env = WorldEnv(build_world("corridor"), batch_size=(2,), seed=0)
    goals = torch.tensor([[3], [1]])
    td = env.reset(env.reset().set(keys.HUMAN_GOAL, goals))
    assert torch.equal(td[keys.HUMAN_GOAL], goals)
    td[keys.HUMAN_ACTION] = torch.zeros(2, 1, dtype=torch.long)
    td[keys.ROBOT_ACTION] = torch.zeros(2, 1, dtype=torch.long)
    assert torch.equal(env.step(td)["next", keys.HUMAN_GOAL], goals)
    with pytest.raises(ValueError, match="is not a goal of human"):
        env.reset(env.reset().set(keys.HUMAN_GOAL, torch.tensor([[9], [0]])))


def test_goals_are_drawn_by_weight() -> None:
    env = WorldEnv(build_world("commitment"), batch_size=(4000,), seed=0)
    goals = env.reset()[keys.HUMAN_GOAL][:, 0]
    weights = env.goal_weights[0]
    expected = 4000 * weights / weights.sum()
    counts = torch.bincount(goals, minlength=len(weights)).double()
    live = expected > 0
    chi2 = float(((counts[live] - expected[live]) ** 2 / expected[live]).sum())
    assert chi2 < 20.0 and counts[~live].sum() == 0


def test_human_reward_is_entering_the_goal_and_done_is_terminal() -> None:
    env = WorldEnv(build_world("commitment"), seed=0)
    rollout = env.rollout(10)
    final = rollout["next"][-1]
    assert final[keys.DONE].all() and final[keys.HUMANS, keys.DONE].all()
    rows = rollout["next", keys.STATE]
    member = env.world.goal_membership(rows)
    goal = rollout[keys.HUMAN_GOAL]
    reached = member.gather(2, goal[..., None]).squeeze(-1).float()
    assert torch.equal(rollout["next", keys.HUMAN_REWARD][..., 0], reached)


def test_partial_reset_keeps_the_other_rows() -> None:
    env = WorldEnv(build_world("corridor"), batch_size=(2,), seed=0)
    td = env.reset()
    td[keys.HUMAN_ACTION] = torch.zeros(2, 1, dtype=torch.long)
    td[keys.ROBOT_ACTION] = torch.zeros(2, 1, dtype=torch.long)
    td = env.step(td)["next"]
    td["_reset"] = torch.tensor([[False], [True]])
    out = env.reset(td)
    assert out[keys.STATE][:, 0].tolist() == [1, 0]


def test_sampling_matches_the_world_model() -> None:
    """Chi-square of 4000 sampled successors of a step on unsteady ground (three
    outcomes) against ``world.transitions`` (the transport tests check the generic
    sampler the same way)."""
    world = build_world("unsteady")
    row = torch.tensor([[1, 6, 3, 0, -1, 12, 2, 0, -1]])
    actions = torch.tensor([[0, 3]])  # the robot moves forward on unsteady ground
    succ, prob = world.transitions(row, actions)
    live = prob[0] > 0
    assert int(live.sum()) == 3
    n = 4000
    env = WorldEnv(world, batch_size=(n,), seed=5)
    td = env.reset()
    td[keys.STATE] = row.expand(n, -1).clone()
    td[keys.HUMAN_ACTION] = torch.zeros(n, 1, dtype=torch.long)
    td[keys.ROBOT_ACTION] = torch.full((n, 1), 3)
    nxt = env.step(td)["next", keys.STATE]
    match = (nxt[:, None] == succ[0][live][None]).all(-1)
    assert bool((match.sum(1) == 1).all())
    counts = match.sum(0).double()
    expected = n * prob[0][live]
    chi2 = float(((counts - expected) ** 2 / expected).sum())
    assert chi2 < 13.82  # df = 2, 0.1% critical value
