"""Parsing of map strings and YAML world files, and their error messages."""

import pytest
import torch

from empo.worlds.multigrid.builtin import from_file
from empo.worlds.multigrid.maps import parse_goal_spec, parse_map

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


def test_unsupported_objects_named_with_cells() -> None:
    with pytest.raises(ValueError, match=r"kill button at \(x=3, y=2\)"):
        from_file(map=YAML.split("|\n")[1].split("max_steps")[0])
    rows = "We Bb Bu\nBu Xr .."
    with pytest.raises(ValueError) as err:
        parse_map(rows)
    message = str(err.value)
    assert "ball at (x=1, y=0)" in message
    assert "bush at (x=2, y=0), (x=0, y=1)" in message
    assert "box at (x=1, y=1)" in message


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
