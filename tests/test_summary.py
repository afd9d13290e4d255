"""The run summary: text drawings of states, the trajectory and the power table."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from empo import run_experiment
from empo.summary import compress_actions, format_summary, peak, side_by_side
from empo.worlds.registry import build_world

KEY_DOOR_START = [
    "## ## ## ## ## ##",
    "## Hv ## .. .. ##",
    "## .. Lr .. Kr ##",
    "## ## ## R^ .. ##",
    "## ## ## ## ## ##",
]


def test_multigrid_initial_state_is_drawn_as_its_map() -> None:
    world = build_world("key_door")
    assert world.draw_text(world.initial_states()[0]) == KEY_DOOR_START


def test_multigrid_drawing_shows_open_door_carried_key_and_terminated_agent() -> None:
    world = build_world("key_door")
    state = world.initial_states()[0].clone()
    lay = world.layout
    # human0 (agent 0) terminated facing west; robot0 (agent 1) carries the key
    state[3], state[2] = 1, 2
    state[1 + 4 + 3] = 0
    state[lay.key_col] = -1
    state[lay.door_col] = 0  # DoorState.OPEN
    assert world.draw_text(state) == [
        "## ## ## ## ## ##",
        "## h< ## .. .. ##",
        "## .. Or .. .. ##",
        "## ## ## R^ .. ##",
        "## ## ## ## ## ##",
        "human0 terminated",
        "robot0 carries Kr",
    ]


def test_transport_state_is_a_line_per_vehicle_and_human() -> None:
    world = build_world("transport_small")
    assert world.draw_text(world.initial_states()[0]) == [
        "t = 0",
        "vehicle_0: at home, 1 seat(s)",
        "human_0: at home",
    ]
    # t=2: the vehicle on home->market (edge 0), 1 step left, carrying the human
    riding = torch.tensor([2, 0, -1, 0, 0, -1, 0, 1])
    assert world.draw_text(riding) == [
        "t = 2",
        "vehicle_0: on home->market (1 step left), 1 seat(s), carries human_0",
        "human_0: in vehicle_0",
    ]
    walking = torch.tensor([1, -1, 4, 1, -1, 0, -1, 0])
    assert world.draw_text(walking)[2] == "human_0: walking market->home (1 step left)"


def test_compress_actions_counts_runs() -> None:
    assert compress_actions(["a", "a", "b", "a", "a", "a"]) == "a×2 b a×3"
    assert compress_actions([]) == ""


def test_side_by_side_places_or_stacks_blocks() -> None:
    blocks = [("one", ["ab", "c"]), ("two", ["d"])]
    assert side_by_side(blocks) == "one    two\nab     d\nc"
    assert side_by_side(blocks, width=5) == "one\n  ab\n  c\ntwo\n  d"


def test_peak_skips_nan_and_takes_the_first_maximum() -> None:
    values = torch.tensor([1.0, float("nan"), 3.0, 3.0, 2.0])
    assert peak(values) == (2, 3.0)
    with pytest.raises(ValueError, match="no finite value"):
        peak(torch.tensor([float("nan")]))


def test_summary_draws_start_peak_end_and_reports_power(tmp_path: Path) -> None:
    result = run_experiment(
        {"world": "corridor"}, output_dir=tmp_path, wandb_mode="disabled"
    )
    text = format_summary(result)
    ev = result.evaluation
    world, table = result.world, result.tables.world.state_table
    final = ev.final_step()
    w_path = ev.w_h_trajectory[: final + 1, 0]
    top = int(w_path.argmax())
    end = len(ev.trajectory) - 1
    start_map = world.draw_text(table[ev.trajectory[0]])
    peak_map = world.draw_text(table[ev.trajectory[top]])
    end_map = world.draw_text(table[ev.trajectory[end]])
    header = f"start (t=0)    peak (t={top})    end (t={end})"
    lines = text.splitlines()
    row = lines.index(next(line for line in lines if line.startswith("start (t=0)")))
    assert lines[row].split() == header.split()
    assert (
        lines[row + 1].split()
        == " ".join([start_map[0], peak_map[0], end_map[0]]).split()
    )
    assert (
        lines[row + 2].split()
        == " ".join([start_map[1], peak_map[1], end_map[1]]).split()
    )
    actions = [step["robot0"] for step in ev.trajectory_actions]
    assert f"robot0       {compress_actions(actions)}" in text
    expected = ev.w_h_expected[:, 0]
    e_step, e_top = peak(expected)
    m = result.metrics
    path_row = next(line for line in lines if "human0, most likely" in line).split()
    assert float(path_row[4]) == pytest.approx(m["w_h/human0/s0"], rel=1e-3)
    assert float(path_row[5]) == pytest.approx(float(w_path.max()), rel=1e-3)
    assert path_row[6] == f"({top})"
    assert float(path_row[7]) == pytest.approx(m["w_h/human0/final"], rel=1e-3)
    exp_row = next(line for line in lines if "human0, expected" in line).split()
    assert float(exp_row[5]) == pytest.approx(e_top, rel=1e-3)
    assert exp_row[6] == f"({e_step})"
