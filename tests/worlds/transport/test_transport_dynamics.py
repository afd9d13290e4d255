"""Explicit transitions of the transport world, action by action, with numbers.

The small built-in world: nodes home(0), market(1), station(2), beach(3); edges
0: home->market (drive and walk), 1: market->station, 2: station->beach,
3: beach->home (drive only), 4: market->home (walk only); walking an edge takes two
steps; a loaded vehicle may not wait. Out-edges of market: [4, 1]. Human actions:
wait, walk_0, walk_1, board_0, alight; vehicle: wait, drive_0, drive_1.
State: [t, h_node, h_edge, h_remaining, h_vehicle, v_node, v_edge, v_remaining].
"""

import pytest
import torch

from empo.worlds.transport.builtin import large, small
from empo.worlds.transport.dynamics import TransportWorld, _max_lottery_outcomes
from empo.worlds.transport.network import grid_network, ring_network

WAIT, WALK0, WALK1, BOARD, ALIGHT = range(5)
DRIVE0, DRIVE1 = 1, 2


def step(world: TransportWorld, state: list[int], actions: list[int]):
    """Successor rows and probabilities (positive ones only) of one pair."""
    nxt, probs = world.transitions(torch.tensor([state]), torch.tensor([actions]))
    keep = probs[0] > 0
    return nxt[0, keep].tolist(), probs[0, keep].tolist()


def test_transport_initial_state_and_mask() -> None:
    world = small()
    assert world.agents == ("human_0", "vehicle_0")
    assert world.action_names[0] == ("wait", "walk_0", "walk_1", "board_0", "alight")
    assert world.action_names[1] == ("wait", "drive_0", "drive_1")
    s0 = world.initial_states()
    assert s0.tolist() == [[0, 0, -1, 0, -1, 0, -1, 0]]
    mask = world.action_mask(s0)[0].int().tolist()
    assert mask == [[1, 1, 0, 1, 0], [1, 1, 0, 0, 0]]
    assert world.drive_steps.tolist() == [1, 1, 1, 1, 0]
    assert world.walk_steps.tolist() == [2, 0, 0, 0, 2]
    assert world.network.out_edges.tolist() == [[0, -1], [4, 1], [2, -1], [3, -1]]


def test_transport_walking_takes_two_steps_and_blocks_other_actions() -> None:
    world = small()
    rows, probs = step(world, [0, 0, -1, 0, -1, 0, -1, 0], [WALK0, WAIT])
    assert rows == [[1, 0, 0, 1, -1, 0, -1, 0]] and probs == [1.0]
    in_transit = torch.tensor(rows)
    assert world.action_mask(in_transit)[0, 0].int().tolist() == [1, 0, 0, 0, 0]
    assert not world.goal_membership(in_transit).any()
    rows, probs = step(world, rows[0], [WAIT, DRIVE0])
    assert rows == [[2, 1, -1, 0, -1, 1, -1, 0]] and probs == [1.0]
    assert world.goal_membership(torch.tensor(rows))[0, 0].tolist() == [
        False,
        True,
        False,
        False,
    ]


def test_transport_board_drive_carry_and_alight() -> None:
    world = small()
    rows, _ = step(world, [0, 0, -1, 0, -1, 0, -1, 0], [BOARD, DRIVE0])
    assert rows == [[1, 1, -1, 0, 0, 1, -1, 0]]
    at_market = torch.tensor(rows)
    # aboard: cannot walk or board, may alight; the loaded vehicle must drive on,
    # and the footpath back home (drive_0) is not a road
    assert world.action_mask(at_market)[0].int().tolist() == [
        [1, 0, 0, 0, 1],
        [0, 0, 1, 0, 0],
    ]
    rows, _ = step(world, rows[0], [WAIT, DRIVE1])
    assert rows == [[2, 2, -1, 0, 0, 2, -1, 0]]
    # alighting happens before the vehicle leaves
    rows, _ = step(world, rows[0], [ALIGHT, DRIVE0])
    assert rows == [[3, 2, -1, 0, -1, 3, -1, 0]]
    # alone at the station, the human can only wait: no footpath leaves it
    assert world.action_mask(torch.tensor(rows))[0, 0].int().tolist() == [1, 0, 0, 0, 0]
    # a loaded vehicle told to wait takes its first allowed action instead
    loaded = [1, 0, -1, 0, 0, 0, -1, 0]
    assert step(world, loaded, [WAIT, WAIT]) == step(world, loaded, [WAIT, DRIVE0])
    assert step(world, loaded, [WAIT, WAIT])[0] == [[2, 1, -1, 0, 0, 1, -1, 0]]
    # with idling allowed it stays
    idle = small(loaded_vehicles_wait=True)
    assert step(idle, loaded, [WAIT, WAIT])[0] == [[2, 0, -1, 0, 0, 0, -1, 0]]


def test_transport_boarding_a_leaving_vehicle_in_transit_edges() -> None:
    world = small(vehicle_speed=0.5)
    assert world.drive_steps.tolist() == [2, 2, 2, 2, 0]
    rows, _ = step(world, [0, 0, -1, 0, -1, 0, -1, 0], [BOARD, DRIVE0])
    assert rows == [[1, 0, 0, 1, 0, 0, 0, 1]]
    state = torch.tensor(rows)
    assert world.action_mask(state)[0].int().tolist() == [
        [1, 0, 0, 0, 0],
        [1, 0, 0, 0, 0],
    ]
    rows, _ = step(world, rows[0], [WAIT, WAIT])
    assert rows == [[2, 1, -1, 0, 0, 1, -1, 0]]


def test_transport_disallowed_action_is_wait_and_bad_index_raises() -> None:
    world = small()
    s0 = [0, 0, -1, 0, -1, 0, -1, 0]
    assert step(world, s0, [ALIGHT, DRIVE1]) == step(world, s0, [WAIT, WAIT])
    assert step(world, s0, [WAIT, WAIT])[0] == [[1, 0, -1, 0, -1, 0, -1, 0]]
    with pytest.raises(ValueError, match="action 3 of agent vehicle_0"):
        world.transitions(torch.tensor([s0]), torch.tensor([[WAIT, 3]]))


def test_transport_terminal_state() -> None:
    world = small(horizon=2)
    state = torch.tensor([[2, 1, -1, 0, -1, 0, -1, 0]])
    assert world.is_terminal(state).tolist() == [True]
    assert world.action_mask(state)[0].int().tolist() == [
        [1, 0, 0, 0, 0],
        [1, 0, 0, 0, 0],
    ]
    rows, probs = step(world, state[0].tolist(), [WALK0, DRIVE0])
    assert rows == [state[0].tolist()] and probs == [1.0]


def test_transport_boarding_lottery_capacity_one() -> None:
    world = small(n_humans=2)
    assert world.max_outcomes == 2
    s0 = world.initial_states()[0].tolist()
    rows, probs = step(world, s0, [BOARD, BOARD, DRIVE0])
    assert probs == [0.5, 0.5]
    assert sorted(rows) == sorted(
        [
            [1, 1, -1, 0, 0, 0, -1, 0, -1, 1, -1, 0],
            [1, 0, -1, 0, -1, 1, -1, 0, 0, 1, -1, 0],
        ]
    )
    # a passenger alighting frees the seat for the other human in the same step
    aboard = [0, 0, -1, 0, 0, 0, -1, 0, -1, 0, -1, 0]
    rows, probs = step(world, aboard, [ALIGHT, BOARD, DRIVE0])
    assert rows == [[1, 0, -1, 0, -1, 1, -1, 0, 0, 1, -1, 0]] and probs == [1.0]
    # with two seats both get in
    rows, probs = step(small(n_humans=2, capacity=2), s0, [BOARD, BOARD, WAIT])
    assert rows == [[1, 0, -1, 0, 0, 0, -1, 0, 0, 0, -1, 0]] and probs == [1.0]


def test_transport_lottery_three_humans_two_seats() -> None:
    world = TransportWorld(ring_network(3), [0], [0, 0, 0], capacity=2, horizon=3)
    assert world.max_outcomes == 3
    board = 1 + world.network.max_out_degree
    nxt, probs = world.transitions(
        world.initial_states(), torch.tensor([[board] * 3 + [0]])
    )
    assert torch.allclose(probs[0], torch.full((3,), 1 / 3, dtype=torch.float64))
    aboard = world.split(nxt[0])["human_vehicle"]
    assert sorted((aboard >= 0).sum(1).tolist()) == [2, 2, 2]
    assert sorted((aboard < 0).int().argmax(1).tolist()) == [0, 1, 2]


def test_transport_max_outcomes_bound() -> None:
    assert _max_lottery_outcomes(2, [1]) == 2
    assert _max_lottery_outcomes(4, [2]) == 6
    assert _max_lottery_outcomes(4, [1, 1]) == 4
    assert _max_lottery_outcomes(5, [0]) == 1
    assert _max_lottery_outcomes(6, [3, 3]) == 20


def test_transport_random_rollouts_probabilities_sum_to_one() -> None:
    """Every allowed joint action of states met on random walks has a proper
    distribution over valid successor encodings."""
    world = TransportWorld(
        grid_network(2, 3),
        [0, 5],
        [0, 0, 4, 2],
        capacity=[1, 2],
        horizon=8,
        vehicle_speed=0.5,
        walk_speed=0.5,
    )
    gen = torch.Generator().manual_seed(0)
    states = world.initial_states().expand(64, -1).clone()
    for _ in range(world.horizon):
        mask = world.action_mask(states)
        actions = torch.multinomial(mask.flatten(0, 1).double(), 1, generator=gen)
        actions = actions.reshape(states.shape[0], -1)
        nxt, probs = world.transitions(states, actions)
        assert nxt.shape[1] == world.max_outcomes
        assert torch.allclose(probs.sum(1), torch.ones(64, dtype=torch.float64))
        p = world.split(nxt.flatten(0, 1))
        carried = p["human_vehicle"] >= 0
        vehicle_node = p["vehicle_node"].gather(1, p["human_vehicle"].clamp(min=0))
        assert torch.all(~carried | (p["human_node"] == vehicle_node))
        load = (p["human_vehicle"].unsqueeze(-1) == torch.arange(2)).sum(1)
        assert torch.all(load <= world.capacity)
        assert torch.all((p["human_edge"] < 0) == (p["human_remaining"] == 0))
        pick = torch.multinomial(probs, 1, generator=gen)
        states = nxt[torch.arange(64), pick[:, 0]]
    assert world.is_terminal(states).all()


def test_transport_goals_and_weights() -> None:
    world = TransportWorld(
        ring_network(4),
        [0],
        [0, 2],
        goals=[[0, 1], [2, 3]],
        goal_weights=[1.0, 3.0],
    )
    assert world.goal_names == (("g0", "g1"), ("g0", "g1"))
    assert world.goal_weights.tolist() == [[1.0, 3.0], [1.0, 3.0]]
    member = world.goal_membership(world.initial_states())[0]
    assert member.tolist() == [[True, False], [False, True]]
    with pytest.raises(ValueError, match=r"goals\[1\]"):
        TransportWorld(ring_network(4), [0], [0], goals=[[0], [7]])
    with pytest.raises(ValueError, match="human_starts: node 9"):
        TransportWorld(ring_network(4), [0], [9])
    with pytest.raises(ValueError, match="capacity"):
        TransportWorld(ring_network(4), [0], [0], capacity=-1)


def test_transport_large_world_shape() -> None:
    world = large()
    assert len(world.agents) == 6 and world.robots == (4, 5)
    assert world.state_dim == 1 + 4 * 4 + 3 * 2
    assert world.max_outcomes == 6
    # corners are reachable only by road: no walkable edge into them
    into_corner = torch.isin(world.network.target, torch.tensor([0, 3, 12, 15]))
    assert not world.network.walkable[into_corner].any()


def test_transport_large_world_options() -> None:
    world = large(rows=3, cols=3, n_vehicles=1, n_humans=2, horizon=4)
    assert world.agents == ("human_0", "human_1", "vehicle_0")
    start = world.split(world.initial_states())
    assert start["human_node"].tolist() == [[4, 4]]
    assert start["vehicle_node"].tolist() == [[0]]
    with pytest.raises(ValueError, match="rows, cols >= 3"):
        large(rows=2)
