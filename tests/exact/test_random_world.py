"""The random world generator and the unrolling used by the solver tests."""

import pytest
import torch

from empo.worlds.compiled import compute_height
from empo.worlds.random_world import random_layered_world, unroll_world


@pytest.mark.parametrize(
    "options",
    [
        dict(roles="hr"),
        dict(roles="hhr", num_actions=[2, 3, 4], num_goals=[3, 5], rest_action=True),
        dict(roles="rhr", max_outcomes=3, random_weights=True, window=4),
        dict(roles="hr", cyclic=True),
    ],
)
def test_random_worlds_are_valid(options: dict) -> None:
    world = random_layered_world(300, num_layers=6, seed=3, **options)
    world.validate()
    reference = compute_height(world.successors, world.probabilities)
    if options.get("cyclic"):
        assert world.height is None and reference is None
    else:
        assert torch.equal(world.height, reference)
    assert not world.terminal[world.initial_state]
    covered = world.goal_membership.any(1)
    assert covered.all()  # every state lies in some goal of every human


def test_random_world_is_reproducible_and_respects_the_window() -> None:
    a = random_layered_world(400, num_layers=4, seed=11, window=3)
    b = random_layered_world(400, num_layers=4, seed=11, window=3)
    assert torch.equal(a.successors, b.successors)
    assert torch.equal(a.probabilities, b.probabilities)
    live = a.probabilities > 0
    jump = (a.successors - torch.arange(400)[:, None, None])[live]
    assert jump.min() > 0 and jump.max() < 400 // 4 * 2 + 10


def test_unroll_world_structure() -> None:
    world = random_layered_world(10, num_layers=3, cyclic=True, seed=2)
    unrolled = unroll_world(world, 4)
    unrolled.validate()
    assert unrolled.num_states == 50
    assert unrolled.terminal[40:].all()
    assert int(unrolled.height.max()) == 4
    assert unrolled.state_labels[13] == (3, 1)
    live = unrolled.probabilities[13] > 0
    assert (unrolled.successors[13][live] >= 20).all()
    with pytest.raises(ValueError, match="horizon"):
        unroll_world(world, 0)


def test_generator_rejects_bad_options() -> None:
    with pytest.raises(ValueError, match="num_layers"):
        random_layered_world(5, num_layers=9)
    with pytest.raises(ValueError, match="roles"):
        random_layered_world(50, roles="rr")
    with pytest.raises(ValueError, match="num_actions"):
        random_layered_world(50, roles="hr", num_actions=[2])
