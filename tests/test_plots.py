"""Heatmaps drawn over a picture of the world."""

from __future__ import annotations

from pathlib import Path

import imageio.v2 as imageio
import matplotlib
import numpy as np
import pytest

from empo.utils.plots import HEATMAP_ALPHA, overlay, plot_heatmap
from empo.worlds.registry import build_world


def test_overlay_tints_valued_cells_and_leaves_the_rest() -> None:
    values = np.array([[np.nan, 1.0, 3.0], [2.0, np.nan, np.nan]])
    background = np.zeros((4, 6, 3), dtype=np.uint8)  # 2×2-pixel tiles
    background[:, :, 0] = 200
    out = overlay(values, background, lo=1.0, hi=3.0)
    picture = background / 255
    np.testing.assert_allclose(out[0:2, 0:2], picture[0:2, 0:2])  # NaN: picture
    np.testing.assert_allclose(out[2:4, 2:6], picture[2:4, 2:6])
    viridis = matplotlib.colormaps["viridis"]
    for (y, x), scaled in {(0, 1): 0.0, (0, 2): 1.0, (1, 0): 0.5}.items():
        colour = np.array(viridis(scaled)[:3])
        tinted = (1 - HEATMAP_ALPHA) * picture[2 * y, 2 * x] + HEATMAP_ALPHA * colour
        np.testing.assert_allclose(
            out[2 * y : 2 * y + 2, 2 * x : 2 * x + 2],
            np.broadcast_to(tinted, (2, 2, 3)),
        )
    with pytest.raises(ValueError, match="does not tile a 2×3 grid"):
        overlay(values, background[:, :5], 1.0, 3.0)


def test_heatmap_over_a_rendered_multigrid_state(tmp_path: Path) -> None:
    world = build_world("key_door")
    state = world.initial_states()[0]
    picture = world.render_state(state)
    values = np.full((world.spec.height, world.spec.width), np.nan)
    values[1, 1], values[2, 1] = 0.5, 1.5
    path = plot_heatmap(values, "test", tmp_path / "h.png", background=picture)
    image = imageio.imread(path)
    assert image.ndim == 3 and image.shape[0] > 100
    wall = np.array([100, 100, 100])  # the wall colour of the rendered map
    assert (np.abs(image[..., :3].astype(int) - wall).sum(-1) == 0).sum() > 1000
