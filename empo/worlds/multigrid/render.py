"""Pictures of MultiGrid states: RGB frames, rollout GIFs and power heatmap images.

Frames are drawn with numpy only (no window, no display): each cell is a square tile;
agents are triangles pointing in their direction (humans yellow, robots grey, dimmed
when terminated, with two white bars when paused, a green corner when a control
button controls them and a green dot while a forced action is pending, and a small
mark of the carried object), keys small bars, balls discs, boxes open squares (in
their colour), doors coloured frames (filled when closed, with a keyhole when
locked), blocks brown squares, rocks grey discs, lava orange, unsteady ground brown
with dots, goal cells green, switch cells red. Bushes are green blobs (brown specks
once trampled); magic walls are walls with a violet bar on the side from which they
can be entered (a violet frame for all sides; plain walls once solidified). Kill
buttons are red with an X, pause switches blue with a pause (on) or play (off) sign,
disabling switches purple with a slashed circle (tinted by what they disable),
control buttons green with a ring (unprogrammed), a dot in the ring (awaiting the
controlled agent's action) or the programmed action's sign; disabled switches and
buttons are drawn grey.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Sequence

import imageio.v2 as imageio
import numpy as np
import torch
from jaxtyping import Int64
from torch import Tensor

from empo.worlds.multigrid.objects import (
    COLOR_NAMES,
    COLOR_RGB,
    ActionKind,
    DoorState,
    Terrain,
)

if TYPE_CHECKING:
    from empo.worlds.multigrid.world import MultiGridWorld

TILE = 24
_FLOOR_RGB = (20, 20, 20)
_TERRAIN_RGB = {
    **dict.fromkeys(Terrain, _FLOOR_RGB),
    Terrain.WALL: (100, 100, 100),
    Terrain.GOAL: (0, 160, 0),
    Terrain.LAVA: (255, 128, 0),
    Terrain.UNSTEADY: (110, 80, 40),
    Terrain.SWITCH: (150, 20, 20),
    Terrain.MAGIC_WALL: (100, 100, 100),
}
"""Background colour of each terrain; doors, bushes, buttons and the other switches
are drawn on the floor (their symbols come on top)."""
_YY, _XX = np.mgrid[0:TILE, 0:TILE] / TILE
_PANEL = (np.abs(_XX - 0.5) < 0.42) & (np.abs(_YY - 0.5) < 0.42)
_SQUARE = (np.abs(_XX - 0.5) < 0.3) & (np.abs(_YY - 0.5) < 0.3)
_DISC = (_XX - 0.5) ** 2 + (_YY - 0.5) ** 2 < 0.12
_BARS = (np.abs(_YY - 0.5) < 0.22) & (
    (np.abs(_XX - 0.38) < 0.05) | (np.abs(_XX - 0.62) < 0.05)
)
_X = (np.abs(_XX - _YY) < 0.06) | (np.abs(_XX + _YY - 1) < 0.06)
_X = _X & _PANEL & (np.abs(_XX - 0.5) < 0.32)
_RING = np.abs(np.sqrt((_XX - 0.5) ** 2 + (_YY - 0.5) ** 2) - 0.24) < 0.05
_DOT = (_XX - 0.5) ** 2 + (_YY - 0.5) ** 2 < 0.01
_SLASH = (np.abs(_XX + _YY - 1) < 0.05) & (np.abs(_XX - 0.5) < 0.2)
_GREY, _WHITE = np.array((90, 90, 90)), np.array((255, 255, 255))


def _triangle(direction: int, size: float = 1.0) -> np.ndarray:
    """Mask of a triangle pointing east, rotated to ``direction``."""
    u, v = (_XX - 0.5) / size, (_YY - 0.5) / size
    for _ in range(direction):
        u, v = v, -u
    return (u > -0.3) & (u < 0.35) & (np.abs(v) < 0.35 * (0.35 - u) / 0.65)


def _action_sign(kind: int) -> np.ndarray:
    """Mask of a small sign for an action kind (programmed control buttons)."""
    signs = {
        ActionKind.LEFT: _triangle(2, 0.6),
        ActionKind.RIGHT: _triangle(0, 0.6),
        ActionKind.FORWARD: _triangle(3, 0.6),
        ActionKind.PICKUP: _DISC & ((_XX - 0.5) ** 2 + (_YY - 0.5) ** 2 < 0.03),
        ActionKind.DROP: _RING,
        ActionKind.TOGGLE: (np.abs(_XX - 0.5) < 0.15) & (np.abs(_YY - 0.5) < 0.15),
    }
    return signs.get(ActionKind(kind), _X)


def _magic(tile: np.ndarray, side: int, active: bool) -> None:
    if not active:
        return
    violet = (170, 90, 230)
    bars = [_XX > 0.85, _YY > 0.85, _XX < 0.15, _YY < 0.15]
    tile[bars[side] if side < 4 else np.logical_or.reduce(bars)] = violet


def _bush(tile: np.ndarray, trampled: bool) -> None:
    if trampled:
        tile[((_XX * 5) % 1 < 0.2) & ((_YY * 3 + _XX) % 1 < 0.2)] = (110, 80, 40)
        return
    blob = (_XX - 0.5) ** 2 + (_YY - 0.55) ** 2 < 0.16
    tile[blob] = (20, 90, 30)
    tile[blob & ((_XX * 4 + _YY * 3) % 1 < 0.35)] = (90, 180, 75)


def _kill(tile: np.ndarray, enabled: bool) -> None:
    tile[_PANEL] = (128, 0, 0) if enabled else _GREY // 3
    tile[_X] = (210, 40, 40) if enabled else (80, 80, 80)


def _pause(tile: np.ndarray, on: bool, enabled: bool) -> None:
    tile[_PANEL] = ((0, 0, 255) if on else (0, 0, 128)) if enabled else _GREY // 3
    sign = _BARS if on else _triangle(0, 0.8)
    tile[sign] = (220, 220, 220) if enabled else (80, 80, 80)


def _disabling(tile: np.ndarray, target: Terrain) -> None:
    purple = np.array(COLOR_RGB["purple"])
    tint = {Terrain.KILL_BUTTON: (255, 0, 0), Terrain.PAUSE_SWITCH: (0, 0, 255)}
    background = purple // 2 + np.array(tint.get(target, purple)) // 4
    tile[_PANEL] = background
    tile[_RING | _SLASH] = _WHITE


def _control(tile: np.ndarray, values: list[int], kinds: list[int]) -> None:
    enabled, _, action, awaiting = values
    if not enabled:
        tile[_PANEL] = _GREY // 2
        return
    tile[_PANEL] = (50, 120, 50) if action >= 0 else (0, 128, 0)
    if action >= 0 and not awaiting:
        tile[_action_sign(kinds[action])] = _WHITE
    else:
        tile[_RING] = (200, 200, 200)
        if awaiting:
            tile[_DOT] = _WHITE


def _fixtures(world: "MultiGridWorld", tiles: np.ndarray, s: list[int]) -> None:
    """Draw bushes, magic walls, switches and buttons in their current state."""
    spec, lay = world.spec, world.layout
    kinds = lay.action_kinds.tolist()
    for kind, placed in spec.fixtures.items():
        for j, (x, y) in enumerate(placed):
            tile = tiles[y, x]
            if kind == Terrain.BUSH:
                _bush(tile, bool(s[lay.bush_col + j]))
            elif kind == Terrain.MAGIC_WALL:
                _magic(tile, spec.magic_sides[j], bool(s[lay.magic_col + j]))
            elif kind == Terrain.KILL_BUTTON:
                _kill(tile, bool(s[lay.kill_col + j]))
            elif kind == Terrain.PAUSE_SWITCH:
                col = lay.pause_col + 2 * j
                _pause(tile, bool(s[col]), bool(s[col + 1]))
            elif kind == Terrain.DISABLING_SWITCH:
                _disabling(tile, spec.disabling_targets[j])
            else:
                col = lay.control_col + 4 * j
                _control(tile, s[col : col + 4], kinds)


def _objects(world: "MultiGridWorld", tiles: np.ndarray, s: list[int]) -> None:
    """Draw blocks, rocks and the pickable objects lying on the floor."""
    spec, lay, w = world.spec, world.layout, world.spec.width
    for q in range(lay.n_push):
        cell = s[lay.push_col + q]
        mask, rgb = (
            (_SQUARE, (139, 90, 43)) if q < lay.n_blocks else (_DISC, (150,) * 3)
        )
        tiles[cell // w, cell % w][mask] = rgb
    shapes = _pickable_shapes(world, small=False)
    for j, (_, _, color) in enumerate(spec.keys + spec.balls + spec.boxes):
        cell = s[lay.key_col + j]
        if cell >= 0:
            tiles[cell // w, cell % w][shapes[j]] = COLOR_RGB[color]


def _pickable_shapes(world: "MultiGridWorld", small: bool) -> list[np.ndarray]:
    """Mask per pickable object (keys, balls, boxes), full size or a small mark in
    the lower right corner (carried)."""
    spec = world.spec
    if small:
        corner = (_XX > 0.7) & (_YY > 0.7)
        ball = (_XX - 0.84) ** 2 + (_YY - 0.84) ** 2 < 0.018
        box = corner & ~((_XX > 0.76) & (_YY > 0.76) & (_XX < 0.94) & (_YY < 0.94))
        key = corner
    else:
        key = (np.abs(_XX - 0.5) < 0.15) & (np.abs(_YY - 0.5) < 0.25)
        ball = (_XX - 0.5) ** 2 + (_YY - 0.5) ** 2 < 0.06
        box = _SQUARE & ~((np.abs(_XX - 0.5) < 0.2) & (np.abs(_YY - 0.5) < 0.2))
    return [key] * len(spec.keys) + [ball] * len(spec.balls) + [box] * len(spec.boxes)


def _agents(world: "MultiGridWorld", tiles: np.ndarray, s: list[int]) -> None:
    spec, lay, w = world.spec, world.layout, world.spec.width
    carried = _pickable_shapes(world, small=True)
    colors = lay.pick_color.tolist()
    controlled = {
        s[col + 1]
        for col in range(lay.control_col, lay.paused_col, 4)
        if s[col + 1] >= 0
    }
    for i in range(len(world.agents)):
        pos, d, dead, carry = s[1 + 4 * i : 5 + 4 * i]
        tile = tiles[pos // w, pos % w]
        rgb = np.array(COLOR_RGB[spec.agents[i].color])
        tile[_triangle(d)] = rgb // 3 if dead else rgb
        if carry >= 0:
            tile[carried[carry]] = COLOR_RGB[COLOR_NAMES[colors[carry]]]
        if lay.n_pause and s[lay.paused_col + i]:
            tile[_BARS] = _WHITE
        if i in controlled:
            tile[(_XX < 0.2) & (_YY < 0.2)] = (0, 200, 0)
        if lay.n_control and s[lay.forced_col + i] >= 0:
            tile[(_XX - 0.85) ** 2 + (_YY - 0.15) ** 2 < 0.01] = (0, 255, 0)


def render_state(
    world: "MultiGridWorld", state: Int64[Tensor, " dim"], tile: int = TILE
) -> np.ndarray:
    """RGB picture (``uint8``, ``height*tile × width*tile × 3``) of one state."""
    spec, lay = world.spec, world.layout
    s = [int(v) for v in state.tolist()]
    w, h = spec.width, spec.height
    tiles = np.zeros((h, w, TILE, TILE, 3), dtype=np.uint8)
    for y in range(h):
        for x in range(w):
            tiles[y, x] = _TERRAIN_RGB[Terrain(spec.terrain[y][x])]
            if spec.terrain[y][x] == Terrain.UNSTEADY:
                dots = ((_XX * 4) % 1 < 0.3) & ((_YY * 4) % 1 < 0.3)
                tiles[y, x][dots] = (180, 140, 90)
            tiles[y, x][(_XX < 0.03) | (_YY < 0.03)] = (60, 60, 60)
    for d, (x, y, color, _) in enumerate(spec.doors):
        rgb = np.array(COLOR_RGB[color])
        state_d = s[lay.door_col + d]
        frame = (_XX < 0.1) | (_XX > 0.9) | (_YY < 0.1) | (_YY > 0.9)
        if state_d != DoorState.OPEN:
            tiles[y, x][:] = rgb // 2
            if state_d == DoorState.LOCKED:
                hole = (np.abs(_XX - 0.75) < 0.06) & (np.abs(_YY - 0.5) < 0.12)
                tiles[y, x][hole] = 0
        tiles[y, x][frame] = rgb
    _fixtures(world, tiles, s)
    _objects(world, tiles, s)
    _agents(world, tiles, s)
    image = tiles.transpose(0, 2, 1, 3, 4).reshape(h * TILE, w * TILE, 3)
    if tile != TILE:
        rows = np.arange(h * tile) * TILE // tile
        cols = np.arange(w * tile) * TILE // tile
        image = image[rows][:, cols]
    return image


def write_gif(
    world: "MultiGridWorld",
    states: Sequence[Int64[Tensor, " dim"]] | Int64[Tensor, "time dim"],
    path: str,
    fps: float = 2.0,
) -> None:
    """Write an animated GIF (one frame per state) with imageio."""
    rows = states if isinstance(states, torch.Tensor) else torch.stack(list(states))
    frames = [render_state(world, row) for row in rows]
    imageio.mimsave(path, frames, duration=1000.0 / fps, loop=0)


def heatmap_image(values: np.ndarray, tile: int = TILE) -> np.ndarray:
    """RGB picture of a ``[rows, cols]`` heatmap (NaN cells black, low blue, high
    red)."""
    finite = np.isfinite(values)
    lo = values[finite].min() if finite.any() else 0.0
    hi = values[finite].max() if finite.any() else 1.0
    scaled = np.where(finite, (values - lo) / max(hi - lo, 1e-12), 0.0)
    rgb = np.stack([scaled, 0.2 * np.ones_like(scaled), 1.0 - scaled], axis=-1)
    rgb = np.where(finite[..., None], rgb * 255, 0).astype(np.uint8)
    return np.repeat(np.repeat(rgb, tile, axis=0), tile, axis=1)
