"""Built-in MultiGrid worlds, registered in :mod:`empo.worlds.registry`.

Each builder takes keyword options that override entries of the world's YAML file
(``max_steps``, ``possible_goals``, ``stumble_probability``, ``orientations``,
``can_push_rocks``, ``action_class``) plus ``device``, and returns a
:class:`~empo.worlds.multigrid.world.MultiGridWorld`. The maps live in
``empo/worlds/multigrid/worlds/*.yaml``; all are small enough to solve exactly.

* ``key_door``: the paper's key-and-door world (THEORY.md, "Key and door"): a human
  shut in a two-cell room behind a locked door, the only key reachable by the robot
  alone, every open cell a possible goal, horizon 18 (the robot needs 8 steps to fetch
  the key, unlock the door and step aside; the rest leaves the human time to use the
  opened room). 82,658 states.
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
    """A small lava field next to the human."""
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
