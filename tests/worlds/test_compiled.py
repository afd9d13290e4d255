"""CompiledWorld and goal helpers: moves, levels, mixed radix, lookup, validation."""

from dataclasses import replace

import pytest
import torch

from empo.goals import (
    goal_avoiding_states,
    goal_one_hot,
    goal_probabilities,
    parse_goal,
    sample_goal_profiles,
)
from empo.worlds.compiled import compute_height, height_from_edges
from empo.worlds.tabular import TabularWorld


def chain_world() -> TabularWorld:
    """s0 -> s1 -> (s2 or s3) with a 2-action human and a 3-action robot in s0."""
    human, robot = ("h0", "h1"), ("r0", "r1", "r2")
    first = {(a, b): [(1.0, "s1")] for a in human for b in robot}
    return TabularWorld(
        transitions={
            "s0": first,
            "s1": {("go", "wait"): [(0.25, "s2"), (0.75, "s3")]},
        },
        initial_state="s0",
        agents=("human", "robot"),
        humans=("human",),
        robots=("robot",),
        goals={"human": {"two": ["s2"], "three": (["s3"], 3.0)}},
        rest_action={"robot": "wait"},
    )


def test_sizes_and_move() -> None:
    world = chain_world().compile()
    assert (world.num_states, world.num_humans, world.max_goals) == (4, 1, 2)
    assert world.action_counts == (3, 4)
    assert world.num_joint_actions == 12
    moved = world.to(dtype=torch.float32)
    assert moved.probabilities.dtype == torch.float32
    assert moved.goal_weights.dtype == torch.float32
    assert moved.successors.dtype == torch.int64
    assert moved.action_mask.dtype == torch.bool
    assert world.probabilities.dtype == torch.float64
    assert torch.equal(moved.height, world.height)


def test_levels_and_heights() -> None:
    world = chain_world().compile()
    assert world.height.tolist() == [2, 1, 0, 0]
    levels = world.levels()
    assert [lvl.tolist() for lvl in levels] == [[1], [0]]


def test_compute_height_diamond_and_cycles() -> None:
    # 0 -> {1, 2}, 1 -> 3, 2 -> 1, 3 terminal: heights 3, 1, 2, 0
    successors = torch.tensor([[[1, 2]], [[3, 1]], [[1, 2]], [[3, 3]]])
    probabilities = torch.tensor([[[0.5, 0.5]], [[1.0, 0.0]], [[1.0, 0.0]], [[0, 0.0]]])
    assert compute_height(successors, probabilities).tolist() == [3, 1, 2, 0]
    looping = probabilities.clone()
    looping[3, 0] = torch.tensor([0.5, 0.5])
    successors_loop = successors.clone()
    successors_loop[3, 0] = torch.tensor([3, 0])
    assert compute_height(successors_loop, looping) is None
    self_loop = probabilities.clone()
    self_loop[1, 0] = torch.tensor([0.5, 0.5])
    assert compute_height(successors, self_loop) is None


def test_height_from_repeated_edges() -> None:
    # the diamond above, edges listed in a scrambled order with repeats
    src = torch.tensor([2, 0, 1, 0, 2, 0, 1])
    dst = torch.tensor([1, 2, 3, 1, 1, 2, 3])
    assert height_from_edges(src, dst, 4).tolist() == [3, 1, 2, 0]
    assert height_from_edges(torch.tensor([0, 1]), torch.tensor([1, 0]), 3) is None
    empty = torch.zeros(0, dtype=torch.int64)
    assert height_from_edges(empty, empty, 2).tolist() == [0, 0]


def test_state_name() -> None:
    world = chain_world().compile()
    assert world.state_name(1) == "1 ('s1')"
    assert world.state_name(torch.tensor(0)) == world.state_name(0) == "0 ('s0')"
    unlabeled = replace(world, state_labels=None, state_table=torch.tensor([[5], [6]]))
    assert unlabeled.state_name(1) == "1 ([6])"
    assert replace(world, state_labels=None).state_name(2) == "2"


def test_levels_raise_for_cyclic_world() -> None:
    world = TabularWorld(
        transitions={
            "a": {("x",): [(0.5, "a"), (0.5, "b")]},
        },
        initial_state="a",
        agents=("human",),
        humans=("human",),
        robots=(),
        goals={"human": {"b": ["b"]}},
    ).compile()
    assert world.height is None
    with pytest.raises(ValueError, match="cyclic"):
        world.levels()


def test_mixed_radix_round_trip() -> None:
    world = chain_world().compile()
    split = world.split_joint_actions()
    assert split.shape == (12, 2)
    assert torch.equal(world.joint_action_index(split), torch.arange(12))
    assert world.joint_action_index(["h1", "r2"]) == 1 * 4 + 2
    assert world.joint_action_index([1, 3]) == 7
    assert split[7].tolist() == [1, 3]
    with pytest.raises(ValueError, match="no action 'fly'"):
        world.joint_action_index(["fly", "h0"])
    with pytest.raises(ValueError, match="outside"):
        world.joint_action_index([3, 0])


def test_joint_action_mask() -> None:
    world = chain_world().compile()
    mask = world.joint_action_mask()
    assert mask.shape == (4, 12)
    assert int(mask[0].sum()) == 6
    assert mask[1].nonzero().flatten().tolist() == [
        world.joint_action_index(["go", "wait"])
    ]
    assert not mask[2:].any()


def test_index_of_labels_and_rows() -> None:
    world = chain_world().compile()
    assert world.index_of("s3") == 3
    with pytest.raises(KeyError, match="no state is labelled"):
        world.index_of("nowhere")
    table = replace(world, state_table=torch.tensor([[0, 5], [1, 5], [2, 5], [3, 6]]))
    assert table.index_of(torch.tensor([3, 6])) == 3
    with pytest.raises(KeyError, match="no state has the encoding"):
        table.index_of(torch.tensor([9, 9]))


def test_validate_accepts_and_names_faults() -> None:
    world = chain_world().compile()
    world.validate()
    bad = world.probabilities.clone()
    bad[1, world.joint_action_index(["go", "wait"]), 0] = 0.5
    with pytest.raises(ValueError, match=r"state 1 \('s1'\).*sum to 1.25"):
        replace(world, probabilities=bad).validate()
    stray = world.probabilities.clone()
    stray[1, 0, 0] = 1.0
    with pytest.raises(ValueError, match="masked joint action"):
        replace(world, probabilities=stray).validate()
    with pytest.raises(ValueError, match="goal_membership has shape"):
        replace(world, goal_weights=torch.ones(1, 3)).validate()
    with pytest.raises(ValueError, match="height does not match"):
        replace(world, height=torch.tensor([1, 1, 0, 0])).validate()
    with pytest.raises(ValueError, match="successor id out of range"):
        big = world.successors.clone()
        big[0, 0, 0] = 17
        replace(world, successors=big).validate()


def test_goal_helpers() -> None:
    weights = torch.tensor([[1.0, 3.0, 0.0], [2.0, 2.0, 4.0]], dtype=torch.float64)
    assert goal_probabilities(weights).tolist() == [
        [0.25, 0.75, 0.0],
        [0.25, 0.25, 0.5],
    ]
    generator = torch.Generator().manual_seed(0)
    profiles = sample_goal_profiles(weights, 40_000, generator)
    assert profiles.shape == (40_000, 2)
    assert not bool((profiles[:, 0] == 2).any())
    frequency = torch.bincount(profiles[:, 1], minlength=3) / 40_000
    assert torch.allclose(frequency, torch.tensor([0.25, 0.25, 0.5]), atol=0.01)
    encoded = goal_one_hot(torch.tensor([[1, 2]]), 3, torch.float32)
    assert encoded.tolist() == [[[0, 1, 0], [0, 0, 1]]]
    assert parse_goal((["x", "y"], 2), "h", "g") == (frozenset({"x", "y"}), 2.0)
    assert parse_goal(("x", "y"), "h", "g") == (frozenset({"x", "y"}), 1.0)
    with pytest.raises(ValueError, match="goal 'g' of human 'h'.*list, tuple or set"):
        parse_goal("xy", "h", "g")


def test_goal_avoiding_states() -> None:
    # s0 -> s1 (goal) or s2 (no goal, terminal); s1 -> s3 (terminal, no goal)
    world = TabularWorld(
        transitions={
            "s0": {("a",): [(1.0, "s1")], ("b",): [(1.0, "s2")]},
            "s1": {("a",): [(1.0, "s3")]},
        },
        initial_state="s0",
        agents=("human",),
        humans=("human",),
        robots=(),
        goals={"human": {"one": ["s1"]}},
    ).compile()
    labels = world.state_labels
    avoiding = goal_avoiding_states(world)[0].tolist()
    assert dict(zip(labels, avoiding)) == {
        "s0": True,
        "s1": True,
        "s2": True,
        "s3": True,
    }
    covered = replace(
        world,
        goal_membership=world.goal_membership
        | torch.tensor([[[False, False, True, False]]]),
    )
    # now s0 -> s2 enters a goal, s0 -> s1 too: s0 is covered, s1 -> s3 is not
    assert labels == ("s0", "s1", "s2", "s3")
    assert goal_avoiding_states(covered)[0].tolist() == [False, True, True, True]
