"""Rendering: images of the right shape that change with the state, and GIFs."""

from pathlib import Path

import imageio.v2 as imageio
import numpy as np
import torch

from empo.worlds.transport.builtin import small


def test_transport_render_state_image() -> None:
    world = small(n_humans=2)
    s0 = world.initial_states()[0]
    image = world.render_state(s0)
    assert image.shape == (480, 480, 3) and image.dtype == np.uint8
    # drive to the market with human 0 aboard: the picture changes
    nxt, _ = world.transitions(s0.unsqueeze(0), torch.tensor([[3, 0, 1]]))
    moved = world.render_state(nxt[0, 0])
    assert moved.shape == image.shape
    assert (moved != image).any(-1).sum() > 500


def test_transport_gif(tmp_path: Path) -> None:
    world = small()
    s0 = world.initial_states()[0]
    nxt, _ = world.transitions(s0.unsqueeze(0), torch.tensor([[3, 1]]))
    path = world.save_gif([s0, nxt[0, 0]], tmp_path / "ride.gif")
    frames = imageio.mimread(path)
    assert len(frames) == 2 and frames[0].shape[:2] == (480, 480)
