"""Built-in MultiGrid worlds, registered in :mod:`empo.worlds.registry`.

Each builder takes keyword options that override entries of the world's YAML file
(``max_steps``, ``possible_goals``, ``stumble_probability``, ``orientations``,
``can_push_rocks``, ``action_class``) plus ``device``, and returns a
:class:`~empo.worlds.multigrid.world.MultiGridWorld`. The maps live in
``empo/worlds/multigrid/worlds/*.yaml``; all but ``key_door_hall`` are small enough
to solve exactly.

* ``key_door``: the paper's key-and-door world (THEORY.md, "Key and door"): a human
  shut in a two-cell room behind a locked door, the only key reachable by the robot
  alone, every open cell a possible goal, horizon 18 (the robot needs 8 steps to fetch
  the key, unlock the door and step aside; the rest leaves the human time to use the
  opened room). 82,658 states.
* ``key_door_2h``: key and door with two humans and a robot (3 agents, 7 actions each,
  343 joint actions), sized by ``size`` and ``max_steps`` (:func:`key_door_2h`): the
  benchmark world of the layered exact solver (``docs/exact.md``).
* ``key_door_hall``: the same with the robot and the key next to the door
  (:func:`key_door_hall`); over 10^8 states at its default horizon of 32 steps, the
  learned solver's world past enumeration (``docs/learned.md``). Not solvable exactly
  under its defaults (only at short horizons).
* ``off_switch`` and ``pause_switch``: the off-switch question on the key-and-door
  world (``docs/multigrid.md``): the human can also switch the robot off for good
  with a kill button, or pause and unpause it with a pause switch, and the robot
  passes a disabling switch for that button on its way to the key. Horizon 18,
  121,795 states each.
* ``corridor``, ``rock``, ``two_humans_door``, ``lava``, ``unsteady``: small worlds
  exercising one object type each.
* ``from_file``: any YAML world file of the research code's format, or a map string.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from empo.worlds.multigrid.maps import load_config, parse_config
from empo.worlds.multigrid.world import MultiGridWorld

WORLDS_DIR = Path(__file__).resolve().parent / "worlds"


def _build(
    config: dict[str, Any], source: str, options: dict[str, Any]
) -> MultiGridWorld:
    device = options.pop("device", "cpu")
    name = options.pop("name", Path(source).stem)
    config = {**config, **options}
    return MultiGridWorld(parse_config(config, source=source), name=name, device=device)


def _builtin(stem: str, options: dict[str, Any]) -> MultiGridWorld:
    path = WORLDS_DIR / f"{stem}.yaml"
    return _build(load_config(path), str(path), dict(options))


def key_door(**options: Any) -> MultiGridWorld:
    """The key-and-door world (see the module docstring)."""
    return _builtin("key_door", options)


def key_door_2h_map(size: int = 3, near: bool = False) -> str:
    """The map of :func:`key_door_2h`: a 2×2 room with two humans behind a locked
    door, and a hall of 3 rows and ``size`` columns with the robot and the key (the
    key at the hall's far end, the robot in its bottom-left corner; with ``near``,
    the map of :func:`key_door_hall`: the robot in front of the door, the key just
    north of it)."""
    if size < 2:
        raise ValueError(f"key_door_2h: size must be at least 2, got {size}")
    hall = [[".."] * size for _ in range(3)]
    if near:
        hall[0][0], hall[1][0] = "Kr", "Ae"
    else:
        hall[1][-1], hall[2][0] = "Kr", "Ae"
    rows = [
        ["We", "Ay", "..", "We", *hall[0]],
        ["We", "..", "Ay", "Lr", *hall[1]],
        ["We", "We", "We", "We", *hall[2]],
    ]
    wall = ["We"] * (len(rows[0]) + 1)
    return "\n".join(" ".join(row) for row in [wall, *[r + ["We"] for r in rows], wall])


def _two_human_world(
    name: str, size: int, max_steps: int, near: bool, options: dict[str, Any]
) -> MultiGridWorld:
    """:func:`key_door_2h` (``near`` false) or :func:`key_door_hall` (``near``): the
    map of :func:`key_door_2h_map`, the 7 object actions, and the same goals for both
    humans: the room, the doorway, and the hall's left and right halves."""
    split = 4 + size // 2
    goals = [
        [[1, 1], [2, 2]],
        [[3, 2], [3, 2]],
        [[4, 1], [split - 1, 3]],
        [[split, 1], [3 + size, 3]],
    ]
    config = {
        "map": key_door_2h_map(size, near=near),
        "max_steps": max_steps,
        "orientations": ["s", "e" if near else "w", "n"],
        "action_class": "ObjectActions",
        "possible_goals": goals,
        **options,
    }
    return _build(config, name, {"name": name, **options})


def key_door_2h(size: int = 3, max_steps: int = 10, **options: Any) -> MultiGridWorld:
    """Key and door with two humans: the humans (yellow) share a 2×2 room shut by a
    locked red door; the robot (grey) in the hall of 3 rows and ``size`` columns can
    fetch the red key from the hall's far end and open the door.

    Goals (the same for both humans): the room, the doorway, and the hall's left and
    right halves. Every agent has the 7 object actions (343 joint actions).

    Parameters
    ----------
    size
        Columns of the hall (at least 2).
    max_steps
        The horizon.
    **options
        Further overrides (``possible_goals``, ``stumble_probability``, ...).
    """
    return _two_human_world("key_door_2h", size, max_steps, False, options)


def key_door_hall(size: int = 5, max_steps: int = 32, **options: Any) -> MultiGridWorld:
    """Key and door with two humans, past enumeration: the map of
    :func:`key_door_2h` with the robot (facing north) in front of the locked door,
    the key just north of it and the lower human (facing east) next to the door, so
    the robot can free the humans within 3 steps (pick up, turn left, unlock) and the
    same map is worth solving at a horizon short enough to enumerate (6 steps: 58,913
    states). The default horizon of 32 steps has more than 10^8 states: layers never
    shrink (every agent may stay still), and layer 13 alone has 4,824,961, so the 33
    layers hold at least 101,614,719 (``docs/learned.md``, "Past enumeration").

    Parameters
    ----------
    size
        Columns of the hall (at least 2).
    max_steps
        The horizon.
    **options
        Further overrides (``possible_goals``, ``stumble_probability``, ...).
    """
    return _two_human_world("key_door_hall", size, max_steps, True, options)


def off_switch(**options: Any) -> MultiGridWorld:
    """The human can switch the robot off; the robot can disable the button."""
    return _builtin("off_switch", options)


def pause_switch(**options: Any) -> MultiGridWorld:
    """The human can pause the robot; the robot can disable the switch."""
    return _builtin("pause_switch", options)


def corridor(**options: Any) -> MultiGridWorld:
    """A one-cell-wide corridor shared by a human and a robot."""
    return _builtin("corridor", options)


def rock(**options: Any) -> MultiGridWorld:
    """A rock that only the robot can push blocks the human's way out."""
    return _builtin("rock", options)


def two_humans_door(**options: Any) -> MultiGridWorld:
    """Two humans behind a closed door, a robot on the other side."""
    return _builtin("two_humans_door", options)


def lava(**options: Any) -> MultiGridWorld:
    """A small lava field next to the human.

    Every cell an agent can stand on is a goal, the two lava cells included (the
    default goals of a map leave lava out). A human who walks into lava is terminated
    and stays on that cell, so it remains in exactly one goal: ``X_h = 1`` and
    ``W_h = 0`` bits, no choice left. With lava left out it would be in none:
    ``X_h = 0`` makes ``U_r = -inf`` (eq. 8) at every state after such a step, and
    since the human prior (eqs. 1–3) gives that step positive probability from the
    start, ``V_r(s_0) = -inf`` for every robot action and the robot policy is
    uniform (THEORY.md: goals should cover every trajectory).
    """
    return _builtin("lava", options)


def unsteady(**options: Any) -> MultiGridWorld:
    """Unsteady ground on which forward moves stumble."""
    return _builtin("unsteady", options)


def from_file(
    path: str | Path | None = None, map: str | None = None, **options: Any
) -> MultiGridWorld:
    """Load a YAML world file (research-code format) or a map string.

    Parameters
    ----------
    path
        A ``.yaml``/``.yml`` file, or a map string (recognised by a newline).
    map
        A map string (alternative to ``path``).
    **options
        Overrides of file entries (``max_steps``, ``possible_goals``, ...) and
        ``device``.
    """
    if map is None and path is None:
        raise ValueError("from_file needs a path to a world file or a map string")
    if map is None and isinstance(path, str) and "\n" in path:
        map, path = path, None
    if map is not None:
        return _build({"map": map}, "map", {"name": "map", **options})
    return _build(load_config(path), str(path), dict(options))
