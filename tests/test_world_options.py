"""World options are checked against the world's builder: names (with the closest
valid ones), types, bounds, and (before a run or sweep) the map files they name."""

from __future__ import annotations

from pathlib import Path

import pytest

from empo import Parameters
from empo.cli import main
from empo.parameters import ParameterError
from empo.parameters.world_options import (
    MAX_HORIZON,
    MULTIGRID_OPTIONS,
    check_world_inputs,
)
from empo.sweep import SweepError, SweepSpec
from empo.worlds.multigrid.maps import parse_config
from empo.worlds.registry import WorldName


@pytest.mark.parametrize("name", list(WorldName))
def test_every_world_accepts_its_defaults_and_refuses_a_typo(name: WorldName) -> None:
    if name is not WorldName.MULTIGRID:
        params = Parameters(world=name)
        check_world_inputs(params.world.name, params.world.options)
    with pytest.raises(ParameterError, match="unknown option world.options.zzz_typo"):
        Parameters(world={"name": name, "options": {"zzz_typo": 1}})


@pytest.mark.parametrize(
    ("world", "options", "fragment"),
    [
        ("key_door", {"max_step": 3}, "did you mean 'max_steps'"),
        ("key_door", {"max_steps": 0}, "max_steps = 0 is out of range"),
        ("key_door", {"max_steps": MAX_HORIZON + 1}, f"≤ {MAX_HORIZON}"),
        ("unsteady", {"stumble_probability": 1.5}, "0 ≤ value ≤ 1"),
        ("transport_small", {"horizon": 2**63}, "horizon = 9223372036854775808"),
        ("transport_small", {"walk_speed": 0}, "0 < value"),
        ("transport_large", {"rows": 10**6}, "0 ≤ value ≤ 1000"),
        ("menu_size", {"max_k": "5"}, "must be an integer"),
        ("commitment", {"direct_tasks": 1}, "must be true or false"),
        ("confirmation", {"slip": float("nan")}, "finite numbers"),
    ],
)
def test_invalid_options_name_the_field_and_the_bound(
    world: str, options: dict, fragment: str
) -> None:
    with pytest.raises(ParameterError, match="world.options") as raised:
        Parameters(world={"name": world, "options": options})
    assert fragment in str(raised.value)


def test_multigrid_options_are_entries_the_world_files_know(
    caplog: pytest.LogCaptureFixture,
) -> None:
    samples = {
        "map": "We We We\nWe Ay We\nWe Ae We",
        "max_steps": 3,
        "possible_goals": [[1, 1]],
        "can_push_rocks": "e",
        "action_class": "SmallActions",
        "orientations": 0,
        "stumble_probability": 0.2,
        "solidify_probability": 0.5,
        "enter_bush_success_prob": 0.5,
        "can_enter_magic_walls": "e",
    }
    assert set(samples) == set(MULTIGRID_OPTIONS) - {"device", "name"}
    with caplog.at_level("WARNING"):
        parse_config(samples, source="options")
    assert "unknown key" not in caplog.text


def test_map_files_are_checked_before_a_run_or_sweep(tmp_path: Path) -> None:
    odd = tmp_path / "odd.yaml"
    odd.write_text("map: |\n  We We\n  We Ae\n  We\n")
    with pytest.raises(ParameterError, match="odd.yaml: map row 2 has 1 cells"):
        check_world_inputs(WorldName.MULTIGRID, {"path": str(odd)})
    with pytest.raises(ParameterError, match="needs world.options.path"):
        check_world_inputs(WorldName.MULTIGRID, {})
    check_world_inputs(WorldName.MULTIGRID, {"map": "We We\nWe Ay"})
    base = Parameters(world="commitment")
    grid = {"world": [{"name": "multigrid", "options": {"path": str(odd)}}]}
    with pytest.raises(SweepError, match="(?s)1 of 1 runs are invalid.*map row 2"):
        SweepSpec.from_grid("s", base, grid)


def test_invalid_world_options_exit_2_before_any_directory(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    sweep = tmp_path / "sweep.yaml"
    sweep.write_text(
        "name: s\nbase: {world: corridor}\n" "grid: {world.options.max_steps: [4, 0]}\n"
    )
    assert main(["sweep", "--config", str(sweep), "--dry-run"]) == 2
    assert "world.options.max_steps = 0 is out of range" in capsys.readouterr().err
    argv = [
        "run",
        "--set",
        "world.name=corridor",
        "--set",
        "world.options.max_steps=-1",
    ]
    assert main(argv) == 2
    assert capsys.readouterr().err.count("\n") == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["sweep.yaml"]
