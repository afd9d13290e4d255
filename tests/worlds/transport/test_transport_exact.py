"""The generic compiler and the exact solver on the small transport world.

Small world: one-way ring road home -> market -> station -> beach -> home (drive
only), footpath home <-> market (two steps per walk), vehicle and human start at
home, horizon 6, a loaded vehicle may not idle. Alone the human reaches only home
and market; riding, every node.
"""

import math

import pytest
import torch

from empo.exact.solve import solve
from empo.parameters.theory import TheoryParameters
from empo.worlds.compiler import compile_world
from empo.worlds.registry import build_world, compile_any
from empo.worlds.transport.builtin import small
from empo.worlds.transport.dynamics import TransportWorld
from empo.worlds.transport.network import load_network

THEORY = TheoryParameters()


def test_transport_compile_small() -> None:
    world = small()
    compiled = compile_world(world)
    assert compiled.num_states == 115
    assert compiled.successors.shape[1] == 5 * 3
    assert int(compiled.height.max()) == world.horizon
    assert torch.equal(
        compiled.state_table[compiled.initial_state], world.initial_states()[0]
    )
    # state count by time step: t=0 one state, and the horizon is terminal
    times = compiled.state_table[:, 0]
    assert int((times == 0).sum()) == 1
    assert torch.equal(compiled.terminal, times == world.horizon)
    # the explicit probabilities survive compilation
    rows = compiled.probabilities.sum(-1)
    allowed = rows > 0
    assert torch.allclose(rows[allowed], torch.ones_like(rows[allowed]))


def test_transport_compile_two_humans_lottery() -> None:
    world = small(n_humans=2)
    compiled = compile_any(world)
    assert compiled.num_states == 594
    s0 = compiled.initial_state
    both_board = (3 * 5 + 3) * 3 + 1  # board, board, drive_0
    probs = compiled.probabilities[s0, both_board]
    assert sorted(probs[probs > 0].tolist()) == [0.5, 0.5]


def test_transport_compile_loaded_network(tmp_path) -> None:
    """One step on a one-way road A -> B: wait/walk/board x wait/drive give six
    distinct successors (walking takes one step here), seven states in all."""
    path = tmp_path / "road.net"
    path.write_text("node A 0 0\nnode B 1 0\nedge A B 1\n")
    world = TransportWorld(load_network(path), [0], [0], horizon=1)
    compiled = compile_world(world)
    assert compiled.num_states == 7
    assert int(compiled.terminal.sum()) == 6
    described = sorted(world.describe(s) for s in compiled.state_table[1:])
    assert described == [
        "t=1 V0@A H0@A",
        "t=1 V0@A H0@A[in V0]",
        "t=1 V0@A H0@B",
        "t=1 V0@B H0@A",
        "t=1 V0@B H0@B",
        "t=1 V0@B H0@B[in V0]",
    ]


def test_transport_registry_builds() -> None:
    assert build_world("transport_small").state_dim == 8
    assert build_world("transport_small", {"n_humans": 2}).n_humans == 2
    assert build_world("transport_large").n_vehicles == 2


def _most_likely_path(solution, world) -> list[torch.Tensor]:
    """States along the most likely joint action and outcome from the start."""
    compiled = solution.world
    joint = solution.joint_policy()
    s = compiled.initial_state
    path = [compiled.state_table[s]]
    while not bool(compiled.terminal[s]):
        j = int(joint[s].argmax())
        s = int(compiled.successors[s, j, compiled.probabilities[s, j].argmax()])
        path.append(compiled.state_table[s])
    return path


def test_transport_exact_robot_ferries_and_power_grows() -> None:
    world = small()
    ferry = solve(world, THEORY)
    alone = solve(small(capacity=0), THEORY)
    s0 = world.initial_states()[0]
    gamma = THEORY.gamma_h

    # without seats only home and market are reachable: X_h <= 2, W_h < 1 bit
    for goal in ("station", "beach"):
        assert alone.v_e(s0, 0, goal) == 0.0
    assert 0.95 < alone.power_bits(s0, 0) < 1.0
    # with the ferry every node is reachable: W_h close to log2(4) = 2 bits
    assert ferry.power_bits(s0, 0) > 1.9
    assert ferry.power_bits(s0, 0) - alone.power_bits(s0, 0) > 0.9

    # the robot waits for the human to board, then carries them round the ring
    assert ferry.robot_policy(s0)["wait"] > 0.5
    path = _most_likely_path(ferry, world)
    described = [world.describe(s) for s in path]
    assert described[:5] == [
        "t=0 V0@home H0@home",
        "t=1 V0@home H0@home[in V0]",
        "t=2 V0@market H0@market[in V0]",
        "t=3 V0@station H0@station[in V0]",
        "t=4 V0@beach H0@beach[in V0]",
    ]
    # aboard at t=1 the ride is committed: beach is entered two steps later
    aboard = path[1]
    assert ferry.robot_policy(aboard) == {"drive_0": 1.0}
    v_beach = ferry.v_e(aboard, 0, "beach")
    assert v_beach <= gamma**2 + 1e-12 and v_beach > gamma**2 - 0.01
    # and the human's power grows during the ride
    powers = [ferry.power_bits(s, 0) for s in path[:4]]
    assert powers[1] > powers[0] and powers[2] > powers[1] and powers[3] > powers[2]
    assert math.isclose(powers[3], math.log2(ferry.x_h(path[3], 0)))


@pytest.mark.slow
def test_transport_exact_two_humans_share_one_seat() -> None:
    """With one seat for two humans each rides with probability about 1/2, so the
    power of each lies between walking alone and a private ferry."""
    shared = solve(small(n_humans=2), THEORY)
    private = solve(small(n_humans=2, capacity=2), THEORY)
    s0 = shared.world.state_table[shared.world.initial_state]
    w_shared = [shared.power_bits(s0, h) for h in (0, 1)]
    w_private = [private.power_bits(s0, h) for h in (0, 1)]
    assert w_shared[0] == pytest.approx(w_shared[1], abs=1e-12)
    assert 1.0 < w_shared[0] < w_private[0] - 0.3
    assert w_private[0] > 1.9
