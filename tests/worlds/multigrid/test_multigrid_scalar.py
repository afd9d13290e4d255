"""The Python single-row step equals the tensor step, row by row."""

import pytest
import torch

from empo.worlds.multigrid.builtin import from_file
from empo.worlds.multigrid.dynamics import SCALAR_BATCH, sample_successors
from empo.worlds.multigrid.scalar import sample_one
from empo.worlds.multigrid.world import MultiGridWorld

FORWARD = 3

MAPS = {
    "mixed": (
        [
            "We We We We We We",
            "We Ay Bl Un Kr We",
            "We Ae Ro .. Lr We",
            "We Ay Un La Kg We",
            "We We We We We We",
        ],
        {"can_push_rocks": "e"},
    ),
    "keys_doors": (
        [
            "We We We We We We We",
            "We Ay Kg .. Lg .. We",
            "We .. Ae Kg We .. We",
            "We Kr .. Ay Cr .. We",
            "We .. Or .. We Gg We",
            "We We We We We We We",
        ],
        {},
    ),
    "push_chain": (
        [
            "We We We We We We We",
            "We Ae Bl Bl .. .. We",
            "We .. Ro .. Ay .. We",
            "We Ay .. Ro Bl Ae We",
            "We We We We We We We",
        ],
        {"can_push_rocks": "e", "orientations": ["e", "w", "n", "w"]},
    ),
    "unsteady": (
        [
            "We We We We We We",
            "We Ay Un Un Un We",
            "We Un Un Bl Ae We",
            "We Un Ay Un La We",
            "We Un Un Un Un We",
            "We We We We We We",
        ],
        {"stumble_probability": 0.3},
    ),
}


def walk_states(world: MultiGridWorld, batch: int, steps: int, seed: int):
    """States of seeded random walks (tensor path) with their next joint actions."""
    gen = torch.Generator().manual_seed(seed)
    n_agents, n_actions = len(world.agents), len(world.action_names[0])
    states = world.initial_states().expand(batch, -1).clone()
    visited = []
    for _ in range(steps):
        actions = torch.randint(0, n_actions, (batch, n_agents), generator=gen)
        ahead = torch.rand(batch, n_agents, generator=gen) < 0.4
        actions = torch.where(ahead, FORWARD, actions)
        visited.append(states)
        states = sample_successors(world.layout, states, actions, gen)
    states = torch.cat(visited)
    actions = torch.randint(0, n_actions, (states.shape[0], n_agents), generator=gen)
    ahead = torch.rand(actions.shape, generator=gen) < 0.4
    return states, torch.where(ahead, FORWARD, actions)


@pytest.mark.parametrize("name", sorted(MAPS))
def test_python_step_equals_tensor_step(name: str) -> None:
    rows, options = MAPS[name]
    world = from_file(map="\n".join(rows), action_class="ObjectActions", **options)
    lay = world.layout
    states, actions = walk_states(world, batch=256, steps=12, seed=1)
    expected = sample_successors(lay, states, actions, torch.Generator().manual_seed(7))
    # the tensor path drew exactly these uniform numbers (one per row and agent)
    uniforms = torch.rand(
        states.shape[0],
        lay.n_agents,
        generator=torch.Generator().manual_seed(7),
        dtype=torch.float64,
    )
    small = sample_successors(
        lay, states[:5], actions[:5], torch.Generator().manual_seed(7)
    )
    assert torch.equal(small, expected[:5])  # a small batch takes the Python path
    for b in range(states.shape[0]):
        got = sample_one(
            lay, states[b].tolist(), actions[b].tolist(), uniforms[b].tolist()
        )
        assert got == expected[b].tolist(), (states[b].tolist(), actions[b].tolist())


def test_single_row_sampling_follows_the_distribution() -> None:
    """A batch of one (Python path) gives the first row of a batch too large for the
    Python path (tensor path) for the same generator state, and lies in the support
    of ``transitions``."""
    rows, options = MAPS["unsteady"]
    world = from_file(map="\n".join(rows), action_class="ObjectActions", **options)
    lay = world.layout
    states, actions = walk_states(world, batch=8, steps=4, seed=3)
    nxt, probs = world.transitions(states, actions)
    for b in range(states.shape[0]):
        row, act = states[b : b + 1], actions[b : b + 1]
        one = sample_successors(lay, row, act, torch.Generator().manual_seed(b))
        many = sample_successors(
            lay,
            row.expand(SCALAR_BATCH + 1, -1),
            act.expand(SCALAR_BATCH + 1, -1),
            torch.Generator().manual_seed(b),
        )
        assert torch.equal(one[0], many[0])
        support = {tuple(r.tolist()) for r, p in zip(nxt[b], probs[b]) if p > 0}
        assert tuple(one[0].tolist()) in support
