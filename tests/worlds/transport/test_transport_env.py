"""The TorchRL face of the transport world: specs, seeding, and sampling that
matches the explicit transition probabilities (fixed-seed chi-square)."""

import pytest
import torch
from tensordict import TensorDict
from torchrl.envs.utils import check_env_specs

from empo.worlds.transport.builtin import large, small
from empo.worlds.transport.dynamics import TransportWorld
from empo.worlds.transport.env import TransportEnv
from empo.worlds.transport.network import ring_network


@pytest.mark.parametrize("batch_size", [(), (3,), (2, 2)])
def test_transport_env_specs(batch_size: tuple[int, ...]) -> None:
    env = TransportEnv(small(n_humans=2), batch_size=batch_size)
    check_env_specs(env, seed=0)
    rollout = env.rollout(7, break_when_any_done=False)
    assert rollout.shape == (*batch_size, 7)
    assert rollout["next", "state"].shape == (*batch_size, 7, 12)
    # the horizon (6) ends an episode; the env then resets to t = 0
    times = rollout["state"][..., 0].reshape(-1, 7)
    assert times[0].tolist() == [0, 1, 2, 3, 4, 5, 0]
    done = rollout["next", "done"].reshape(-1, 7)
    assert done[0].tolist() == [False] * 5 + [True, False]


def test_transport_env_seeding_reproduces() -> None:
    env = TransportEnv(small(n_humans=2), batch_size=(16,))
    runs = []
    for _ in range(2):
        env.set_seed(7)
        torch.manual_seed(0)
        runs.append(env.rollout(5)["next", "state"])
    assert torch.equal(runs[0], runs[1])


def test_transport_env_partial_reset() -> None:
    env = TransportEnv(small(), batch_size=(2,))
    td = env.reset()
    td["robots", "action"] = torch.tensor([[1], [1]])
    td["humans", "action"] = torch.tensor([[0], [0]])
    td = env.step(td)["next"]
    td["_reset"] = torch.tensor([[True], [False]])
    out = env.reset(td)
    assert out["state"][:, 0].tolist() == [0, 1]


def test_transport_env_sampling_matches_explicit_probabilities() -> None:
    """Three humans rush for two seats: three outcomes of probability 1/3 each.
    Sampled frequencies pass a chi-square test (df = 2, 0.1% critical value 13.82)."""
    world = TransportWorld(ring_network(3), [0], [0, 0, 0], capacity=2, horizon=3)
    n = 3000
    env = TransportEnv(world, batch_size=(n,), seed=11)
    td = env.reset()
    board = 1 + world.network.max_out_degree
    actions = torch.tensor([board, board, board, 1])
    td["humans", "action"] = actions[:3].expand(n, -1).clone()
    td["robots", "action"] = actions[3:].expand(n, -1).clone()
    sampled = env.step(td)["next", "state"]
    successors, probs = world.transitions(world.initial_states(), actions.unsqueeze(0))
    match = (sampled.unsqueeze(1) == successors[0].unsqueeze(0)).all(-1)
    assert torch.all(match.sum(1) == 1)
    counts = match.sum(0).double()
    expected = n * probs[0]
    chi2 = float(((counts - expected) ** 2 / expected).sum())
    assert chi2 < 13.82
    assert counts.sum() == n


def test_transport_env_steps_follow_explicit_support() -> None:
    """Every sampled transition of random rollouts is one of the enumerated
    successors with positive probability."""
    world = small(n_humans=2)
    env = TransportEnv(world, batch_size=(32,), seed=3)
    rollout = env.rollout(5, break_when_any_done=False)
    states = rollout["state"].reshape(-1, world.state_dim)
    humans = rollout["humans", "action"].reshape(states.shape[0], -1)
    robots = rollout["robots", "action"].reshape(states.shape[0], -1)
    actions = torch.zeros(states.shape[0], len(world.agents), dtype=torch.long)
    actions[:, list(world.humans)] = humans
    actions[:, list(world.robots)] = robots
    nxt = rollout["next", "state"].reshape(-1, world.state_dim)
    successors, probs = world.transitions(states, actions)
    hit = ((successors == nxt.unsqueeze(1)).all(-1) & (probs > 0)).any(1)
    assert hit.all()
    assert isinstance(rollout, TensorDict)


def test_transport_env_large_world_runs() -> None:
    """The large world (for the learned solver) steps in batch without enumeration."""
    world = large()
    env = TransportEnv(world, batch_size=(8,), seed=1)
    check_env_specs(env, seed=0)
    rollout = env.rollout(world.horizon, break_when_any_done=False)
    assert rollout["next", "done"][:, -1].all()
    assert rollout["next", "state"][:, -1, 0].tolist() == [world.horizon] * 8
    occupancy = world.split(rollout["next", "state"].reshape(-1, world.state_dim))
    assert torch.all(occupancy["vehicle_node"] < world.network.num_nodes)


def test_transport_env_long_edges_stay_in_spec() -> None:
    """Remaining steps on an edge may exceed the horizon and the node count."""
    world = TransportWorld(ring_network(3, length=9.0), [0], [0], horizon=3)
    assert int(world.drive_steps.max()) == 9
    env = TransportEnv(world, batch_size=(4,))
    td = env.reset()
    td["humans", "action"] = torch.tensor([[0]] * 4)
    td["robots", "action"] = torch.tensor([[1]] * 4)
    state = env.step(td)["next", "state"]
    assert state[0].tolist() == [1, 0, -1, 0, -1, 0, 0, 8]
    assert env.observation_spec["state"].is_in(state)
