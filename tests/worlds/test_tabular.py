"""TabularWorld: compilation to tensors and validation errors that name the fault."""

from typing import Any

import pytest
import torch

from empo.worlds.base import WorldModel
from empo.worlds.tabular import TabularWorld


def small_world(**changes: Any) -> TabularWorld:
    """A 2-agent game with a commitment (the robot's action set shrinks)."""
    spec: dict[str, Any] = dict(
        transitions={
            "start": {
                ("left", "stay"): [(0.5, "L"), (0.25, "L"), (0.25, "M")],
                ("left", "lock"): [(1.0, "locked")],
                ("right", "stay"): [(1.0, "R")],
                ("right", "lock"): [(1.0, "locked")],
            },
            "locked": {("left", "stay"): [(1.0, "L")], ("right", "stay"): [(1, "R")]},
            "L": {},
            "orphan": {("left", "stay"): [(1.0, "R")]},
        },
        initial_state="start",
        agents=("human", "robot"),
        humans=("human",),
        robots=("robot",),
        goals={"human": {"left": ["L"], "right": (["R", "M"], 2.5)}},
        rest_action="stay",
    )
    spec.update(changes)
    return TabularWorld(**spec)


def test_compile_tensors() -> None:
    world = small_world().compile(dtype=torch.float32)
    world.validate()
    assert world.state_labels == ("start", "L", "M", "locked", "R")
    assert world.action_names == (("left", "right"), ("stay", "lock"))
    assert world.rest_action == (None, 0)
    assert world.terminal.tolist() == [False, True, True, False, True]
    assert world.height.tolist() == [2, 0, 0, 1, 0]
    assert world.probabilities.dtype == torch.float32
    assert world.successors.shape == (5, 4, 2)
    left_stay = world.joint_action_index(["left", "stay"])
    # the repeated successor "L" is merged: 0.5 + 0.25
    assert world.successors[0, left_stay].tolist() == [1, 2]
    assert world.probabilities[0, left_stay].tolist() == [0.75, 0.25]
    locked = world.index_of("locked")
    assert world.action_mask[locked].tolist() == [[True, True], [True, False]]
    lock = world.joint_action_index(["left", "lock"])
    assert world.probabilities[locked, lock].sum() == 0
    assert world.goal_membership[0].tolist() == [
        [False, True, False, False, False],
        [False, False, True, False, True],
    ]
    assert world.goal_weights.tolist() == [[1.0, 2.5]]
    assert world.goal_names == (("left", "right"),)


def test_action_names_are_first_seen_union_over_states() -> None:
    world = small_world(
        transitions={
            "start": {("b", "x"): [(1.0, "mid")]},
            "mid": {("a", "x"): [(1.0, "end")], ("b", "x"): [(1.0, "end")]},
        },
        goals={"human": {"end": ["end"]}},
    ).compile()
    assert world.action_names == (("b", "a"), ("x",))
    assert world.action_mask[0].tolist() == [[True, False], [True, False]]


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        (
            {"transitions": {"start": {("left",): [(1.0, "L")]}}},
            r"state 'start': joint action \('left',\) must be a tuple of 2",
        ),
        (
            {"transitions": {"start": {("left", "stay"): [(0.7, "L")]}}},
            r"state 'start', joint action \('left', 'stay'\): probabilities sum",
        ),
        (
            {"transitions": {"start": {("left", "stay"): [(1.5, "L"), (-0.5, "R")]}}},
            r"probability 1.5 of 'L' is not in \[0, 1\]",
        ),
        (
            {
                "transitions": {
                    "start": {
                        ("left", "stay"): [(1.0, "L")],
                        ("right", "lock"): [(1.0, "L")],
                    }
                }
            },
            r"state 'start': the table is not the full product.*\('left', 'lock'\)",
        ),
        (
            {"transitions": {"start": {}}, "goals": {"human": {"g": ["start"]}}},
            "agent 'human' has no action in any state",
        ),
        ({"humans": ("human", "ghost")}, "humans names unknown agent 'ghost'"),
        ({"robots": ()}, "agent 'robot' must be either a human or a robot"),
        ({"robots": ("robot", "human")}, "'human' must be either .* not both"),
        ({"initial_state": "nowhere"}, "initial_state 'nowhere' has no entry"),
        ({"goals": {"human": {}}}, "human 'human' has no goals"),
        (
            {"goals": {"human": {"g": ["Z"]}}},
            r"goal 'g' of human 'human' names unknown",
        ),
        ({"goals": {"human": {"g": (["L"], 0.0)}}}, "weight 0.0 must be positive"),
        ({"goals": {"human": {"g": ["L"]}, "robot": {}}}, "'robot', who is not"),
        ({"rest_action": {"nobody": "stay"}}, "rest_action names unknown agent"),
    ],
)
def test_validation_errors(changes: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        small_world(**changes)


def test_reachable_states_only_and_world_model_adapter() -> None:
    world = small_world()
    assert "orphan" in world.states
    assert "orphan" not in world.compile().state_labels
    model = world.as_world_model()
    assert isinstance(model, WorldModel)
    codes = torch.tensor([[world.states.index(s)] for s in ("start", "locked")])
    actions = torch.tensor([[0, 0], [1, 0]])
    successors, probabilities = model.transitions(codes, actions)
    assert successors.shape == (2, 2, 1)
    nxt = [[world.states[i] for i in row] for row in successors[:, :, 0].tolist()]
    assert nxt[0] == ["L", "M"]
    assert probabilities.tolist() == [[0.75, 0.25], [1.0, 0.0]]
    assert nxt[1][0] == "R"
    assert model.goal_membership(codes).shape == (2, 1, 2)
    assert model.is_terminal(torch.tensor([[world.states.index("L")]])).item()
