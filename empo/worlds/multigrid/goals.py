"""Possible goals of MultiGrid humans: reach a cell or a rectangle of cells.

A goal is the set of states in which the human stands in a given rectangle of cells
(a single cell is a 1×1 rectangle), with a weight ``w_h(g) > 0`` (THEORY.md, "The world
model"; default 1). Goals come from a YAML file's ``possible_goals`` (the same list for
every human, as in the research code) or, by default, one goal per cell a human can
stand on (not a wall, lava, switch object or magic wall; bushes included, since
humans enter them; magic walls too where a yellow agent may enter them).
"""

from __future__ import annotations

import torch
from jaxtyping import Bool
from torch import Tensor

from empo.worlds.multigrid.maps import GoalSpec, WorldSpec
from empo.worlds.multigrid.objects import Terrain

_NEVER_STOOD_ON = (
    Terrain.WALL,
    Terrain.LAVA,
    Terrain.KILL_BUTTON,
    Terrain.PAUSE_SWITCH,
    Terrain.DISABLING_SWITCH,
    Terrain.CONTROL_BUTTON,
)


def walkable_cells(spec: WorldSpec) -> list[tuple[int, int]]:
    """Cells that ``possible_goals`` must cover, row-major: as in the research code,
    all but walls, lava, bushes, magic walls and switch objects."""
    blocked = _NEVER_STOOD_ON + (Terrain.BUSH, Terrain.MAGIC_WALL)
    return [
        (x, y)
        for y in range(spec.height)
        for x in range(spec.width)
        if spec.terrain[y][x] not in blocked
    ]


def default_goals(spec: WorldSpec) -> list[GoalSpec]:
    """One single-cell goal per cell a human can stand on (see the module
    docstring)."""
    blocked = _NEVER_STOOD_ON
    if not any(a.color == "yellow" and a.can_enter_magic_walls for a in spec.agents):
        blocked = blocked + (Terrain.MAGIC_WALL,)
    return [
        GoalSpec(x, y, x, y)
        for y in range(spec.height)
        for x in range(spec.width)
        if spec.terrain[y][x] not in blocked
    ]


def check_goals(spec: WorldSpec, goals: list[GoalSpec]) -> None:
    """Refuse goals outside the grid or leaving walkable cells uncovered.

    The research code requires ``possible_goals`` to cover every walkable cell; so do
    we, naming the uncovered cells.
    """
    for goal in goals:
        if (
            goal.x1 < 0
            or goal.y1 < 0
            or goal.x2 >= spec.width
            or goal.y2 >= spec.height
        ):
            raise ValueError(
                f"{spec.source}: goal {goal.name} lies outside the "
                f"{spec.width}x{spec.height} grid"
            )
    uncovered = [
        (x, y)
        for x, y in walkable_cells(spec)
        if not any(g.x1 <= x <= g.x2 and g.y1 <= y <= g.y2 for g in goals)
    ]
    if uncovered:
        cells = ", ".join(f"({x},{y})" for x, y in uncovered)
        raise ValueError(
            f"{spec.source}: possible_goals do not cover the walkable cells {cells}"
        )


def goal_cell_mask(spec: WorldSpec, goals: list[GoalSpec]) -> Bool[Tensor, "goal cell"]:
    """``[goal, cells + 2]``: which cells each goal contains (the two extra cells,
    "outside" and "carried", belong to no goal)."""
    mask = torch.zeros(len(goals), spec.width * spec.height + 2, dtype=torch.bool)
    for g, goal in enumerate(goals):
        for y in range(goal.y1, goal.y2 + 1):
            for x in range(goal.x1, goal.x2 + 1):
                mask[g, y * spec.width + x] = True
    return mask
