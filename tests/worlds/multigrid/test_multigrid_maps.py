"""Parsing of map strings and YAML world files, and their error messages."""

import pytest
import torch

from empo.worlds.multigrid.builtin import from_file
from empo.worlds.multigrid.maps import parse_goal_spec, parse_map
from empo.worlds.multigrid.objects import Terrain

YAML = """
metadata:
  name: test
map: |
  We We We We We
  We Ay .. Ro We
  We .. Ae Kb We
  We We We We We
max_steps: 7
can_push_rocks: "y"
action_class: "SmallActions"
orientations: ["n", "w"]
possible_goals:
  - "1,1, 3,1"
  - [1, 2]
  - {goal: [2, 2, 3, 2], weight: 2.5}
"""


def test_yaml_world_file(tmp_path) -> None:
    path = tmp_path / "world.yaml"
    path.write_text(YAML.replace("Kb", "Kg"))
    world = from_file(path=str(path))
    assert world.max_steps == 7
    assert world.agents == ("human0", "robot0")
    assert world.humans == (0,) and world.robots == (1,)
    assert world.action_names[0] == ("still", "left", "right", "forward")
    assert world.rest_action == (0, 0)
    assert world.spec.agents[0].direction == 3 and world.spec.agents[1].direction == 2
    assert [a.can_push_rocks for a in world.spec.agents] == [True, False]
    assert world.goal_names == (("1,1,3,1", "1,2", "2,2,3,2"),)
    assert world.goal_weights.tolist() == [[1.0, 1.0, 2.5]]
    s = world.initial_states()
    assert s.tolist() == [[0, 6, 3, 0, -1, 12, 2, 0, -1, 13, 8]]
    assert world.goal_membership(s).tolist() == [[[True, False, False]]]
    overrides = from_file(path=str(path), max_steps=3)
    assert overrides.max_steps == 3


def test_every_object_code_parses() -> None:
    spec = parse_map(
        "Bb Bu Xr Sw Kb Ki\nPs Pa Dk dK Dp dP\nDC dC CB Mn Ma ..\nBl Ro Kg Ay Ae ..",
        can_enter_magic_walls="e",
    )
    assert spec.balls == [(0, 0, "blue")] and spec.boxes == [(2, 0, "red")]
    assert spec.keys == [(2, 3, "green")]
    assert spec.terrain[0][3] == Terrain.SWITCH
    assert spec.fixtures[Terrain.BUSH] == [(1, 0)]
    assert spec.fixtures[Terrain.KILL_BUTTON] == [(4, 0), (5, 0)]
    assert spec.fixtures[Terrain.PAUSE_SWITCH] == [(0, 1), (1, 1)]
    assert len(spec.fixtures[Terrain.DISABLING_SWITCH]) == 6
    assert (
        spec.disabling_targets
        == [Terrain.KILL_BUTTON] * 2
        + [Terrain.PAUSE_SWITCH] * 2
        + [Terrain.CONTROL_BUTTON] * 2
    )
    assert spec.fixtures[Terrain.CONTROL_BUTTON] == [(2, 2)]
    assert spec.magic_sides == [3, 4]
    assert [a.can_enter_magic_walls for a in spec.agents] == [False, True]


def test_malformed_maps_name_row_and_column() -> None:
    with pytest.raises(ValueError, match="row 1 has odd length 5"):
        parse_map("We We\nWe We.")
    with pytest.raises(ValueError, match="row 2 has 1 cells, expected 2"):
        parse_map("We We\nWe ..\nWe")
    with pytest.raises(
        ValueError, match="unknown cell code 'Zr' at map row 1, column 0"
    ):
        parse_map("We We\nZr ..")
    with pytest.raises(
        ValueError, match="unknown cell code 'Qq' at map row 0, column 1"
    ):
        parse_map("We Qq")
    with pytest.raises(ValueError, match="orientations: 'x'"):
        parse_map("Ay ..", orientations="x")
    with pytest.raises(
        ValueError, match="invalid magic wall side 'x' in cell code 'Mx' at map row 1"
    ):
        parse_map("We We\n.. Mx")
    with pytest.raises(ValueError, match="can_enter_magic_walls: invalid colour"):
        parse_map("Ay ..", can_enter_magic_walls="q")


def test_goal_specs_and_coverage() -> None:
    assert parse_goal_spec("3,2").name == "3,2"
    rect = parse_goal_spec([[3, 4], [1, 2]])
    assert (rect.x1, rect.y1, rect.x2, rect.y2) == (1, 2, 3, 4)
    with pytest.raises(ValueError, match="2 or 4 coordinates"):
        parse_goal_spec("1,2,3")
    rows = "We We We We\nWe Ay .. We\nWe We We We"
    with pytest.raises(ValueError, match=r"do not cover the walkable cells \(2,1\)"):
        from_file(map=rows, possible_goals=["1,1"])
    with pytest.raises(ValueError, match="outside"):
        from_file(map=rows, possible_goals=["0,0, 9,9"])


def test_default_goals_are_walkable_cells() -> None:
    world = from_file(map="We We We We We\nWe Ay La Gg We\nWe We We We We")
    assert world.goal_names == (("1,1", "3,1"),)
    assert world.goal_weights.tolist() == [[1.0, 1.0]]
    assert world.action_names[0] == ("still", "left", "right", "forward")
    states = torch.tensor([[0, 6, 0, 0, -1], [1, 8, 0, 0, -1]])
    assert world.goal_membership(states).tolist() == [[[True, False]], [[False, True]]]


def test_research_code_yaml_keys() -> None:
    world = from_file(
        map="We We We\nWe Ay We\nWe We We",
        seed=3,
        metadata={"name": "x"},
        partial_obs=False,
    )
    assert world.max_steps == 100
    robot_only = from_file(map="We We We\nWe Ar We\nWe We We")  # red: a robot
    assert robot_only.humans == () and robot_only.robots == (0,)
    states = robot_only.initial_states()
    assert robot_only.goal_membership(states).shape == (1, 0, 1)
    with pytest.raises(ValueError, match="unknown action_class 'Bogus'"):
        from_file(map="Ay ..", action_class="Bogus")
    with pytest.raises(ValueError, match="max_steps must be a positive integer"):
        from_file(map="Ay ..", max_steps=0)
    for key in ("enter_bush_success_prob", "solidify_probability"):
        with pytest.raises(ValueError, match=f"{key} must lie in"):
            from_file(map="Ay Bu", **{key: 1.5})
