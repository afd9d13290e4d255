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


def plot_heatmap(
    values: Float[np.ndarray, "rows cols"], title: str, path: Path
) -> Path:
    """A heatmap of per-cell values; NaN cells (no state) are left blank.

    Parameters
    ----------
    values
        ``[rows, cols]`` values, NaN where there is no state.
    title
        Figure title.
    path
        PNG file to write.
    """
    values = np.asarray(values, dtype=float)
    if values.ndim != 2:
        raise ValueError(f"a heatmap needs a 2-d array, got shape {values.shape}")
    figure, ax = plt.subplots(
        figsize=(1 + 0.5 * values.shape[1], 1 + 0.5 * values.shape[0])
    )
    image = ax.imshow(np.ma.masked_invalid(values), cmap="viridis")
    figure.colorbar(image, ax=ax, label="$W_h$ [bits]")
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
