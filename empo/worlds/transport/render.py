"""Drawing transport states: one PNG-ready RGB array per state, GIFs of rollouts.

Roads are grey lines (dashed where only vehicles may drive, dotted where only
humans may walk), nodes are labelled circles, vehicles are squares with their load
written inside, humans are coloured dots around their node (inside their vehicle's
square when aboard). Agents in transit are drawn along their edge, at the fraction
of the way already travelled.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import imageio.v2 as imageio
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
from jaxtyping import Int64  # noqa: E402
from torch import Tensor  # noqa: E402

from empo.worlds.transport.dynamics import (  # noqa: E402
    POSITION_FIELDS,
    TransportWorld,
)

HUMAN_COLOURS = ("tab:red", "tab:green", "tab:purple", "tab:orange", "tab:brown")


def _place(
    world: TransportWorld,
    positions: np.ndarray,
    parts: dict[str, Any],
    who: str,
    index: int,
) -> np.ndarray:
    """Drawing position of vehicle or human ``index`` (``who``) of a split state: its
    node, or ``remaining`` of its edge's drive or walk steps from the edge's end."""
    node, edge, remaining = (parts[f"{who}_{f}"][index] for f in POSITION_FIELDS)
    if edge < 0:
        return positions[node]
    steps = world.drive_steps if who == "vehicle" else world.walk_steps
    net = world.network
    done = 1.0 - remaining / max(int(steps[edge]), 1)
    start, end = positions[int(net.source[edge])], positions[int(net.target[edge])]
    return start + done * (end - start)


def render_state(
    world: TransportWorld,
    state: Int64[Tensor, " dim"],
    size: tuple[int, int] = (480, 480),
    title: str | None = None,
) -> np.ndarray:
    """Draw one state.

    Parameters
    ----------
    world
        The transport world.
    state
        One state ``[state_dim]``.
    size
        Image width and height in pixels.
    title
        Title (default: the time step).

    Returns
    -------
    numpy.ndarray
        ``uint8`` image of shape ``(height, width, 3)``.
    """
    net = world.network
    pos = net.positions.numpy()
    parts = {
        k: v[0].tolist() for k, v in world.split(state.reshape(1, -1).cpu()).items()
    }
    dpi = 100
    fig = plt.figure(figsize=(size[0] / dpi, size[1] / dpi), dpi=dpi)
    ax = fig.add_axes((0.02, 0.08, 0.96, 0.84))
    ax.set_axis_off()
    ax.set_aspect("equal")
    span = max(float(np.ptp(pos[:, 0])), float(np.ptp(pos[:, 1])), 1e-6)
    pad = 0.22 * span
    ax.set_xlim(pos[:, 0].min() - pad, pos[:, 0].max() + pad)
    ax.set_ylim(pos[:, 1].min() - pad, pos[:, 1].max() + pad)
    pairs = set(zip(net.source.tolist(), net.target.tolist()))
    for e in range(net.num_edges):
        u, v = int(net.source[e]), int(net.target[e])
        style = (
            "-"
            if net.walkable[e] and net.drivable[e]
            else ("--" if net.drivable[e] else ":")
        )
        start, end = pos[u].copy(), pos[v].copy()
        if (v, u) in pairs:
            direction = (end - start) / max(np.linalg.norm(end - start), 1e-9)
            shift = 0.025 * span * np.array([direction[1], -direction[0]])
            start, end = start + shift, end + shift
        ax.annotate(
            "",
            xy=end,
            xytext=start,
            arrowprops=dict(
                arrowstyle="-|>",
                linestyle=style,
                color="0.55",
                lw=1.8,
                shrinkA=14,
                shrinkB=14,
                mutation_scale=14,
            ),
            zorder=1,
        )
    ax.scatter(pos[:, 0], pos[:, 1], s=300, color="white", edgecolors="0.3", zorder=2)
    for n, name in enumerate(net.node_names):
        ax.annotate(
            name,
            pos[n] - np.array([0.0, 0.09 * span]),
            ha="center",
            va="center",
            fontsize=9,
            zorder=3,
        )
    ax.text(
        0.5,
        -0.01,
        "square: vehicle (passengers)   dot: human\n"
        "solid: road + footpath   dashed: road   dotted: footpath",
        transform=ax.transAxes,
        ha="center",
        va="top",
        fontsize=7,
        color="0.35",
    )
    offset = 0.08 * span
    vehicle_xy = [
        _place(world, pos, parts, "vehicle", v)
        + np.array([offset * (1 + 1.6 * v), offset])
        for v in range(world.n_vehicles)
    ]
    for v, xy in enumerate(vehicle_xy):
        load = sum(1 for h in parts["human_vehicle"] if h == v)
        ax.scatter(*xy, marker="s", s=420, color="tab:blue", alpha=0.8, zorder=4)
        ax.annotate(str(load), xy, ha="center", va="center", color="white", zorder=5)
    for h in range(world.n_humans):
        colour = HUMAN_COLOURS[h % len(HUMAN_COLOURS)]
        vehicle = parts["human_vehicle"][h]
        if vehicle >= 0:
            xy = vehicle_xy[vehicle] + np.array([0.0, 0.07 * span * (h + 1)])
        else:
            xy = _place(world, pos, parts, "human", h) + np.array(
                [-offset, -offset + 0.04 * span * h]
            )
        ax.scatter(*xy, s=120, color=colour, edgecolors="black", zorder=6)
    ax.set_title(f"t = {parts['t']}" if title is None else title, fontsize=10)
    fig.canvas.draw()
    image = np.asarray(fig.canvas.buffer_rgba())[..., :3].copy()
    plt.close(fig)
    return image


def save_gif(
    world: TransportWorld,
    states: Sequence[Int64[Tensor, " dim"]] | Int64[Tensor, "time dim"],
    path: str | Path,
    fps: float = 2.0,
    titles: Sequence[str] | None = None,
) -> Path:
    """Write a GIF with one frame per state.

    Parameters
    ----------
    world
        The transport world.
    states
        The states, in order.
    path
        Output file.
    fps
        Frames per second.
    titles
        Optional title per frame.
    """
    frames = [
        render_state(
            world, torch.as_tensor(s), title=None if titles is None else titles[i]
        )
        for i, s in enumerate(states)
    ]
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    imageio.mimsave(path, frames, duration=1.0 / fps, loop=0)
    return path
