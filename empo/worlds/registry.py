"""Registry of built-in worlds, selectable by name in ``Parameters(world=...)``.

Each entry maps a :class:`WorldName` to a builder ``"module:function"``; the module is
imported only when that world is built, so heavy worlds cost nothing until used. A
builder takes keyword options (``Parameters.world.options``) and returns a world
object: a :class:`~empo.worlds.tabular.TabularWorld`, a
:class:`~empo.worlds.base.WorldModel` or a
:class:`~empo.worlds.compiled.CompiledWorld`. :func:`compile_any` turns any of them
into the compiled form.
"""

from __future__ import annotations

import importlib
from enum import Enum
from typing import Any, Callable

import torch

from empo.worlds.compiled import CompiledWorld


class WorldName(str, Enum):
    """Names of the registered built-in worlds."""

    COMMITMENT = "commitment"
    MENU_SIZE = "menu_size"
    CONFIRMATION = "confirmation"
    RESOURCE_SPLIT = "resource_split"
    PAUSE_DESTROY = "pause_destroy"
    KEY_DOOR = "key_door"
    KEY_DOOR_2H = "key_door_2h"
    KEY_DOOR_HALL = "key_door_hall"
    OFF_SWITCH = "off_switch"
    PAUSE_SWITCH = "pause_switch"
    CORRIDOR = "corridor"
    ROCK = "rock"
    TWO_HUMANS_DOOR = "two_humans_door"
    LAVA = "lava"
    UNSTEADY = "unsteady"
    MULTIGRID = "multigrid"
    TRANSPORT_SMALL = "transport_small"
    TRANSPORT_LARGE = "transport_large"


_BUILDERS: dict[WorldName, str] = {
    WorldName.COMMITMENT: "empo.worlds.paradigms:commitment",
    WorldName.MENU_SIZE: "empo.worlds.paradigms:menu_size",
    WorldName.CONFIRMATION: "empo.worlds.paradigms:confirmation",
    WorldName.RESOURCE_SPLIT: "empo.worlds.paradigms:resource_split",
    WorldName.PAUSE_DESTROY: "empo.worlds.paradigms:pause_destroy",
    WorldName.KEY_DOOR: "empo.worlds.multigrid.builtin:key_door",
    WorldName.KEY_DOOR_2H: "empo.worlds.multigrid.builtin:key_door_2h",
    WorldName.KEY_DOOR_HALL: "empo.worlds.multigrid.builtin:key_door_hall",
    WorldName.OFF_SWITCH: "empo.worlds.multigrid.builtin:off_switch",
    WorldName.PAUSE_SWITCH: "empo.worlds.multigrid.builtin:pause_switch",
    WorldName.CORRIDOR: "empo.worlds.multigrid.builtin:corridor",
    WorldName.ROCK: "empo.worlds.multigrid.builtin:rock",
    WorldName.TWO_HUMANS_DOOR: "empo.worlds.multigrid.builtin:two_humans_door",
    WorldName.LAVA: "empo.worlds.multigrid.builtin:lava",
    WorldName.UNSTEADY: "empo.worlds.multigrid.builtin:unsteady",
    WorldName.MULTIGRID: "empo.worlds.multigrid.builtin:from_file",
    WorldName.TRANSPORT_SMALL: "empo.worlds.transport.builtin:small",
    WorldName.TRANSPORT_LARGE: "empo.worlds.transport.builtin:large",
}


def world_builder(name: WorldName | str) -> Callable[..., Any]:
    """The builder function of a registered world (its module is imported now).

    Parameters
    ----------
    name
        A :class:`WorldName` or its string value.

    Raises
    ------
    ValueError
        If the name is not registered; the message lists the registered names.
    """
    try:
        key = WorldName(name)
    except ValueError:
        allowed = ", ".join(w.value for w in WorldName)
        raise ValueError(f"unknown world {name!r}; registered worlds: {allowed}")
    module_name, function_name = _BUILDERS[key].split(":")
    return getattr(importlib.import_module(module_name), function_name)


def build_world(name: WorldName | str, options: dict[str, Any] | None = None) -> Any:
    """Build a registered world.

    Parameters
    ----------
    name
        A :class:`WorldName` or its string value.
    options
        Keyword options of the world's builder.

    Returns
    -------
    object
        The world object the builder returns.

    Raises
    ------
    ValueError
        If the name is not registered; the message lists the registered names.
    """
    return world_builder(name)(**(options or {}))


def compile_any(
    world: Any,
    *,
    device: torch.device | str | None = None,
    dtype: torch.dtype = torch.float64,
) -> CompiledWorld:
    """Return the compiled form of any world object.

    Parameters
    ----------
    world
        A :class:`CompiledWorld`, an object with a ``compile(device=, dtype=)`` method
        (tabular worlds) or a :class:`~empo.worlds.base.WorldModel`.
    device, dtype
        Where and in which float precision the compiled tensors live.
    """
    if isinstance(world, CompiledWorld):
        return world.to(device=device, dtype=dtype)
    if hasattr(world, "compile"):
        return world.compile(device=device, dtype=dtype)
    from empo.worlds.compiler import compile_world

    return compile_world(world, device=device, dtype=dtype)
