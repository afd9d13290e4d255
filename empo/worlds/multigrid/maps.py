"""Parsing of MultiGrid map strings and YAML world files into a :class:`WorldSpec`.

The formats are those of the public research code (``docs/MULTIGRID_COMPAT.md``): a
map is a string (or list of row strings, or list of lists of cells) of two-character
cell codes, whitespace between cells ignored; a YAML file holds ``map`` and optionally
``max_steps``, ``possible_goals``, ``can_push_rocks``, ``action_class``,
``orientations``, ``stumble_probability``, ``solidify_probability`` and
``enter_bush_success_prob``, plus empo's ``can_enter_magic_walls`` (colour letters of
the agents that may try to enter magic walls; none by default, as in the research
code, whose agents read from maps never can). Every object of the research code's
map format is supported; an unknown code is refused with an error naming its cell.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from empo.worlds.multigrid.objects import (
    ACTION_SETS,
    COLOR_CODES,
    ORIENTATIONS,
    FIXTURE_CODES,
    MAGIC_SIDES,
    DoorState,
    Terrain,
)

logger = logging.getLogger(__name__)

_IGNORED_KEYS = {
    "metadata",
    "seed",
    "partial_obs",
    "agent_view_size",
    "see_through_walls",
    "rocks_can_kill",
}
_KNOWN_KEYS = {
    "map",
    "max_steps",
    "possible_goals",
    "can_push_rocks",
    "action_class",
    "orientations",
    "stumble_probability",
    "solidify_probability",
    "enter_bush_success_prob",
    "can_enter_magic_walls",
} | _IGNORED_KEYS


@dataclass
class AgentSpec:
    """An agent: cell, colour name, direction index, abilities."""

    x: int
    y: int
    color: str
    direction: int = 0
    can_push_rocks: bool = False
    can_enter_magic_walls: bool = False


@dataclass
class GoalSpec:
    """A rectangle of cells ``x1 <= x <= x2, y1 <= y <= y2`` with a weight."""

    x1: int
    y1: int
    x2: int
    y2: int
    weight: float = 1.0

    @property
    def name(self) -> str:
        """``"x,y"`` for a single cell, ``"x1,y1,x2,y2"`` for a rectangle."""
        if (self.x1, self.y1) == (self.x2, self.y2):
            return f"{self.x1},{self.y1}"
        return f"{self.x1},{self.y1},{self.x2},{self.y2}"


@dataclass
class WorldSpec:
    """Everything a MultiGrid world is built from (map contents and options)."""

    width: int
    height: int
    terrain: list[list[Terrain]]
    agents: list[AgentSpec]
    doors: list[tuple[int, int, str, DoorState]] = field(default_factory=list)
    keys: list[tuple[int, int, str]] = field(default_factory=list)
    balls: list[tuple[int, int, str]] = field(default_factory=list)
    boxes: list[tuple[int, int, str]] = field(default_factory=list)
    blocks: list[tuple[int, int]] = field(default_factory=list)
    rocks: list[tuple[int, int]] = field(default_factory=list)
    fixtures: dict[Terrain, list[tuple[int, int]]] = field(default_factory=dict)
    magic_sides: list[int] = field(default_factory=list)
    disabling_targets: list[Terrain] = field(default_factory=list)
    goal_colors: dict[tuple[int, int], str] = field(default_factory=dict)
    max_steps: int = 100
    action_set: str = "ObjectActions"
    stumble_probability: float = 0.5
    solidify_probability: float = 0.1
    enter_bush_success_prob: float = 1.0
    possible_goals: list[GoalSpec] | None = None
    source: str = "map"


def _rows(map_spec: str | list[Any]) -> list[str]:
    if isinstance(map_spec, str):
        rows = map_spec.strip().split("\n")
    elif isinstance(map_spec, list) and all(isinstance(r, list) for r in map_spec):
        rows = ["".join(str(c) for c in row) for row in map_spec]
    elif isinstance(map_spec, list) and all(isinstance(r, str) for r in map_spec):
        rows = list(map_spec)
    else:
        raise ValueError(
            "map must be a string, a list of row strings or a list of lists of "
            f"cell codes, got {type(map_spec).__name__}"
        )
    rows = ["".join(row.split()) for row in rows]
    if not rows or not rows[0]:
        raise ValueError("map is empty")
    return rows


def _colour_letters(option: str, letters: str) -> str:
    for code in letters:
        if code not in COLOR_CODES:
            raise ValueError(
                f"{option}: invalid colour letter {code!r}; allowed: "
                f"{', '.join(COLOR_CODES)}"
            )
    return letters


def parse_map(
    map_spec: str | list[Any],
    *,
    orientations: int | str | list[int | str] = 0,
    can_push_rocks: str = "e",
    can_enter_magic_walls: str = "",
) -> WorldSpec:
    """Parse a map into a :class:`WorldSpec` (options other than the map at defaults).

    Parameters
    ----------
    map_spec
        The map: a string with one row per line, a list of row strings or a list of
        lists of two-character cell codes.
    orientations
        One orientation for all agents or one per agent (in row-major order), as an
        index 0-3 or a letter ``e s w n``.
    can_push_rocks
        Colour letters of the agents that may push rocks.
    can_enter_magic_walls
        Colour letters of the agents that may try to enter magic walls.

    Raises
    ------
    ValueError
        On a malformed map or an unknown code (naming the row and column).
    """
    rows = _rows(map_spec)
    pushers = _colour_letters("can_push_rocks", can_push_rocks or "")
    enterers = _colour_letters("can_enter_magic_walls", can_enter_magic_walls or "")
    for i, row in enumerate(rows):
        if len(row) % 2:
            raise ValueError(
                f"map row {i} has odd length {len(row)} (cells are two characters); "
                f"the last cell, column {len(row) // 2}, is incomplete"
            )
    width = len(rows[0]) // 2
    for i, row in enumerate(rows):
        if len(row) // 2 != width:
            raise ValueError(
                f"map row {i} has {len(row) // 2} cells, expected {width} as in row 0"
            )
    terrain = [[Terrain.EMPTY] * width for _ in rows]
    spec = WorldSpec(width=width, height=len(rows), terrain=terrain, agents=[])
    for y, row in enumerate(rows):
        for x in range(width):
            _parse_cell(row[2 * x : 2 * x + 2], x, y, spec, pushers, enterers)
    _apply_orientations(spec, orientations)
    return spec


def _parse_cell(
    code: str, x: int, y: int, spec: WorldSpec, pushers: str, enterers: str
) -> None:
    """Record the object of one cell (colour-less codes first, as the research code
    matches them: ``Kb`` is a kill button, ``Bu`` a bush)."""
    where = f"map row {y}, column {x}"
    fixed = {
        "..": Terrain.EMPTY,
        "La": Terrain.LAVA,
        "Un": Terrain.UNSTEADY,
        "Sw": Terrain.SWITCH,
    }
    if code in fixed:
        spec.terrain[y][x] = fixed[code]
        return
    if code == "Bl":
        spec.blocks.append((x, y))
        return
    if code == "Ro":
        spec.rocks.append((x, y))
        return
    if code in FIXTURE_CODES:
        kind, target = FIXTURE_CODES[code]
        spec.terrain[y][x] = kind
        spec.fixtures.setdefault(kind, []).append((x, y))
        if target is not None:
            spec.disabling_targets.append(target)
        return
    letter, color_code = code[0], code[1]
    if letter == "M":
        if color_code not in MAGIC_SIDES:
            raise ValueError(
                f"invalid magic wall side {color_code!r} in cell code {code!r} at "
                f"{where}; allowed: {', '.join(MAGIC_SIDES)}"
            )
        spec.terrain[y][x] = Terrain.MAGIC_WALL
        spec.fixtures.setdefault(Terrain.MAGIC_WALL, []).append((x, y))
        spec.magic_sides.append(MAGIC_SIDES[color_code])
        return
    if color_code not in COLOR_CODES:
        raise ValueError(f"unknown cell code {code!r} at {where}")
    color = COLOR_CODES[color_code]
    if letter == "B":
        spec.balls.append((x, y, color))
    elif letter == "X":
        spec.boxes.append((x, y, color))
    elif letter == "W":
        spec.terrain[y][x] = Terrain.WALL
    elif letter == "G":
        spec.terrain[y][x] = Terrain.GOAL
        spec.goal_colors[(x, y)] = color
    elif letter in "LCO":
        spec.terrain[y][x] = Terrain.DOOR
        state = {"L": DoorState.LOCKED, "C": DoorState.CLOSED, "O": DoorState.OPEN}
        spec.doors.append((x, y, color, state[letter]))
    elif letter == "K":
        spec.keys.append((x, y, color))
    elif letter == "A":
        spec.agents.append(
            AgentSpec(
                x,
                y,
                color,
                can_push_rocks=color_code in pushers,
                can_enter_magic_walls=color_code in enterers,
            )
        )
    else:
        raise ValueError(f"unknown cell code {code!r} at {where}")


def _apply_orientations(
    spec: WorldSpec, orientations: int | str | list[int | str]
) -> None:
    values = (
        orientations
        if isinstance(orientations, list)
        else [orientations] * len(spec.agents)
    )
    if len(values) < len(spec.agents):
        raise ValueError(
            f"orientations lists {len(values)} values for {len(spec.agents)} agents"
        )
    for agent, value in zip(spec.agents, values):
        if isinstance(value, bool) or not isinstance(value, (int, str)):
            raise ValueError(f"orientations: invalid value {value!r}")
        if isinstance(value, int):
            if not 0 <= value <= 3:
                raise ValueError(f"orientations: {value} is not in 0..3")
            agent.direction = value
        elif value in ORIENTATIONS:
            agent.direction = ORIENTATIONS[value]
        else:
            raise ValueError(
                f"orientations: {value!r} is not one of 0-3 or {', '.join(ORIENTATIONS)}"
            )


def parse_goal_spec(spec: Any, weight: float = 1.0) -> GoalSpec:
    """Parse one ``possible_goals`` entry into a :class:`GoalSpec`.

    Accepted: ``"x,y"``, ``"x1,y1, x2,y2"``, ``[x, y]``, ``[x1, y1, x2, y2]``,
    ``[[x1, y1], [x2, y2]]``, or a mapping ``{goal: <one of these>, weight: w}``.
    """
    if isinstance(spec, dict):
        if "goal" not in spec:
            raise ValueError(f"possible_goals entry {spec!r} lacks the 'goal' key")
        return parse_goal_spec(spec["goal"], float(spec.get("weight", 1.0)))
    try:
        if isinstance(spec, str):
            parts = [int(p) for p in spec.replace(" ", "").split(",")]
        elif isinstance(spec, (list, tuple)) and all(
            isinstance(p, (list, tuple)) for p in spec
        ):
            parts = [int(v) for p in spec for v in p]
        elif isinstance(spec, (list, tuple)):
            parts = [int(p) for p in spec]
        else:
            raise ValueError
    except ValueError:
        raise ValueError(f"possible_goals entry {spec!r} is not a list of integers")
    if len(parts) == 2:
        parts = parts * 2
    if len(parts) != 4:
        raise ValueError(
            f"possible_goals entry {spec!r} must have 2 or 4 coordinates, "
            f"got {len(parts)}"
        )
    if not weight > 0:
        raise ValueError(f"possible_goals entry {spec!r}: weight must be > 0")
    x1, y1, x2, y2 = parts
    return GoalSpec(min(x1, x2), min(y1, y2), max(x1, x2), max(y1, y2), weight)


def parse_config(config: dict[str, Any], source: str = "config") -> WorldSpec:
    """Build a :class:`WorldSpec` from a YAML-style configuration dict.

    Parameters
    ----------
    config
        The parsed YAML content; ``map`` is required.
    source
        Name of the file or object, used in error messages.
    """
    if not isinstance(config, dict) or "map" not in config:
        raise ValueError(f"{source}: a MultiGrid world file needs a 'map' entry")
    for key in config:
        if key not in _KNOWN_KEYS:
            logger.warning("%s: ignoring unknown key %r", source, key)
    try:
        spec = parse_map(
            config["map"],
            orientations=config.get("orientations", 0),
            can_push_rocks=config.get("can_push_rocks", "e") or "",
            can_enter_magic_walls=config.get("can_enter_magic_walls", "") or "",
        )
    except ValueError as err:
        raise ValueError(f"{source}: {err}") from None
    spec.source = source
    max_steps = config.get("max_steps", 100)
    if isinstance(max_steps, bool) or not isinstance(max_steps, int) or max_steps < 1:
        raise ValueError(f"{source}: max_steps must be a positive integer")
    spec.max_steps = max_steps
    action_set = config.get("action_class")
    if action_set is None:
        interactive = (
            Terrain.PAUSE_SWITCH,
            Terrain.DISABLING_SWITCH,
            Terrain.CONTROL_BUTTON,
        )
        needs_objects = bool(
            spec.keys
            or spec.balls
            or spec.boxes
            or spec.doors
            or any(spec.fixtures.get(kind) for kind in interactive)
        )
        action_set = "ObjectActions" if needs_objects else "SmallActions"
    if action_set not in ACTION_SETS:
        raise ValueError(
            f"{source}: unknown action_class {action_set!r}; allowed: "
            f"{', '.join(ACTION_SETS)}"
        )
    spec.action_set = action_set
    defaults = {
        "stumble_probability": 0.5,
        "solidify_probability": 0.1,
        "enter_bush_success_prob": 1.0,
    }
    for key, default in defaults.items():
        value = config.get(key, default)
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ValueError(f"{source}: {key} must be a number in [0, 1]")
        if not 0.0 <= value <= 1.0:
            raise ValueError(f"{source}: {key} must lie in [0, 1]")
        setattr(spec, key, float(value))
    goals = config.get("possible_goals")
    if goals:
        try:
            spec.possible_goals = [parse_goal_spec(g) for g in goals]
        except ValueError as err:
            raise ValueError(f"{source}: {err}") from None
    return spec


def load_config(path: str | Path) -> dict[str, Any]:
    """Read a YAML (or JSON, a YAML subset) MultiGrid world file into a dict."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"MultiGrid world file not found: {path}")
    try:
        config = yaml.safe_load(path.read_text())
    except yaml.YAMLError as err:
        raise ValueError(f"{path}: invalid YAML: {err}") from None
    if not isinstance(config, dict):
        raise ValueError(f"{path}: a MultiGrid world file must hold a mapping")
    return config
