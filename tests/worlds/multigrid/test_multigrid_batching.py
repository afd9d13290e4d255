"""Batch-independence of MultiGrid transitions and the research code's sequential
effects within a step (differential-test findings M1 and M2).

The expected successors of the concrete cases are those of the research code's
``transition_probabilities`` (mensch72/empo, ``vendor/multigrid``), as reported by
``scripts/diff_multigrid.py`` for the same states.
"""

import itertools
from typing import Any

import pytest
import torch

from empo.worlds.multigrid.builtin import from_file, key_door
from empo.worlds.multigrid.dynamics import sample_successors
from empo.worlds.multigrid.enumeration import _enumerate_chunk
from empo.worlds.multigrid.objects import DoorState
from empo.worlds.multigrid.world import MultiGridWorld

STILL, LEFT, RIGHT, FORWARD, PICKUP, DROP, TOGGLE = range(7)
E, S, W, N = range(4)

# Interior rows of small walled maps ("/"-separated), orientations and horizon, as
# the synthetic worlds of scripts/diff_multigrid.py.
MAPS: dict[str, tuple[str, list[str], int]] = {
    "key_race": ("Ay Kr Ae ../.. Ay .. ..", ["e", "w", "n"], 6),
    "tiny_mix": (".. Kr .. Bl/Kg Ay Ae ../We Or We We/We .. We We", ["n", "w"], 6),
    "tiny_mix3": (
        ".. Kr Ay Bl/Kg Ay Ae ../We Cr We We/We .. We We",
        ["w", "n", "w"],
        6,
    ),
    "keys_doors": (
        "Ay Kg .. Lg ../.. Ae Kg We ../Kr .. Ay Cr ../.. Op .. We Gg",
        ["e", "w", "n"],
        10,
    ),
}


def walled(name: str) -> MultiGridWorld:
    interior, orientations, max_steps = MAPS[name]
    rows = [r.strip() for r in interior.split("/")]
    wall = " ".join(["We"] * (len(rows[0].split()) + 2))
    grid = [wall] + [f"We {r} We" for r in rows] + [wall]
    return from_file(
        map="\n".join(grid),
        orientations=orientations,
        max_steps=max_steps,
        action_class="ObjectActions",
    )


def encode(world: MultiGridWorld, common: dict[str, Any]) -> torch.Tensor:
    """State row of ``common`` (agents ``[x, y, dir, dead, carried colour]``, door
    states by door index, floor keys ``[x, y, colour]``; keys with distinct colours;
    blocks stay where the map puts them)."""
    spec, lay, w = world.spec, world.layout, world.spec.width
    key_of = {color: k for k, (_, _, color) in enumerate(spec.keys)}
    row = world.initial_states()[0].clone()
    row[0] = common["t"]
    for i, (x, y, d, dead, color) in enumerate(common["agents"]):
        carry = -1 if color is None else key_of[color]
        row[1 + 4 * i : 5 + 4 * i] = torch.tensor([y * w + x, d, dead, carry])
    for k, state in enumerate(common.get("doors", [])):
        row[lay.door_col + k] = int(DoorState[state.upper()])
    row[lay.key_col : lay.push_col] = -1
    for x, y, color in common.get("keys", []):
        row[lay.key_col + key_of[color]] = y * w + x
    return row


def only_successor(world: MultiGridWorld, row: torch.Tensor, actions: list[int]):
    nxt, probs = world.transitions(row.unsqueeze(0), torch.tensor([actions]))
    assert probs[0, 0] == 1.0 and bool((probs[0, 1:] == 0).all())
    return nxt[0, 0]


CASES = [
    (  # drop (agent 0) then pickup (agent 1) of the same key
        "key_door",
        {"agents": [[3, 3, E, 0, "red"], [4, 2, S, 0, None]], "t": 8},
        [DROP, PICKUP],
        {"agents": [[3, 3, E, 0, None], [4, 2, S, 0, "red"]], "t": 9},
    ),
    (  # the same with a third, still agent
        "key_race",
        {
            "agents": [[1, 1, E, 0, "red"], [3, 1, W, 0, None], [2, 2, E, 0, None]],
            "t": 1,
        },
        [DROP, PICKUP, STILL],
        {
            "agents": [[1, 1, E, 0, None], [3, 1, W, 0, "red"], [2, 2, E, 0, None]],
            "t": 2,
        },
    ),
    (  # pickup (agent 0) frees the cell, drop (agent 1) lands there
        "tiny_mix3",
        {
            "agents": [[3, 1, W, 0, None], [2, 2, N, 0, "green"], [3, 2, W, 0, None]],
            "doors": ["closed"],
            "keys": [[2, 1, "red"]],
            "t": 3,
        },
        [PICKUP, DROP, FORWARD],
        {
            "agents": [[3, 1, W, 0, "red"], [2, 2, N, 0, None], [3, 2, W, 0, None]],
            "doors": ["closed"],
            "keys": [[2, 1, "green"]],
            "t": 4,
        },
    ),
    (  # toggle (agent 0) opens the door, drop (agent 1) into the doorway
        "tiny_mix",
        {
            "agents": [[2, 2, S, 0, None], [2, 4, N, 0, "red"]],
            "doors": ["closed"],
            "keys": [[1, 2, "green"]],
            "t": 1,
        },
        [TOGGLE, DROP],
        {
            "agents": [[2, 2, S, 0, None], [2, 4, N, 0, None]],
            "doors": ["open"],
            "keys": [[1, 2, "green"], [2, 3, "red"]],
            "t": 2,
        },
    ),
    (  # unlock (agent 0, matching key) then toggle (agent 1): locked -> open -> closed
        "tiny_mix",
        {
            "agents": [[2, 2, S, 0, "red"], [2, 4, N, 0, None]],
            "doors": ["locked"],
            "keys": [[1, 2, "green"]],
            "t": 1,
        },
        [TOGGLE, TOGGLE],
        {
            "agents": [[2, 2, S, 0, "red"], [2, 4, N, 0, None]],
            "doors": ["closed"],
            "keys": [[1, 2, "green"]],
            "t": 2,
        },
    ),
]


def build(name: str) -> MultiGridWorld:
    return key_door() if name == "key_door" else walled(name)


def all_joint_actions(world: MultiGridWorld) -> torch.Tensor:
    n_actions = len(world.action_names[0])
    return torch.tensor(
        list(itertools.product(range(n_actions), repeat=len(world.agents)))
    )


@pytest.mark.parametrize("name, start, actions, expected", CASES)
def test_sequential_effects_match_the_research_code(
    name: str, start: dict, actions: list[int], expected: dict
) -> None:
    """Each case alone, and inside the batch of all joint actions of its state (as
    the compiler sends it), gives the research code's single successor."""
    world = build(name)
    if name == "key_door":
        start = {**start, "doors": ["locked"]}
        expected = {**expected, "doors": ["locked"]}
    row, want = encode(world, start), encode(world, expected)
    assert torch.equal(only_successor(world, row, actions), want)
    joint = all_joint_actions(world)
    nxt, probs = world.transitions(row.expand(joint.shape[0], -1), joint)
    i = int((joint == torch.tensor(actions)).all(dim=1).nonzero())
    assert probs[i, 0] == 1.0 and torch.equal(nxt[i, 0], want)


def case_states(world: MultiGridWorld, name: str) -> list[torch.Tensor]:
    """The start states of the :data:`CASES` of world ``name``, as ``[1, dim]``."""
    return [
        encode(world, {**start, "doors": start.get("doors", ["locked"])}).unsqueeze(0)
        for case_name, start, _, _ in CASES
        if case_name == name
    ]


def probe_states(world: MultiGridWorld, extra: list[torch.Tensor]) -> torch.Tensor:
    """The initial state, ``extra`` rows and, with 2 agents (49 joint actions), two
    seeded random-walk states (3 agents have 343 joint actions per state: fewer
    states keep the row-by-row comparison fast)."""
    gen = torch.Generator().manual_seed(11)
    states = world.initial_states()
    walk = states.expand(4, -1).clone()
    n_actions = len(world.action_names[0])
    for _ in range(3):
        actions = torch.randint(0, n_actions, (4, len(world.agents)), generator=gen)
        walk = sample_successors(world.layout, walk, actions, gen)
    walks = 2 if len(world.agents) < 3 else 0
    return torch.unique(torch.cat([states, walk[:walks], *extra]), dim=0)


@pytest.mark.parametrize("name", ["key_door", "key_race", "tiny_mix", "tiny_mix3"])
def test_all_joint_actions_in_one_batch_equal_rows_one_at_a_time(name: str) -> None:
    """For every joint action of several states, transitions computed in one batch
    of all joint actions equal those computed one row at a time."""
    world = build(name)
    joint = all_joint_actions(world)
    for row in probe_states(world, case_states(world, name)):
        states = row.expand(joint.shape[0], -1)
        nxt, probs = world.transitions(states, joint)
        for i in range(joint.shape[0]):
            one_nxt, one_probs = world.transitions(states[i : i + 1], joint[i : i + 1])
            assert torch.equal(one_probs[0], probs[i]), (row.tolist(), joint[i])
            keep = one_probs[0] > 0
            assert torch.equal(one_nxt[0][keep], nxt[i][keep]), (row.tolist(), joint[i])


def distribution(successors: torch.Tensor, probs: torch.Tensor) -> dict:
    """``{successor row: summed probability}`` of one pair."""
    result: dict = {}
    for row, p in zip(successors.tolist(), probs.tolist()):
        if p > 0:
            result[tuple(row)] = result.get(tuple(row), 0.0) + p
    return result


@pytest.mark.parametrize("name", ["key_door", "key_race", "tiny_mix", "tiny_mix3"])
def test_factored_enumeration_equals_plain_rules(name: str) -> None:
    """Replacing no-op actions by ``still`` and factoring out turns (enumeration.py)
    gives, for every joint action, the same distribution as executing the rules on
    the actions as given."""
    world = build(name)
    joint = all_joint_actions(world)
    for row in probe_states(world, case_states(world, name)):
        states = row.expand(joint.shape[0], -1)
        nxt, probs = world.transitions(states, joint)
        plain_nxt, plain_probs = _enumerate_chunk(world.layout, states, joint)
        for i in range(joint.shape[0]):
            assert distribution(nxt[i], probs[i]) == distribution(
                plain_nxt[i], plain_probs[i]
            ), (row.tolist(), joint[i].tolist())


def test_stumble_probabilities_are_exact() -> None:
    """Stumble probability 0.3 gives exactly 0.7 / 0.15 / 0.15 (float64, as the
    research code's Python floats), not float32-rounded values."""
    world = from_file(
        map="We We We We\nWe Un .. We\nWe .. Ay We\nWe We We We",
        action_class="SmallActions",
        stumble_probability=0.3,
    )
    s = world.initial_states()[0].clone()
    s[1], s[2] = world.spec.width + 1, E  # onto the unsteady cell (1,1), facing east
    nxt, probs = world.transitions(s.unsqueeze(0), torch.tensor([[FORWARD]]))
    assert probs.dtype == torch.float64
    got = sorted(float(p) for p in probs[0] if p > 0)
    assert got == [0.15, 0.15, 0.7]


def test_empty_batches() -> None:
    world = key_door()
    states = world.initial_states()[:0]
    actions = torch.zeros(0, 2, dtype=torch.long)
    nxt, probs = world.transitions(states, actions)
    assert nxt.shape == (0, world.max_outcomes, world.state_dim)
    assert probs.shape == (0, world.max_outcomes)
    assert world.sample(states, actions).shape == (0, world.state_dim)
