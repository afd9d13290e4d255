"""Pictures of MultiGrid states: RGB frames, rollout GIFs and power heatmap images.

Frames are drawn with numpy only (no window, no display): each cell is a square tile;
agents are triangles pointing in their direction (humans yellow, robots grey, dimmed
when terminated, with a small key square when carrying one), keys small squares, doors
coloured frames (filled when closed, with a keyhole when locked), blocks brown squares,
rocks grey discs, lava orange, unsteady ground brown with dots, goal cells green.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Sequence

import imageio.v2 as imageio
import numpy as np
import torch
from jaxtyping import Int64
from torch import Tensor

from empo.worlds.multigrid.objects import COLOR_NAMES, COLOR_RGB, DoorState, Terrain

if TYPE_CHECKING:
    from empo.worlds.multigrid.world import MultiGridWorld

TILE = 24
_TERRAIN_RGB = {
    Terrain.EMPTY: (20, 20, 20),
    Terrain.WALL: (100, 100, 100),
    Terrain.GOAL: (0, 160, 0),
    Terrain.LAVA: (255, 128, 0),
    Terrain.UNSTEADY: (110, 80, 40),
    Terrain.DOOR: (20, 20, 20),
}
_YY, _XX = np.mgrid[0:TILE, 0:TILE] / TILE


def _triangle(direction: int) -> np.ndarray:
    """Mask of a triangle pointing east, rotated to ``direction``."""
    u, v = _XX - 0.5, _YY - 0.5
    for _ in range(direction):
        u, v = v, -u
    return (u > -0.3) & (u < 0.35) & (np.abs(v) < 0.35 * (0.35 - u) / 0.65)


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
    square = (np.abs(_XX - 0.5) < 0.3) & (np.abs(_YY - 0.5) < 0.3)
    disc = (_XX - 0.5) ** 2 + (_YY - 0.5) ** 2 < 0.12
    for q in range(lay.n_push):
        cell = s[lay.push_col + q]
        mask, rgb = (square, (139, 90, 43)) if q < lay.n_blocks else (disc, (150,) * 3)
        tiles[cell // w, cell % w][mask] = rgb
    key_mask = (np.abs(_XX - 0.5) < 0.15) & (np.abs(_YY - 0.5) < 0.25)
    for j, (_, _, color) in enumerate(spec.keys):
        cell = s[lay.key_col + j]
        if cell >= 0:
            tiles[cell // w, cell % w][key_mask] = COLOR_RGB[color]
    small = (_XX > 0.7) & (_YY > 0.7)
    for i in range(len(world.agents)):
        pos, d, dead, carry = s[1 + 4 * i : 5 + 4 * i]
        rgb = np.array(COLOR_RGB[spec.agents[i].color])
        if dead:
            rgb = rgb // 3
        tiles[pos // w, pos % w][_triangle(d)] = rgb
        if carry >= 0:
            key_color = COLOR_NAMES[int(lay.key_color[carry])]
            tiles[pos // w, pos % w][small] = COLOR_RGB[key_color]
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
