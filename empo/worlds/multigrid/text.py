"""MultiGrid states drawn as small text maps (for terminal summaries and logs).

Each cell is two characters, cells separated by a space. Objects use the map codes of
the world files (:mod:`empo.worlds.multigrid.maps`) where a person writing maps knows
them: ``Kr`` a red key (``Br`` a ball, ``Xr`` a box), ``Lr``/``Cr``/``Or`` a
locked/closed/open red door, ``Bl`` a block, ``Ro`` a rock, ``La`` lava, ``Un``
unsteady ground, ``Gg`` a goal cell, ``..`` empty floor; walls are ``##``; switches,
bushes, magic walls and buttons by their map codes (not their state). An agent is ``H`` (human) or ``R`` (robot) followed by
the direction it faces (``>``, ``v``, ``<``, ``^``), in lower case once terminated.
Carried keys and terminated agents are listed below the map, one line each.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from jaxtyping import Int64
from torch import Tensor

from empo.worlds.multigrid.objects import COLOR_CODES, DoorState, Terrain

if TYPE_CHECKING:
    from empo.worlds.multigrid.world import MultiGridWorld

ARROWS = (">", "v", "<", "^")
"""Direction 0 (east), 1 (south), 2 (west), 3 (north)."""

_COLOR_LETTER = {name: letter for letter, name in COLOR_CODES.items()}
_TERRAIN_CODE = {
    Terrain.EMPTY: "..",
    Terrain.WALL: "##",
    Terrain.GOAL: "Gg",
    Terrain.LAVA: "La",
    Terrain.UNSTEADY: "Un",
    Terrain.DOOR: "..",
    Terrain.SWITCH: "Sw",
    Terrain.BUSH: "Bu",
    Terrain.MAGIC_WALL: "Ma",
    Terrain.KILL_BUTTON: "Kb",
    Terrain.PAUSE_SWITCH: "Ps",
    Terrain.DISABLING_SWITCH: "Dk",
    Terrain.CONTROL_BUTTON: "CB",
}
_DOOR_LETTER = {DoorState.OPEN: "O", DoorState.CLOSED: "C", DoorState.LOCKED: "L"}


def draw_text(world: MultiGridWorld, state: Int64[Tensor, " dim"]) -> list[str]:
    """Lines of a text map of one state (see the module docstring).

    Parameters
    ----------
    world
        The world the state belongs to.
    state
        One state row.

    Returns
    -------
    list of str
        The map rows, then one line per carried key and per terminated agent.
    """
    spec, lay = world.spec, world.layout
    s = [int(v) for v in state.tolist()]
    w = spec.width
    grid = [[_TERRAIN_CODE[Terrain(code)] for code in row] for row in spec.terrain]
    for d, (x, y, color, _) in enumerate(spec.doors):
        door = DoorState(s[lay.door_col + d])
        grid[y][x] = _DOOR_LETTER[door] + _COLOR_LETTER[color]
    for q in range(lay.n_push):
        cell = s[lay.push_col + q]
        grid[cell // w][cell % w] = "Bl" if q < lay.n_blocks else "Ro"
    pickables = [("K", c) for *_, c in spec.keys] + [("B", c) for *_, c in spec.balls]
    pickables += [("X", c) for *_, c in spec.boxes]
    for j, (letter, color) in enumerate(pickables):
        cell = s[lay.key_col + j]
        if cell >= 0:
            grid[cell // w][cell % w] = letter + _COLOR_LETTER[color]
    notes = []
    for i, name in enumerate(world.agents):
        pos, direction, dead, carry = s[1 + 4 * i : 5 + 4 * i]
        letter = "H" if i in world.humans else "R"
        grid[pos // w][pos % w] = (letter.lower() if dead else letter) + ARROWS[
            direction
        ]
        if carry >= 0:
            letter, color = pickables[carry]
            notes.append(f"{name} carries {letter}{_COLOR_LETTER[color]}")
        if dead:
            notes.append(f"{name} terminated")
    return [" ".join(row) for row in grid] + notes
