"""Structure of the paradigm worlds (sizes, action sets, goals) and their registry."""

import pytest
import torch

from empo.worlds import paradigms
from empo.worlds.registry import WorldName, build_world, compile_any


@pytest.mark.parametrize(
    "name",
    [
        WorldName.COMMITMENT,
        WorldName.MENU_SIZE,
        WorldName.CONFIRMATION,
        WorldName.RESOURCE_SPLIT,
        WorldName.PAUSE_DESTROY,
    ],
)
def test_registered_and_valid(name: WorldName) -> None:
    world = compile_any(build_world(name))
    world.validate()
    assert world.initial_state == 0
    assert world.agents[world.robots[0]] == "robot"


def test_commitment_structure() -> None:
    world = paradigms.commitment().compile()
    assert world.height.tolist().count(3) == 1
    assert set(world.height.tolist()) == {0, 1, 2, 3}
    start_moves = [
        name
        for name, ok in zip(world.action_names[0], world.action_mask[0, 0])
        if bool(ok)
    ]
    assert start_moves == ["A", "B", "commit 1A 2B", "commit 1B 2A", "pass"]
    committed = world.index_of((2, "commit 1B 2A", "button 1", False, False))
    allowed = world.action_mask[committed, 0].nonzero().flatten().tolist()
    assert [world.action_names[0][a] for a in allowed] == ["B"]
    free = world.index_of((2, "commit 1B 2A", "pass", False, False))
    assert int(world.action_mask[free, 0].sum()) == 3
    no_direct = paradigms.commitment(direct_tasks=False).compile()
    assert int(no_direct.action_mask[0, 0].sum()) == 3


@pytest.mark.parametrize("max_k", [1, 3, 6])
def test_menu_size_structure(max_k: int) -> None:
    world = paradigms.menu_size(max_k=max_k).compile()
    assert world.num_states == 1 + 2 * max_k
    for k in range(1, max_k + 1):
        menu = world.index_of(("menu", k))
        assert int(world.action_mask[menu, 1].sum()) == k
    assert world.goal_membership.sum().item() == max_k


def test_confirmation_structure() -> None:
    cyclic = paradigms.confirmation(max_confirmations=2).compile()
    assert cyclic.height is None
    # start, 3 order states, confirmations 2 tasks x (1 + 2), 2 done states
    assert cyclic.num_states == 1 + 3 + 6 + 2
    unrolled = paradigms.confirmation(max_confirmations=2, max_restarts=4).compile()
    assert unrolled.height is not None
    assert int(unrolled.height.max()) == 1 + 5 * 3
    assert ("failed",) in unrolled.state_labels


def test_confirmation_slips_and_absorbing() -> None:
    world = paradigms.confirmation(max_confirmations=1, slip=0.25, absorbing=True)
    compiled = world.compile()
    assert compiled.height is None
    order = compiled.index_of(("order", 1, 0))
    joint = compiled.joint_action_index(["wait", "A"])
    outcomes = {
        compiled.state_labels[int(s)]: float(p)
        for s, p in zip(
            compiled.successors[order, joint], compiled.probabilities[order, joint]
        )
    }
    assert outcomes == {
        ("confirm", 1, 0, "A", 0): 0.75,
        ("confirm", 1, 0, "B", 0): 0.25,
    }
    done = compiled.index_of(("done", "B"))
    assert not compiled.terminal[done]
    assert (
        compiled.successors[done, compiled.joint_action_index(["wait", "wait"]), 0]
        == done
    )


@pytest.mark.parametrize("units", [0, 1, 3])
def test_resource_split_structure(units: int) -> None:
    world = paradigms.resource_split(units=units).compile()
    assert world.num_states == 1 + (units + 1) + (units + 1) * 2**units
    assert world.goal_weights.shape == (2, 2**units)
    # each end state lies in exactly one goal of each human
    ends = world.terminal
    assert torch.equal(
        world.goal_membership[:, :, ends].sum(1),
        torch.ones(2, int(ends.sum()), dtype=torch.int64),
    )


def test_pause_destroy_structure() -> None:
    world = paradigms.pause_destroy(tasks=3, tasks_alone=1).compile()
    assert world.goal_names == (("task 1", "task 2", "task 3", "robot off"),)
    paused = world.index_of(("act", "paused"))
    assert int(world.action_mask[paused, 1].sum()) == 1 + 3 + 1
    destroyed = world.index_of(("act", "destroyed"))
    assert int(world.action_mask[destroyed, 1].sum()) == 2


@pytest.mark.parametrize(
    ("builder", "options", "message"),
    [
        (paradigms.menu_size, {"max_k": 0}, "max_k must be an integer >= 1"),
        (paradigms.confirmation, {"max_confirmations": -1}, "max_confirmations"),
        (paradigms.confirmation, {"max_restarts": 1.5}, "max_restarts"),
        (paradigms.confirmation, {"slip": 1.5}, r"slip must be in \[0, 1\]"),
        (paradigms.confirmation, {"absorbing": 1}, "absorbing must be a bool"),
        (paradigms.resource_split, {"units": -2}, "units must be"),
        (paradigms.pause_destroy, {"tasks_alone": 4}, "tasks_alone <= tasks"),
    ],
)
def test_bad_options(builder, options: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        builder(**options)
