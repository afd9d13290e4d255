"""Pictures of every MultiGrid object: frames change with the objects' states, GIFs
and power heatmaps work on maps with switches and buttons."""

import imageio.v2 as imageio
import numpy as np
import torch

from empo.worlds.compiler import compile_world
from empo.worlds.multigrid.builtin import from_file
from empo.worlds.multigrid.render import TILE

ALL = "\n".join(
    [
        "We We We We We We We We We We",
        "We Bl Ro Bu La Sw Un .. Mn We",
        "We Gr Kr Br Xr Bu Ki Ps Ma We",
        "We Lr Cr Or Dk dP DC CB Ms We",
        "We Ay .. Ae .. Ae Bu Pa CB We",
        "We We We We We We We We We We",
    ]
)


def pixel(frame: np.ndarray, x: int, y: int, dx: float = 0.5, dy: float = 0.5):
    return tuple(int(v) for v in frame[int((y + dy) * TILE), int((x + dx) * TILE)])


def test_every_object_is_drawn_in_its_state() -> None:
    world = from_file(map=ALL, orientations=["e", "s", "n"], can_enter_magic_walls="e")
    lay = world.layout
    s0 = world.initial_states()[0]
    frame = world.render_state(s0)
    assert frame.shape == (6 * TILE, 10 * TILE, 3)
    assert pixel(frame, 3, 2) == (255, 0, 0)  # red ball
    assert pixel(frame, 4, 2, 0.25, 0.5) == (255, 0, 0)  # red box outline
    assert pixel(frame, 4, 2) == (20, 20, 20)  # an open square
    assert pixel(frame, 5, 1, 0.1, 0.5) == (150, 20, 20)  # switch cell
    assert pixel(frame, 7, 2) == (0, 0, 255) or pixel(frame, 7, 2)[2] > 100
    assert pixel(frame, 8, 1, 0.5, 0.05) == (170, 90, 230)  # magic side: north
    changed = s0.clone()
    changed[lay.bush_col] = 1  # bush (3,1) trampled
    changed[lay.magic_col] = 0  # Mn solidified
    changed[lay.kill_col] = 0  # kill button disabled
    changed[lay.pause_col] = 1  # pause switch (7,2) on
    changed[lay.control_col + 2] = 3  # control button (7,3) programmed: forward
    changed[lay.paused_col + 1] = 1  # robot 0 paused
    after = world.render_state(changed)
    for x, y in [(3, 1), (8, 1), (6, 2), (7, 2), (7, 3), (3, 4)]:
        assert not np.array_equal(
            frame[y * TILE : (y + 1) * TILE, x * TILE : (x + 1) * TILE],
            after[y * TILE : (y + 1) * TILE, x * TILE : (x + 1) * TILE],
        ), (x, y)
    assert pixel(after, 8, 1, 0.5, 0.05) == (100, 100, 100)  # now a plain wall
    assert pixel(after, 3, 4, 0.38, 0.5) == (255, 255, 255)  # pause bars


def test_gif_and_heatmap_on_a_switch_world(tmp_path) -> None:
    world = from_file(
        map="We We We We We\nWe Ay Ki Ae We\nWe .. dK .. We\nWe We We We We",
        orientations=["e", "s"],
        max_steps=3,
    )
    compiled = compile_world(world)
    table = compiled.state_table
    frames = [world.initial_states()[0]]
    for joint in ([0, 3], [6, 0]):  # the robot steps south, the human kills it
        nxt, _ = world.transitions(frames[-1].unsqueeze(0), torch.tensor([joint]))
        frames.append(nxt[0, 0])
    assert world.decode(frames[-1])["agents"][1]["terminated"]
    gif = tmp_path / "rollout.gif"
    world.write_gif(frames, str(gif))
    assert len(imageio.mimread(gif)) == 3
    w_h = table[:, 1:2].double()  # "power" = the human's cell
    heat = world.power_heatmap(compiled, w_h, human=0, reference_state=0)
    assert heat.shape == (4, 5)
    assert heat[1, 1] == 6.0 and heat[2, 1] == 11.0  # the human's cells
    assert np.isnan(heat[1, 2])  # the kill button: never stood on
