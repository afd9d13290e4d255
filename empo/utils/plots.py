"""Pictures of a run: power over time, the robot policy, heatmaps and rollout GIFs.

Matplotlib runs with the non-interactive Agg backend; every function writes one file
and returns its path.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import matplotlib

matplotlib.use("Agg")

import imageio.v2 as imageio  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.cm import ScalarMappable  # noqa: E402
from matplotlib.colors import Normalize  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402
import numpy as np  # noqa: E402
from jaxtyping import Float, UInt8  # noqa: E402

from empo.evaluation import Evaluation  # noqa: E402


def plot_power_over_time(evaluation: Evaluation, path: Path) -> Path:
    """Power ``W_h`` (eq. 10) per human along the most likely trajectory and in
    expectation, and the expected robot reward ``U_r`` (eq. 8).

    Parameters
    ----------
    evaluation
        The run's evaluation.
    path
        PNG file to write.
    """
    figure, (ax_w, ax_u) = plt.subplots(1, 2, figsize=(10, 4))
    live = evaluation.final_step() + 1
    steps = np.arange(evaluation.w_h_expected.shape[0])
    for h, name in enumerate(evaluation.humans):
        line = ax_w.plot(
            np.arange(live),
            evaluation.w_h_trajectory[:live, h].numpy(),
            marker="o",
            label=f"{name}, most likely trajectory",
        )[0]
        ax_w.plot(
            steps,
            evaluation.w_h_expected[:, h].numpy(),
            linestyle="--",
            color=line.get_color(),
            label=f"{name}, expected (running episodes)",
        )
    ax_w.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax_w.set_xlabel("time step")
    ax_w.set_ylabel("power $W_h$ [bits]")
    ax_w.set_title("Human power over time")
    ax_w.legend(fontsize="small")
    ax_u.plot(steps, evaluation.u_r_expected.numpy(), label="expected $U_r$")
    ax_u.plot(steps, evaluation.alive.numpy(), label="P(episode running)")
    ax_u.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax_u.set_xlabel("time step")
    ax_u.set_title("Robot reward and survival")
    ax_u.legend(fontsize="small")
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)
    return path


def plot_robot_policy(evaluation: Evaluation, path: Path) -> Path:
    """Bar chart of the robot policy ``π_r(s_0)`` (eq. 5).

    Parameters
    ----------
    evaluation
        The run's evaluation.
    path
        PNG file to write.
    """
    names = list(evaluation.robot_policy_s0)
    figure, ax = plt.subplots(figsize=(max(4, 0.8 * len(names) + 2), 3.5))
    ax.bar(names, list(evaluation.robot_policy_s0.values()))
    ax.set_ylim(0, 1)
    ax.set_ylabel("probability")
    ax.set_title("Robot policy at the initial state")
    plt.setp(ax.get_xticklabels(), rotation=30, ha="right")
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)
    return path


HEATMAP_ALPHA = 0.6
"""Opacity of heatmap colours laid over a picture of the world."""


def overlay(
    values: Float[np.ndarray, "rows cols"],
    background: UInt8[np.ndarray, "height width 3"],
    lo: float,
    hi: float,
    cmap: str = "viridis",
) -> Float[np.ndarray, "height width 3"]:
    """The picture with each valued cell tinted by its colour (RGB in ``[0, 1]``).

    Parameters
    ----------
    values
        ``[rows, cols]`` values, NaN where a cell has none (left as in the picture).
    background
        RGB picture of the grid; its height and width are multiples of ``rows`` and
        ``cols`` (one tile per cell).
    lo, hi
        Values mapped to the ends of the colour map.
    cmap
        Matplotlib colour map name.
    """
    rows, cols = values.shape
    height, width = background.shape[:2]
    if height % rows or width % cols:
        raise ValueError(
            f"the picture ({height}×{width}) does not tile a {rows}×{cols} grid"
        )
    scaled = (values - lo) / max(hi - lo, 1e-12)
    colours = matplotlib.colormaps[cmap](np.nan_to_num(scaled))[..., :3]
    tiles = np.repeat(np.repeat(colours, height // rows, 0), width // cols, 1)
    valued = np.repeat(
        np.repeat(np.isfinite(values), height // rows, 0), width // cols, 1
    )
    picture = np.asarray(background, dtype=float) / 255
    tinted = (1 - HEATMAP_ALPHA) * picture + HEATMAP_ALPHA * tiles
    return np.where(valued[..., None], tinted, picture)


def plot_heatmap(
    values: Float[np.ndarray, "rows cols"],
    title: str,
    path: Path,
    background: UInt8[np.ndarray, "height width 3"] | None = None,
) -> Path:
    """A heatmap of per-cell values, over a picture of the world where one is given.

    With ``background`` (e.g. ``world.render_state`` of the reference state: walls,
    doors, keys and agents) the values tint the picture (:func:`overlay`), so it
    shows through; cells without a value (NaN) show only the picture. Each valued
    cell is labelled with its number.

    Parameters
    ----------
    values
        ``[rows, cols]`` values, NaN where there is no state.
    title
        Figure title.
    path
        PNG file to write.
    background
        Optional RGB picture of the same grid, one tile per cell.
    """
    values = np.asarray(values, dtype=float)
    if values.ndim != 2:
        raise ValueError(f"a heatmap needs a 2-d array, got shape {values.shape}")
    rows, cols = values.shape
    finite = values[np.isfinite(values)]
    lo, hi = (finite.min(), finite.max()) if finite.size else (0.0, 1.0)
    figure, ax = plt.subplots(figsize=(1.5 + 0.7 * cols, 1 + 0.7 * rows))
    extent = (0, cols, rows, 0)
    if background is None:
        ax.imshow(np.ma.masked_invalid(values), cmap="viridis", extent=extent)
    else:
        ax.imshow(overlay(values, background, lo, hi), extent=extent)
    scale = ScalarMappable(Normalize(lo, hi), cmap="viridis")
    figure.colorbar(scale, ax=ax, label="$W_h$ [bits]")
    if rows * cols <= 400:
        for y, x in zip(*np.nonzero(np.isfinite(values))):
            label = f"{values[y, x]:.2f}"
            ax.text(x + 0.5, y + 0.8, label, ha="center", fontsize=7, color="white")
    ax.set_title(title)
    ax.set_xticks([])
    ax.set_yticks([])
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)
    return path


def save_gif(
    frames: Sequence[UInt8[np.ndarray, "height width 3"]], path: Path, fps: float = 2
) -> Path:
    """Write RGB frames as an endlessly looping GIF.

    Parameters
    ----------
    frames
        ``uint8`` images of one shape.
    path
        GIF file to write.
    fps
        Frames per second.
    """
    shapes = {np.asarray(f).shape for f in frames}
    if not frames or len(shapes) != 1:
        raise ValueError(f"GIF frames must be non-empty and of one shape, got {shapes}")
    stack = [np.asarray(f, dtype=np.uint8) for f in frames]
    imageio.mimsave(path, stack, duration=1000 / fps, loop=0)
    return path
