"""Dynamics of each MultiGrid object, with hand-computed successors and probabilities."""

import torch

from empo.worlds.multigrid.builtin import from_file
from empo.worlds.multigrid.dynamics import sample_successors
from empo.worlds.multigrid.world import MultiGridWorld

STILL, LEFT, RIGHT, FORWARD, PICKUP, DROP, TOGGLE = range(7)


def make(rows: list[str], **options: object) -> MultiGridWorld:
    options.setdefault("action_class", "ObjectActions")
    return from_file(map="\n".join(rows), **options)


def outcomes(world: MultiGridWorld, state: torch.Tensor, actions: list[int]) -> dict:
    """``{decoded-agents-tuple: probability}`` of the successors (duplicates summed)."""
    nxt, probs = world.transitions(state.unsqueeze(0), torch.tensor([actions]))
    result: dict = {}
    for row, p in zip(nxt[0], probs[0]):
        if p > 0:
            key = tuple(row.tolist())
            result[key] = result.get(key, 0.0) + float(p)
    return result


def only(
    world: MultiGridWorld, state: torch.Tensor, actions: list[int]
) -> torch.Tensor:
    result = outcomes(world, state, actions)
    assert len(result) == 1 and abs(next(iter(result.values())) - 1.0) < 1e-12
    return torch.tensor(next(iter(result)))


def agent(world: MultiGridWorld, state: torch.Tensor, i: int) -> dict:
    return world.decode(state)["agents"][i]


def test_turns_and_forward_into_walls() -> None:
    world = make(["We We We We", "We Ay .. We", "We We We We"])
    s0 = world.initial_states()[0]
    assert agent(world, only(world, s0, [LEFT]), 0)["dir"] == 3
    assert agent(world, only(world, s0, [RIGHT]), 0)["dir"] == 1
    s1 = only(world, s0, [FORWARD])
    assert agent(world, s1, 0)["pos"] == (2, 1) and int(s1[0]) == 1
    s2 = only(world, s1, [FORWARD])
    assert agent(world, s2, 0)["pos"] == (2, 1) and int(s2[0]) == 2
    assert torch.equal(only(world, s0, [STILL])[1:], s0[1:])


def test_conflict_for_a_cell_is_a_fair_coin() -> None:
    world = make(
        ["We We We We We", "We Ay .. Ae We", "We We We We We"],
        orientations=["e", "w"],
    )
    result = outcomes(world, world.initial_states()[0], [FORWARD, FORWARD])
    decoded = {
        (
            agent(world, torch.tensor(k), 0)["pos"],
            agent(world, torch.tensor(k), 1)["pos"],
        ): p
        for k, p in result.items()
    }
    assert decoded == {((2, 1), (3, 1)): 0.5, ((1, 1), (2, 1)): 0.5}


def test_no_move_into_a_cell_held_at_step_start() -> None:
    world = make(
        ["We We We We We", "We Ay Ae .. We", "We We We We We"],
        orientations=["e", "e"],
    )
    s = only(world, world.initial_states()[0], [FORWARD, FORWARD])
    assert agent(world, s, 0)["pos"] == (1, 1)
    assert agent(world, s, 1)["pos"] == (3, 1)


def test_keys_and_doors() -> None:
    world = make(
        ["We We We We We We We", "We Ay Kr .. Lr .. We", "We We We We We We We"]
    )
    s = world.initial_states()[0]
    s = only(world, s, [PICKUP])
    assert agent(world, s, 0)["carrying"] == 0 and world.decode(s)["keys"] == [None]
    s = only(world, s, [DROP])
    assert agent(world, s, 0)["carrying"] == -1 and world.decode(s)["keys"] == [(2, 1)]
    s = only(world, s, [PICKUP])
    s = only(world, only(world, s, [FORWARD]), [FORWARD])
    assert agent(world, s, 0)["pos"] == (3, 1)
    assert agent(world, only(world, s, [FORWARD]), 0)["pos"] == (3, 1)  # locked
    s = only(world, s, [TOGGLE])
    assert world.decode(s)["doors"] == ["open"]
    s = only(world, only(world, s, [FORWARD]), [FORWARD])
    assert agent(world, s, 0)["pos"] == (5, 1)


def test_wrong_key_and_closed_door() -> None:
    world = make(["We We We We We", "We Ay Kg Lr We", "We We We We We"])
    s = only(world, world.initial_states()[0], [PICKUP])
    s = only(world, s, [FORWARD])
    assert world.decode(only(world, s, [TOGGLE]))["doors"] == ["locked"]
    closed = make(["We We We We", "We Ay Cg We", "We We We We"])
    s = closed.initial_states()[0]
    s = only(closed, s, [TOGGLE])
    assert closed.decode(s)["doors"] == ["open"]
    assert closed.decode(only(closed, s, [TOGGLE]))["doors"] == ["closed"]


def test_blocks_push_in_lines_and_stop_at_walls() -> None:
    world = make(
        ["We We We We We We We", "We Ay Bl Bl .. .. We", "We We We We We We We"]
    )
    s = only(world, world.initial_states()[0], [FORWARD])
    assert agent(world, s, 0)["pos"] == (2, 1)
    assert world.decode(s)["blocks"] == [(3, 1), (4, 1)]
    s = only(world, s, [FORWARD])
    assert world.decode(s)["blocks"] == [(4, 1), (5, 1)]
    s2 = only(world, s, [FORWARD])
    assert agent(world, s2, 0)["pos"] == (3, 1)
    assert world.decode(s2)["blocks"] == [(4, 1), (5, 1)]


def test_rocks_only_for_allowed_agents() -> None:
    rows = [
        "We We We We We We",
        "We Ay Ro .. .. We",
        "We Ae Ro .. .. We",
        "We We We We We We",
    ]
    world = make(rows, can_push_rocks="e")
    s = only(world, world.initial_states()[0], [FORWARD, FORWARD])
    assert agent(world, s, 0)["pos"] == (1, 1)
    assert agent(world, s, 1)["pos"] == (2, 2)
    assert world.decode(s)["rocks"] == [(2, 1), (3, 2)]


def test_lava_terminates_and_blocks() -> None:
    world = make(["We We We We", "We Ay La We", "We We We We"])
    s = only(world, world.initial_states()[0], [FORWARD])
    assert agent(world, s, 0) == {
        "name": "human0",
        "pos": (2, 1),
        "dir": 0,
        "terminated": True,
        "carrying": -1,
        "paused": False,
        "forced": -1,
    }
    s2 = only(world, s, [LEFT])
    assert torch.equal(s2[1:], s[1:]) and int(s2[0]) == 2


def test_unsteady_ground_stumbles() -> None:
    world = make(
        ["We We We We", "We Un .. We", "We .. .. We", "We Ay .. We", "We We We We"],
        orientations=["n"],
        action_class="SmallActions",
        stumble_probability=0.5,
    )
    s = world.initial_states()[0].clone()
    s[1], s[2] = 1 * 4 + 1, 0  # human on the unsteady cell (1,1), facing east
    result = outcomes(world, s, [FORWARD])
    decoded = {
        (
            agent(world, torch.tensor(k), 0)["pos"],
            agent(world, torch.tensor(k), 0)["dir"],
        ): p
        for k, p in result.items()
    }
    assert decoded == {((2, 1), 0): 0.5, ((1, 1), 3): 0.25, ((1, 2), 1): 0.25}


def test_probabilities_sum_to_one_on_random_states() -> None:
    world = make(
        [
            "We We We We We We",
            "We Ay Bl Un Kr We",
            "We Ae .. Ro Lr We",
            "We Ay Un .. .. We",
            "We We We We We We",
        ],
        can_push_rocks="e",
    )
    gen = torch.Generator().manual_seed(3)
    states = world.initial_states().expand(512, -1).clone()
    for _ in range(5):
        actions = torch.randint(0, 7, (512, 3), generator=gen)
        nxt, probs = world.transitions(states, actions)
        assert nxt.shape == (512, world.max_outcomes, world.state_dim)
        torch.testing.assert_close(probs.sum(1), torch.ones(512, dtype=torch.float64))
        states = sample_successors(world.layout, states, actions, gen)


def test_sampling_matches_the_explicit_distribution() -> None:
    """Fixed-seed chi-square test on a state with a cell conflict and a stumble."""
    world = make(
        [
            "We We We We We",
            "We Ay .. Ae We",
            "We Un .. .. We",
            "We Ay .. .. We",
            "We We We We We",
        ],
        orientations=["e", "w", "e"],
        action_class="SmallActions",
    )
    s = world.initial_states()[0].clone()
    s[9] = 2 * 5 + 1  # human1 onto the unsteady cell (1,2), facing east
    actions = torch.tensor([[FORWARD, FORWARD, FORWARD]])
    nxt, probs = world.transitions(s.unsqueeze(0), actions)
    support = {tuple(r.tolist()): float(p) for r, p in zip(nxt[0], probs[0]) if p > 0}
    assert sorted(support.values()) == [0.125] * 4 + [0.25] * 2
    n = 20000
    draws = sample_successors(
        world.layout,
        s.expand(n, -1).clone(),
        actions.expand(n, -1),
        torch.Generator().manual_seed(0),
    )
    rows, numbers = torch.unique(draws, dim=0, return_counts=True)
    counts = {tuple(r.tolist()): int(c) for r, c in zip(rows, numbers)}
    assert set(counts) == set(support)
    chi2 = sum((counts[k] - n * p) ** 2 / (n * p) for k, p in support.items())
    assert chi2 < 20.52  # 99.9% quantile of chi-square with 5 degrees of freedom


def test_sequential_effects_within_a_step() -> None:
    """The human (agent 0, acting first) opens the door, then the robot drops its key
    into the doorway; the same state with the robot still keeps the key carried."""
    world = make(
        ["We We We We We", "We Ay Cr Ae We", "We Kr We We We"], orientations=["e", "w"]
    )
    s = world.initial_states()[0].clone()
    s[8], s[10] = 0, -1  # the robot carries the (only) key
    states = torch.stack([s, s, s])
    actions = torch.tensor([[TOGGLE, DROP], [TOGGLE, STILL], [STILL, DROP]])
    nxt, probs = world.transitions(states, actions)
    assert probs[:, 0].tolist() == [1.0, 1.0, 1.0]
    decoded = [world.decode(r) for r in nxt[:, 0]]
    assert [d["doors"] for d in decoded] == [["open"], ["open"], ["closed"]]
    assert [d["keys"] for d in decoded] == [[(2, 1)], [None], [None]]


def test_batched_equals_one_by_one() -> None:
    """Batches with repeated states (as the compiler sends them) give the same
    successors as single rows."""
    world = make(
        [
            "We We We We We We",
            "We Ay Kr Un Lr We",
            "We Ae Bl .. Kg We",
            "We We We We We We",
        ],
        orientations=["s", "n"],
    )
    gen = torch.Generator().manual_seed(5)
    states = world.initial_states()
    for _ in range(3):
        actions = torch.randint(0, 7, (states.shape[0], 2), generator=gen)
        states = torch.cat(
            [states, sample_successors(world.layout, states, actions, gen)]
        )
    states = torch.unique(states, dim=0).repeat_interleave(7, 0)
    actions = torch.randint(0, 7, (states.shape[0], 2), generator=gen)
    nxt, probs = world.transitions(states, actions)
    for i in range(0, states.shape[0], 5):
        one_nxt, one_probs = world.transitions(states[i : i + 1], actions[i : i + 1])
        assert torch.equal(one_probs[0], probs[i])
        assert torch.equal(one_nxt[0][one_probs[0] > 0], nxt[i][probs[i] > 0])
