"""Object, terrain, colour, direction and action codes of the MultiGrid world.

The two-character map codes, colour letters, direction convention and action sets follow
the public research code (mensch72/empo, ``vendor/multigrid/gym_multigrid/multigrid.py``;
see ``docs/MULTIGRID_COMPAT.md``): ``x`` is the column, ``y`` the row, direction 0 is
east (+x), 1 south (+y), 2 west (-x), 3 north (-y).
"""

from __future__ import annotations

from enum import IntEnum


class Terrain(IntEnum):
    """Static type of a cell (what lies there never moves; the state of doors, bushes,
    magic walls, switches and buttons is part of the state row)."""

    EMPTY = 0
    WALL = 1
    GOAL = 2
    LAVA = 3
    UNSTEADY = 4
    DOOR = 5
    SWITCH = 6
    BUSH = 7
    MAGIC_WALL = 8
    KILL_BUTTON = 9
    PAUSE_SWITCH = 10
    DISABLING_SWITCH = 11
    CONTROL_BUTTON = 12


FIXTURES: tuple[Terrain, ...] = (
    Terrain.BUSH,
    Terrain.MAGIC_WALL,
    Terrain.KILL_BUTTON,
    Terrain.PAUSE_SWITCH,
    Terrain.DISABLING_SWITCH,
    Terrain.CONTROL_BUTTON,
)
"""Cell types with an index of their own kind (``Layout.fixture_of_cell``)."""

TOGGLEABLE: tuple[Terrain, ...] = (
    Terrain.DOOR,
    Terrain.KILL_BUTTON,
    Terrain.PAUSE_SWITCH,
    Terrain.DISABLING_SWITCH,
    Terrain.CONTROL_BUTTON,
)
"""Cell types on which ``toggle`` can act."""

OVERLAPPABLE: tuple[Terrain, ...] = (
    Terrain.EMPTY,
    Terrain.GOAL,
    Terrain.LAVA,
    Terrain.UNSTEADY,
    Terrain.SWITCH,
)
"""Cell types onto which objects can be pushed or dropped (plus open doors and
trampled bushes); agents can also walk into doors when open and into any bush."""


class PickKind(IntEnum):
    """Kinds of pickable objects (their index order in the state row)."""

    KEY = 0
    BALL = 1
    BOX = 2


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
MAGIC_SIDES: dict[str, int] = {"e": 0, "s": 1, "w": 2, "n": 3, "a": 4}
"""Magic wall codes ``M<side>``: the side from which it can be entered (4: all)."""
MAGIC_ENTRY_PROBABILITY = 0.5
"""Probability that an attempt to enter a magic wall succeeds (research code's value
for walls read from maps)."""
DIRECTION_VECTORS: tuple[tuple[int, int], ...] = ((1, 0), (0, 1), (-1, 0), (0, -1))

_SMALL_ACTIONS = ("still", "left", "right", "forward")
_OBJECT_ACTIONS = (*_SMALL_ACTIONS, "pickup", "drop", "toggle")
ACTION_SETS: dict[str, tuple[str, ...]] = {
    "SmallActions": _SMALL_ACTIONS,
    "ObjectActions": _OBJECT_ACTIONS,
    "Actions": (*_OBJECT_ACTIONS, "done"),
    "MinimalActions": ("forward", "left"),
}
ACTION_KINDS: dict[str, ActionKind] = {k.name.lower(): k for k in ActionKind}

FIXTURE_CODES: dict[str, tuple[Terrain, Terrain | None]] = {
    "Bu": (Terrain.BUSH, None),
    "Kb": (Terrain.KILL_BUTTON, None),
    "Ki": (Terrain.KILL_BUTTON, None),
    "Ps": (Terrain.PAUSE_SWITCH, None),
    "Pa": (Terrain.PAUSE_SWITCH, None),
    "Dk": (Terrain.DISABLING_SWITCH, Terrain.KILL_BUTTON),
    "dK": (Terrain.DISABLING_SWITCH, Terrain.KILL_BUTTON),
    "Dp": (Terrain.DISABLING_SWITCH, Terrain.PAUSE_SWITCH),
    "dP": (Terrain.DISABLING_SWITCH, Terrain.PAUSE_SWITCH),
    "DC": (Terrain.DISABLING_SWITCH, Terrain.CONTROL_BUTTON),
    "dC": (Terrain.DISABLING_SWITCH, Terrain.CONTROL_BUTTON),
    "CB": (Terrain.CONTROL_BUTTON, None),
}
"""Colour-less two-character codes of fixtures: ``(cell type, target kind)`` (the
target kind is that of the objects a disabling switch enables and disables)."""
