"""Every built-in world is meaningful under its own defaults (issue 18).

Solved exactly with the default parameters, each enumerable world has a finite
``V_r(s_0)``, finite ``W_h(s_0)`` and no warning (in particular none about
``U_r = -inf``, which makes the robot policy uniform). ``transport_large`` cannot be
enumerated (it goes to the sampled learned solver) and ``multigrid`` needs a file.
"""

from __future__ import annotations

import math
import warnings

import pytest

from empo.exact import solve
from empo.learning.trainer import enumerable
from empo.parameters import Parameters
from empo.theory import power_bits
from empo.worlds.registry import WorldName, build_world

NOT_ENUMERABLE = {WorldName.TRANSPORT_LARGE}
NEEDS_OPTIONS = {WorldName.MULTIGRID}
SLOW = {WorldName.KEY_DOOR}
SHORTER = {
    WorldName.KEY_DOOR_2H: {"max_steps": 5},
    WorldName.KEY_DOOR_HALL: {"max_steps": 4},
    WorldName.OFF_SWITCH: {"max_steps": 12},
    WorldName.PAUSE_SWITCH: {"max_steps": 12},
}
"""key_door_2h's 114,826 states take minutes on 2 cores, and key_door_hall has over
10^8 states under its defaults (it is the learned solver's world past enumeration);
their goals (room, doorway, hall halves) cover every walkable cell, so no horizon lets
a human's X_h vanish and a shorter one checks the same thing. So do off_switch's and pause_switch's (121,795
states each; every cell a human can stand on is a goal)."""


def _cases() -> list:
    names = [w for w in WorldName if w not in NOT_ENUMERABLE | NEEDS_OPTIONS]
    return [
        pytest.param(w, id=w.value, marks=[pytest.mark.slow] if w in SLOW else [])
        for w in names
    ]


@pytest.mark.parametrize("name", _cases())
def test_builtin_world_has_finite_robot_value_under_defaults(name: WorldName) -> None:
    world = build_world(name, SHORTER.get(name))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        solution = solve(world, Parameters().theory)
    s0 = solution.world.initial_state
    v_r = float(solution.phase2["v_r"][s0])
    assert math.isfinite(v_r) and v_r < 0
    assert power_bits(solution.phase2["x_h"][s0]).isfinite().all()


def test_lava_human_keeps_one_goal_in_lava() -> None:
    world = build_world("lava")
    solution = solve(world, Parameters().theory)
    table, x_h = solution.world.state_table, solution.phase2["x_h"]
    dead = table[:, 3] == 1
    assert dead.any()
    assert x_h[dead & ~solution.world.terminal].eq(1.0).all()


def test_worlds_left_out_cannot_be_solved_exactly_by_design() -> None:
    assert not enumerable(build_world(WorldName.TRANSPORT_LARGE))
    with pytest.raises(ValueError, match="path to a world file or a map string"):
        build_world(WorldName.MULTIGRID)
