"""The TorchRL environment: specs, seeded sampling, rewards and rendering."""

import numpy as np
import torch
from torchrl.envs.utils import check_env_specs

from empo.worlds.multigrid.builtin import corridor, from_file, unsteady
from empo.worlds.multigrid.env import MultiGridEnv
from empo.worlds.multigrid.objects import Terrain
from empo.worlds.registry import build_world


def test_check_env_specs_and_rollout() -> None:
    env = MultiGridEnv(unsteady(), batch_size=4, seed=0)
    check_env_specs(env)
    rollout = env.rollout(8, break_when_any_done=False)
    assert rollout.batch_size == torch.Size([4, 8])
    assert rollout["next", "time"][:, 5].tolist() == [[6]] * 4
    assert rollout["next", "time"][:, 7].tolist() == [[2]] * 4  # auto-reset after 6
    assert (
        rollout["next", "done"][:, 5].all() and not rollout["next", "done"][:, 4].any()
    )
    assert rollout["humans", "position"].shape == (4, 8, 1, 2)
    assert rollout["robots", "dead"].shape == (4, 8, 1)
    assert rollout["grid"].shape == (4, 8, 4, 5, 3)


def test_seeded_sampling_is_reproducible() -> None:
    def run(seed: int) -> torch.Tensor:
        env = MultiGridEnv(unsteady(), batch_size=16, seed=seed)
        td = env.reset()
        td["humans", "action"] = torch.full((16, 1), 3)
        td["robots", "action"] = torch.full((16, 1), 3)
        td = env.step_mdp(env.step(td))  # the human steps onto unsteady ground
        td["humans", "action"] = torch.full((16, 1), 3)
        td["robots", "action"] = torch.full((16, 1), 3)
        return env.step(td)["next", "state"]

    assert torch.equal(run(1), run(1))
    assert not torch.equal(run(1), run(2))


def test_reward_is_goal_membership_and_render() -> None:
    world = from_file(
        map="We We We We\nWe Ay .. We\nWe We We We", action_class="SmallActions"
    )
    env = MultiGridEnv(world, batch_size=2, seed=0)
    td = env.reset(env.reset().set(("humans", "goal"), torch.tensor([[1], [0]])))
    td["humans", "action"] = torch.tensor([[3], [0]])
    out = env.step(td)["next"]
    assert out["humans", "reward"].tolist() == [[[1.0]], [[1.0]]]
    assert out["humans", "position"].tolist() == [[[2, 1]], [[1, 1]]]
    frames = env.render(out)
    assert frames.shape == (2, 72, 96, 3) and frames.dtype == np.uint8


def test_grid_observation_encodes_objects() -> None:
    env = MultiGridEnv(corridor(), batch_size=1)
    grid = env.reset()["grid"][0]
    agent = env.occupant_codes()["agent"]
    assert grid[1, 1].tolist() == [0, agent, 3]  # empty floor, agent 0, no door
    assert grid[1, 5].tolist() == [0, agent + 1, 3]
    assert grid[0, 0].tolist() == [1, 0, 3]  # wall


def test_grid_shows_fixture_states() -> None:
    """The kill button of off_switch: terrain code and its enabled flag."""
    env = MultiGridEnv(build_world("off_switch"), batch_size=1)
    td = env.reset()
    lay = env.layout
    grid, state = td["grid"][0].reshape(-1, 3), td["state"][0]
    cell = int((lay.terrain[: lay.cells] == Terrain.KILL_BUTTON).nonzero()[0])
    assert grid[cell, 0] == Terrain.KILL_BUTTON
    assert grid[cell, 2] == state[lay.kill_col + lay.fixture_of_cell[cell]]
    assert env.observation_spec["grid"].is_in(td["grid"])
