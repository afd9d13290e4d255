"""Enumeration (BFS compiler), exact solution of the key-and-door world, pictures."""

import math

import imageio.v2 as imageio
import numpy as np
import pytest
import torch

from empo.worlds.compiler import compile_world
from empo.worlds.multigrid.builtin import from_file, key_door
from empo.worlds.multigrid.objects import DoorState
from empo.worlds.multigrid.render import heatmap_image
from empo.worlds.registry import build_world


def test_bfs_state_count_of_a_tiny_world() -> None:
    """A lone human in a three-cell corridor, horizon 2: 1 + 4 + 8 states by hand."""
    world = from_file(
        map="We We We We We\nWe Ay .. .. We\nWe We We We We",
        action_class="SmallActions",
        max_steps=2,
    )
    compiled = compile_world(world)
    assert compiled.state_table.shape == (13, world.state_dim)
    assert int(compiled.terminal.sum()) == 8
    assert compiled.probabilities.sum(-1)[~compiled.terminal].allclose(
        torch.ones(5, 4, dtype=compiled.probabilities.dtype)
    )


def test_registry_builds_the_builtin_worlds() -> None:
    names = ("key_door", "corridor", "rock", "two_humans_door", "lava", "unsteady")
    for name in names + ("off_switch", "pause_switch"):
        world = build_world(name)
        assert len(world.humans) >= 1 and len(world.robots) == 1
    assert build_world("key_door", {"max_steps": 5}).max_steps == 5


def test_pictures(tmp_path) -> None:
    world = from_file(
        map="We We We We We\nWe Ay .. Kr We\nWe We We We We",
        action_class="ObjectActions",
        max_steps=2,
    )
    frame = world.render_state(world.initial_states()[0])
    assert frame.shape == (72, 120, 3) and frame.dtype == np.uint8
    assert tuple(frame[24 + 12, 24 + 12]) == (255, 255, 0)  # the human's triangle
    assert tuple(frame[24 + 12, 72 + 12]) == (255, 0, 0)  # the red key
    compiled = compile_world(world)
    gif = tmp_path / "rollout.gif"
    frames = world.initial_states().repeat(3, 1)
    frames[1:, 2] = torch.tensor([1, 2])  # the human turns: three distinct pictures
    world.write_gif(frames, str(gif))
    assert len(imageio.mimread(gif)) == 3
    table = compiled.state_table
    w_h = table[:, 2:3].double()  # "power" = the human's direction
    reference = int(((table[:, 0] == 1) & (table[:, 1] == 7)).nonzero()[0, 0])
    heat = world.power_heatmap(compiled, w_h, human=0, reference_state=reference)
    assert heat.shape == (3, 5)
    assert heat[1, 1] == 3.0 and heat[1, 2] == 0.0  # t=1: turned (0, 1, 3) / moved
    assert np.isnan(heat[0, 0]) and np.isnan(heat[1, 3])
    picture = heatmap_image(heat, tile=4)
    assert picture.shape == (12, 20, 3)
    assert tuple(picture[0, 0]) == (0, 0, 0)  # no matching state: black
    assert tuple(picture[4, 4]) == (255, 51, 0)  # highest value: red


@pytest.mark.slow
def test_key_door_solved_exactly() -> None:
    """The robot fetches the key, unlocks the door and leaves the doorway free."""
    from empo.exact import solve
    from empo.parameters.theory import TheoryParameters

    world = key_door()
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # many small ops: threading only adds overhead here
    try:
        compiled = compile_world(world)
        solution = solve(compiled, TheoryParameters())
    finally:
        torch.set_num_threads(threads)
    assert compiled.num_states == 82658
    x_h = solution.phase2["x_h"][:, 0]
    pi_r = solution.phase2["pi_r"]
    state, path = 0, [0]
    for _ in range(11):  # human "still" (joint index = robot action), robot's argmax
        joint = int(pi_r[state].argmax())
        row = compiled.probabilities[state, joint]
        state = int(compiled.successors[state, joint, int(row.argmax())])
        path.append(state)
    decoded = [world.decode(compiled.state_table[s]) for s in path]
    carried = [d["agents"][1]["carrying"] == 0 for d in decoded]
    opened = [d["doors"] == ["open"] for d in decoded]
    assert carried.index(True) < opened.index(True) <= 8
    assert decoded[-1]["agents"][1]["pos"] not in {(2, 2), (3, 2)}  # doorway free
    w_start, w_end = math.log2(float(x_h[0])), math.log2(float(x_h[path[-1]]))
    assert w_start < 1.0 and w_end > 2.0
    rollout = world.likely_rollout(compiled, solution.joint_policy())
    assert len(rollout) == world.max_steps + 1
    assert bool(compiled.terminal[rollout[-1]])
    assert world.decode(compiled.state_table[rollout[-1]])["doors"] == ["open"]
    w_h = torch.log2(solution.phase2["x_h"])
    heat = world.power_heatmap(compiled, w_h, human=0, reference_state=0)
    inside = heat[~np.isnan(heat)]
    assert inside.size == 2  # the two cells of the human's room, reached by walking
    assert heat[tuple(reversed(decoded[0]["agents"][0]["pos"]))] == pytest.approx(
        w_start
    )


@pytest.mark.slow
@pytest.mark.parametrize("name", ["off_switch", "pause_switch"])
def test_off_switch_robot_defers_to_a_rational_human(name: str) -> None:
    """The argmax robot (β_r = ∞) on the way to unlocking the human's door disables
    the human's button when the human is nearly random (β_h = 1), and leaves it
    usable when the human is rational (β_h = 10) (horizon 12: 19,774 states)."""
    from empo.exact import solve
    from empo.parameters.theory import TheoryParameters

    world = build_world(name, {"max_steps": 12})
    lay = world.layout
    switch = lay.kill_col if lay.n_kill else lay.pause_col + 1
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        compiled = compile_world(world)
        paths = {}
        for beta_h in (1.0, 10.0):
            theory = TheoryParameters(beta_h=beta_h, beta_r=float("inf"))
            solution = solve(compiled, theory)
            paths[beta_h] = world.likely_rollout(compiled, solution.joint_policy())
    finally:
        torch.set_num_threads(threads)
    assert compiled.num_states == 19774
    table = compiled.state_table
    for beta_h, enabled_at_end in ((1.0, 0), (10.0, 1)):
        path = paths[beta_h]
        assert int(table[path[-1], switch]) == enabled_at_end
        assert int(table[path[-1], lay.door_col]) == DoorState.OPEN
