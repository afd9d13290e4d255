"""Validation of ``world.options``: names, types and bounds, then the world's inputs.

Two levels, so that a parameter file stays loadable on a machine without the map
files it names:

:func:`check_world_options` (run by :class:`~empo.parameters.WorldParameters` on
construction)
    Every option must be a keyword of the world's builder (for MultiGrid worlds, an
    entry of the world file, :data:`MULTIGRID_OPTIONS`); an unknown one is an error
    naming the closest valid names. Values must have the type of the builder's
    default (integers for integers, numbers for floats, booleans for booleans) and
    lie within :data:`OPTION_BOUNDS`: horizons (``max_steps``, ``horizon``) within
    ``1..MAX_HORIZON``, other counts within ``0..MAX_COUNT``, probabilities within
    ``[0, 1]``, speeds positive.
:func:`check_world_inputs` (run before a run directory is created and by sweep
pre-validation)
    What the world reads from elsewhere: the map file exists and the map parses (no
    tensors are built).

Both raise :class:`~empo.parameters.ParameterError` naming ``world.options.<name>``.
"""

from __future__ import annotations

import inspect
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

from empo.parameters.validation import ParameterError, closest
from empo.worlds.registry import WorldName, build_world, world_builder

__all__ = [
    "MAX_COUNT",
    "build_checked_world",
    "MAX_HORIZON",
    "MULTIGRID_OPTIONS",
    "OPTION_BOUNDS",
    "check_world_inputs",
    "check_world_options",
]

MAX_HORIZON = 10_000
"""Largest ``max_steps``/``horizon`` accepted: every time step is a layer of states."""

MAX_COUNT = 1_000
"""Largest count option accepted (menu sizes, units, humans, vehicles, grid sides)."""

_MULTIGRID_MODULE = "empo.worlds.multigrid.builtin"


@dataclass(frozen=True)
class Bound:
    """The allowed interval of a numeric option (``None``: unbounded on that side).

    Parameters
    ----------
    low, high
        Inclusive bounds, except that ``low`` is exclusive when ``open_low``.
    open_low
        Whether ``low`` itself is excluded.
    """

    low: int | float | None = None
    high: int | float | None = None
    open_low: bool = False

    def admits(self, value: int | float) -> bool:
        """Whether ``value`` lies in the interval (and is finite)."""
        if isinstance(value, float) and not math.isfinite(value):
            return False
        if self.low is not None and (
            value < self.low or (self.open_low and value == self.low)
        ):
            return False
        return self.high is None or value <= self.high

    def describe(self) -> str:
        """E.g. ``1 ≤ value ≤ 10000`` or ``value > 0``."""
        parts = []
        if self.low is not None:
            parts.append(f"{self.low:g} {'<' if self.open_low else '≤'}")
        parts.append("value")
        if self.high is not None:
            parts.append(f"≤ {self.high:g}")
        return " ".join(parts)


_HORIZON = Bound(1, MAX_HORIZON)
_PROBABILITY = Bound(0.0, 1.0)
_SPEED = Bound(0.0, None, open_low=True)
_COUNT = Bound(0, MAX_COUNT)

OPTION_BOUNDS: dict[str, Bound] = {
    "max_steps": _HORIZON,
    "horizon": _HORIZON,
    "stumble_probability": _PROBABILITY,
    "solidify_probability": _PROBABILITY,
    "enter_bush_success_prob": _PROBABILITY,
    "slip": _PROBABILITY,
    "walk_speed": _SPEED,
    "vehicle_speed": _SPEED,
}
"""Bounds of numeric options by name (a name means one thing in every world); other
integer options are counts within ``0..MAX_COUNT``, other floats must be finite."""

MULTIGRID_OPTIONS: dict[str, type | tuple[type, ...] | None] = {
    "map": (str, list),
    "max_steps": int,
    "possible_goals": list,
    "can_push_rocks": str,
    "action_class": str,
    "orientations": (int, str, list),
    "stumble_probability": float,
    "solidify_probability": float,
    "enter_bush_success_prob": float,
    "can_enter_magic_walls": str,
    "device": str,
    "name": str,
}
"""Options of the built-in MultiGrid worlds (entries of their world files, plus the
``device`` and ``name`` of the world object) and their types; ``multigrid`` (a file
or map string) also takes ``path``, and a builder's own keywords (such as the
``size`` of ``key_door_2h``) are added from its signature."""


def _option_types(name: WorldName) -> dict[str, type | tuple[type, ...] | None]:
    """The options a world's builder accepts and the type of each (``None``: any)."""
    builder = world_builder(name)
    types: dict[str, type | tuple[type, ...] | None] = {}
    if builder.__module__ == _MULTIGRID_MODULE:
        types.update(MULTIGRID_OPTIONS)
        if name is WorldName.MULTIGRID:
            types["path"] = str
            return types
    for parameter in inspect.signature(builder).parameters.values():
        if parameter.kind in (parameter.VAR_POSITIONAL, parameter.VAR_KEYWORD):
            continue
        default = parameter.default
        kind = type(default) if isinstance(default, (bool, int, float, str)) else None
        types[parameter.name] = kind
    return types


def _check_value(path: str, value: Any, kind: Any, bound: Bound | None) -> None:
    """Type and bound of one option value."""
    if kind is None:
        return
    if kind is float:
        kind = (int, float)
    kinds = kind if isinstance(kind, tuple) else (kind,)
    if isinstance(value, bool) and bool not in kinds:
        raise ParameterError(f"{path} = {value!r} must be {_kind_name(kinds)}")
    if not isinstance(value, kinds):
        raise ParameterError(f"{path} = {value!r} must be {_kind_name(kinds)}")
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return
    if bound is None:
        bound = _COUNT if isinstance(value, int) and kinds == (int,) else Bound()
    if not bound.admits(value):
        raise ParameterError(
            f"{path} = {value!r} is out of range; allowed: {bound.describe()}"
        )


def _kind_name(kinds: tuple[type, ...]) -> str:
    names = {int: "an integer", float: "a number", bool: "true or false"}
    names.update({str: "a string", list: "a list"})
    if set(kinds) == {int, float}:
        return "a number"
    return " or ".join(names.get(k, k.__name__) for k in kinds)


def check_world_options(name: WorldName, options: Mapping[str, Any]) -> None:
    """Check option names, types and bounds of a world (nothing is read or built).

    Parameters
    ----------
    name
        The registered world.
    options
        Its ``world.options``.

    Raises
    ------
    ParameterError
        On an unknown option (naming the closest valid ones), a value of the wrong
        type or out of bounds, naming ``world.options.<option>``.
    """
    types = _option_types(name)
    for key, value in options.items():
        path = f"world.options.{key}"
        if key not in types:
            raise ParameterError(
                f"unknown option {path} for world {name.value!r}; "
                f"{closest(str(key), types)}"
            )
        _check_value(path, value, types[key], OPTION_BOUNDS.get(key))


def check_world_inputs(name: WorldName, options: Mapping[str, Any]) -> None:
    """Check what a world reads besides its options: for MultiGrid worlds, that the
    world file exists and that the map, with the options applied, parses.

    Parameters
    ----------
    name
        The registered world.
    options
        Its ``world.options`` (already checked by :func:`check_world_options`).

    Raises
    ------
    ParameterError
        Naming the file or the map cell at fault.
    """
    builder = world_builder(name)
    if builder.__module__ != _MULTIGRID_MODULE:
        return
    from empo.worlds.multigrid.builtin import WORLDS_DIR
    from empo.worlds.multigrid.maps import load_config, parse_config

    entries = {k: v for k, v in options.items() if k in MULTIGRID_OPTIONS}
    entries.pop("device", None)
    entries.pop("name", None)
    source: Any = options.get("path")
    if name is not WorldName.MULTIGRID:
        source = WORLDS_DIR / f"{builder.__name__}.yaml"
        if not source.is_file():
            return  # a map made in code: the builder checks its own keywords
    elif source is None and "map" not in entries:
        raise ParameterError(
            "world 'multigrid' needs world.options.path (a world file) or "
            "world.options.map (a map string)"
        )
    elif isinstance(source, str) and "\n" in source:
        entries.setdefault("map", source)
        source = None
    config: dict[str, Any] = {}
    if source is not None:
        try:
            config = load_config(Path(source))
        except (OSError, ValueError) as error:
            raise ParameterError(f"world.options.path: {error}") from None
    try:
        parse_config({**config, **entries}, source=str(source or "map"))
    except (ValueError, TypeError, KeyError) as error:
        raise ParameterError(f"world.options: {error}") from None


def build_checked_world(world: Any) -> Any:
    """Check a world's inputs (:func:`check_world_inputs`) and build it.

    Parameters
    ----------
    world
        The :class:`~empo.parameters.WorldParameters` of a run.

    Returns
    -------
    object
        The world its builder returns.

    Raises
    ------
    ParameterError
        If an input is missing or malformed, or the builder refuses the options.
    """
    check_world_inputs(world.name, world.options)
    try:
        return build_world(world.name, world.options)
    except (ValueError, TypeError, KeyError, OSError) as error:
        raise ParameterError(
            f"world {world.name.value!r} refuses its options: {error}"
        ) from None
