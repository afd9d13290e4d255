"""Object, terrain, colour, direction and action codes of the MultiGrid world.

The two-character map codes, colour letters, direction convention and action sets follow
the public research code (mensch72/empo, ``vendor/multigrid/gym_multigrid/multigrid.py``;
see ``docs/MULTIGRID_COMPAT.md``): ``x`` is the column, ``y`` the row, direction 0 is
east (+x), 1 south (+y), 2 west (-x), 3 north (-y).
"""

from __future__ import annotations

from enum import IntEnum


class Terrain(IntEnum):
    """Static floor type of a cell (never changes during an episode)."""

    EMPTY = 0
    WALL = 1
    GOAL = 2
    LAVA = 3
    UNSTEADY = 4
    DOOR = 5


class DoorState(IntEnum):
    """State of a door as stored in the state vector."""

    OPEN = 0
    CLOSED = 1
    LOCKED = 2


class ActionKind(IntEnum):
    """What an action does, independent of its index in an action set."""

    STILL = 0
    LEFT = 1
    RIGHT = 2
    FORWARD = 3
    PICKUP = 4
    DROP = 5
    TOGGLE = 6
    DONE = 7


COLOR_CODES: dict[str, str] = {
    "r": "red",
    "g": "green",
    "b": "blue",
    "p": "purple",
    "y": "yellow",
    "e": "grey",
}
COLOR_NAMES: tuple[str, ...] = tuple(COLOR_CODES.values())
COLOR_RGB: dict[str, tuple[int, int, int]] = {
    "red": (255, 0, 0),
    "green": (0, 255, 0),
    "blue": (0, 0, 255),
    "purple": (112, 39, 195),
    "yellow": (255, 255, 0),
    "grey": (100, 100, 100),
}

ORIENTATIONS: dict[str, int] = {"e": 0, "s": 1, "w": 2, "n": 3}
DIRECTION_VECTORS: tuple[tuple[int, int], ...] = ((1, 0), (0, 1), (-1, 0), (0, -1))

ACTION_SETS: dict[str, tuple[str, ...]] = {
    "SmallActions": ("still", "left", "right", "forward"),
    "ObjectActions": (
        "still",
        "left",
        "right",
        "forward",
        "pickup",
        "drop",
        "toggle",
    ),
    "Actions": (
        "still",
        "left",
        "right",
        "forward",
        "pickup",
        "drop",
        "toggle",
        "done",
    ),
    "MinimalActions": ("forward", "left"),
}
ACTION_KINDS: dict[str, ActionKind] = {k.name.lower(): k for k in ActionKind}

UNSUPPORTED_CODES: dict[str, str] = {
    "Bu": "bush",
    "Sw": "switch",
    "Kb": "kill button",
    "Ki": "kill button",
    "Ps": "pause switch",
    "Pa": "pause switch",
    "Dk": "disabling switch",
    "dK": "disabling switch",
    "Dp": "disabling switch",
    "dP": "disabling switch",
    "DC": "disabling switch",
    "dC": "disabling switch",
    "CB": "control button",
    "Mn": "magic wall",
    "Ms": "magic wall",
    "Mw": "magic wall",
    "Me": "magic wall",
    "Ma": "magic wall",
}
UNSUPPORTED_LETTERS: dict[str, str] = {"B": "ball", "X": "box"}
