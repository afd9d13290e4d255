"""Sweeps: grid expansion and validation, the results table, failures and resume.

Backend equivalence (sequential, multiprocess, Ray) is in ``test_sweep_backends.py``.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import shutil
from pathlib import Path
from typing import Any

import pytest

import empo.cli
import empo.run
from empo import Parameters
from empo.sweep import backends as sweep_backends
from empo.sweep.cli import add_sweep_parser, run_sweep_command
from empo.sweep.runner import run_sweep
from empo.sweep.spec import SweepError, SweepSpec, expand_grid, load_sweep, run_name
from empo.sweep.table import append_row, read_rows, write_csv

BASE = Parameters(world="commitment", solver="exact")
#: A run that passes validation and fails when solved (ValueError): a world
#: without a human.
BROKEN = {
    "world.name": "multigrid",
    "world.options": {"map": "We We We\nWe Ae We\nWe We We", "max_steps": 2},
}


def _parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="empo")
    add_sweep_parser(parser.add_subparsers(dest="command"))
    return parser.parse_args(argv)


def _csv(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


def _stable(rows: list[dict[str, str]]) -> list[dict[str, str]]:
    """Rows without the columns that measure time or name a directory."""
    return [
        {
            k: v
            for k, v in row.items()
            if k not in ("duration_s", "run_dir") and not k.startswith("time/")
        }
        for row in rows
    ]


# --- grid expansion, run names, validation -------------------------------------------


def test_expand_grid_is_the_cartesian_product_last_path_fastest() -> None:
    combos = expand_grid({"theory.beta_r": [1, 5], "seed": [12, 22, 32]})
    assert combos == [
        {"theory.beta_r": b, "seed": s} for b in (1, 5) for s in (12, 22, 32)
    ]


def test_spec_unites_grids_and_overrides_without_duplicates() -> None:
    spec = SweepSpec.from_grid(
        "u",
        BASE,
        [{"seed": [1, 2]}, {"seed": [2, 3]}],
        overrides=[{"theory.zeta": 1.5}, {"seed": 1}],
    )
    assert [r.overrides for r in spec.runs] == [
        {"seed": 1},
        {"seed": 2},
        {"seed": 3},
        {"theory.zeta": 1.5},
    ]
    assert spec.runs[3].params.theory.zeta == 1.5
    assert spec.runs[3].params.seed == BASE.seed
    assert [r.params.seed for r in spec.runs[:3]] == [1, 2, 3]


def test_spec_without_runs_is_one_base_run() -> None:
    spec = SweepSpec.from_grid("b", BASE)
    assert len(spec.runs) == 1
    assert spec.runs[0].params == BASE


def test_run_names_are_stable_readable_and_order_independent() -> None:
    overrides = {"theory.beta_r": 5, "seed": 22}
    digest = hashlib.sha256(b'{"seed":22,"theory.beta_r":5}').hexdigest()[:8]
    assert run_name("s", overrides) == f"s-seed=22_beta_r=5-{digest}"
    assert run_name("s", {"seed": 22, "theory.beta_r": 5}) == run_name("s", overrides)
    assert run_name("s", {"seed": 23, "theory.beta_r": 5}) != run_name("s", overrides)
    odd = run_name("s", {"world.options": {"path": "a b/c"}})
    assert "/" not in odd and " " not in odd


@pytest.mark.parametrize(
    ("grid", "message"),
    [
        ({"theory.betar": [1, 5]}, "did you mean 'theory.beta_r'"),
        ({"nonsense.path": [1]}, "unknown parameter nonsense"),
        ({"theory.beta_r": [5, -1]}, "theory.beta_r = -1"),
        ({"theory.beta_r": 5}, "must be a non-empty list"),
        ({"theory.beta_r": []}, "must be a non-empty list"),
        ({"seed": ["x"]}, "seed"),
    ],
)
def test_invalid_grids_are_rejected_naming_the_field(
    grid: dict[str, Any], message: str
) -> None:
    with pytest.raises(SweepError, match=message):
        SweepSpec.from_grid("bad", BASE, grid)


def test_invalid_sweep_files_are_rejected(tmp_path: Path) -> None:
    cases = {
        "unknown_key.yaml": ("name: x\ngrids: {seed: [1]}\n", "unknown sweep key"),
        "no_name.yaml": ("grid: {seed: [1]}\n", "no 'name'"),
        "bad_name.yaml": ("name: a/b\n", "sweep name"),
        "bad_base.yaml": ("name: x\nbase: {theory: {zeta: -1}}\n", "theory.zeta"),
        "bad_yaml.yaml": ("name: [x\n", "malformed"),
        "bad_overrides.yaml": ("name: x\noverrides: {seed: 1}\n", "list of mappings"),
    }
    for file_name, (text, message) in cases.items():
        path = tmp_path / file_name
        path.write_text(text)
        with pytest.raises(SweepError, match=message) as caught:
            load_sweep(path)
        assert file_name in str(caught.value)
    with pytest.raises(SweepError, match="does not exist"):
        load_sweep(tmp_path / "missing.yaml")


def test_sweep_file_with_base_file_and_grid(tmp_path: Path) -> None:
    BASE.with_overrides({"theory.zeta": 3}).save(tmp_path / "base.yaml")
    (tmp_path / "sweep.yaml").write_text(
        "name: f\nbase: base.yaml\ngrid: {theory.beta_r: [1, inf]}\n"
        "overrides: [{seed: 7}]\n"
    )
    spec = load_sweep(tmp_path / "sweep.yaml")
    assert [r.params.theory.beta_r for r in spec.runs] == [1.0, float("inf"), 5.0]
    assert {r.params.theory.zeta for r in spec.runs} == {3.0}
    assert spec.runs[2].params.seed == 7


def test_cli_rejects_invalid_grid_before_anything_runs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    def never(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("no run may start")

    monkeypatch.setattr(empo.run, "run_experiment", never)
    config = tmp_path / "sweep.yaml"
    config.write_text(
        "name: bad\nbase: {world: commitment}\n"
        "grid: {theory.beta_r: [1, 5], theory.gama_r: [0.9]}\n"
    )
    out = tmp_path / "out"
    code = run_sweep_command(
        _parse(["sweep", "--config", str(config), "--output", str(out)])
    )
    captured = capsys.readouterr()
    assert code == 2
    assert "theory.gama_r" in captured.err and "theory.gamma_r" in captured.err
    assert "Traceback" not in captured.err
    assert not out.exists()


# --- the results table ----------------------------------------------------------------


def test_table_ignores_a_truncated_last_line_and_keeps_latest_rows(
    tmp_path: Path,
) -> None:
    first = {"run": "a", "overrides": {"seed": 1}, "status": "failed", "metrics": {}}
    second = {"run": "b", "overrides": {"seed": 2}, "status": "completed"}
    append_row(tmp_path, first)
    append_row(tmp_path, second)
    append_row(tmp_path, {**first, "status": "completed", "metrics": {"v": 1.5}})
    with (tmp_path / "results.jsonl").open("a") as handle:
        handle.write('{"run": "c", "stat')
    rows = read_rows(tmp_path)
    assert list(rows) == ["a", "b"]
    assert rows["a"]["status"] == "completed" and rows["a"]["metrics"] == {"v": 1.5}
    append_row(tmp_path, {"run": "d", "status": "completed"})
    assert list(read_rows(tmp_path)) == ["a", "b", "d"]


def test_csv_columns_and_metric_name_collisions(tmp_path: Path) -> None:
    rows = [
        {
            "run": "a",
            "overrides": {"seed": 1, "theory.beta_r": 5},
            "status": "completed",
            "error": None,
            "duration_s": 0.5,
            "run_dir": "r/a",
            "metrics": {"seed": 9, "v_r": -0.25},
        }
    ]
    path = write_csv(tmp_path, rows)
    table = _csv(path)
    assert list(table[0]) == [
        "run",
        "seed",
        "theory.beta_r",
        "status",
        "error",
        "duration_s",
        "run_dir",
        "metric:seed",
        "v_r",
    ]
    assert table[0]["seed"] == "1" and table[0]["metric:seed"] == "9"
    assert float(table[0]["v_r"]) == -0.25
    assert not list(tmp_path.glob(".*.tmp"))


# --- running sweeps (sequential, real exact runs) -------------------------------------


def _spec(name: str = "t") -> SweepSpec:
    return SweepSpec.from_grid(
        name, BASE, {"theory.beta_r": [1.0, 10.0]}, overrides=[BROKEN]
    )


def test_failed_run_is_recorded_and_the_others_finish(tmp_path: Path) -> None:
    spec = _spec()
    result = run_sweep(spec, tmp_path / "s", wandb_mode="disabled", progress=False)
    statuses = [row["status"] for row in result.rows]
    assert statuses == ["completed", "completed", "failed"]
    failed = result.rows[2]
    assert "ValueError" in failed["error"]
    assert failed["overrides"] == BROKEN
    log = (tmp_path / "s" / "logs" / f"{failed['run']}.log").read_text()
    assert "Traceback" in log
    for row, run in zip(result.rows[:2], spec.runs[:2]):
        direct = empo.run.run_experiment(
            run.params,
            output_dir=tmp_path / "direct",
            wandb_mode="disabled",
            progress=False,
        )
        expected = {
            key: value
            for key, value in direct.metrics.items()
            if key not in ("status", "duration_s", "pid", "host", "started_at")
            and not key.startswith("time/")
        }
        assert {k: v for k, v in row["metrics"].items() if k in expected} == expected
        extra = set(row["metrics"]) - set(expected)
        assert {"time/compile_s", "time/exact_solve_s"} <= extra
        assert all(key.startswith("time/") for key in extra)
        assert Path(row["run_dir"]).is_dir()
    assert result.rows[0]["metrics"]["v_r_s0"] != result.rows[1]["metrics"]["v_r_s0"]
    table = _csv(result.csv_path)
    assert [r["status"] for r in table] == statuses
    assert [r["theory.beta_r"] for r in table] == ["1.0", "10.0", ""]


def test_resume_adopts_finished_directories_and_runs_only_missing_ones(
    tmp_path: Path,
) -> None:
    spec = SweepSpec.from_grid("r", BASE, {"theory.beta_r": [1.0, 5.0, 10.0]})
    sweep_dir = tmp_path / "s"
    first = run_sweep(spec, sweep_dir, wandb_mode="disabled", progress=False)
    assert first.executed == tuple(r.name for r in spec.runs)
    before = _csv(first.csv_path)
    # An interruption lost the last two rows; the last run's directory is gone too.
    jsonl = sweep_dir / "results.jsonl"
    lines = jsonl.read_text().splitlines(keepends=True)
    jsonl.write_text(lines[0] + lines[1][:10])
    shutil.rmtree(sweep_dir / "runs" / spec.runs[2].name)
    again = run_sweep(spec, sweep_dir, wandb_mode="disabled", progress=False)
    assert again.skipped == (spec.runs[0].name, spec.runs[1].name)
    assert again.executed == (spec.runs[2].name,)
    assert _stable(_csv(again.csv_path)) == _stable(before)
    assert sorted(p.name for p in (sweep_dir / "runs").iterdir()) == sorted(
        r.name for r in spec.runs
    )
    third = run_sweep(spec, sweep_dir, wandb_mode="disabled", progress=False)
    assert third.executed == () and len(third.rows) == 3
    wider = SweepSpec.from_grid("r", BASE, {"theory.beta_r": [1.0, 5.0, 10.0, 20.0]})
    fourth = run_sweep(wider, sweep_dir, wandb_mode="disabled", progress=False)
    assert fourth.executed == (wider.runs[3].name,)
    assert [row["theory.beta_r"] for row in _csv(fourth.csv_path)] == [
        "1.0",
        "5.0",
        "10.0",
        "20.0",
    ]


def test_interrupt_leaves_a_consistent_table(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    spec = SweepSpec.from_grid("i", BASE, {"theory.beta_r": [1.0, 5.0, 10.0]})
    real = sweep_backends.execute_run
    calls: list[str] = []

    def interrupted(task: sweep_backends.RunTask) -> dict[str, Any]:
        calls.append(task.name)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real(task)

    monkeypatch.setattr(sweep_backends, "execute_run", interrupted)
    with pytest.raises(KeyboardInterrupt):
        run_sweep(spec, tmp_path / "s", wandb_mode="disabled", progress=False)
    table = _csv(tmp_path / "s" / "results.csv")
    assert [r["run"] for r in table] == [spec.runs[0].name]
    monkeypatch.setattr(sweep_backends, "execute_run", real)
    resumed = run_sweep(spec, tmp_path / "s", wandb_mode="disabled", progress=False)
    assert resumed.executed == tuple(r.name for r in spec.runs[1:])
    assert [r["status"] for r in resumed.rows] == ["completed"] * 3


def test_directory_of_another_sweep_is_refused(tmp_path: Path) -> None:
    spec = SweepSpec.from_grid("d", BASE, overrides=[BROKEN])
    run_sweep(spec, tmp_path / "s", wandb_mode="disabled", progress=False)
    other = SweepSpec.from_grid("d", BASE.with_overrides({"theory.zeta": 3}))
    with pytest.raises(SweepError, match="different sweep"):
        run_sweep(other, tmp_path / "s", wandb_mode="disabled", progress=False)
    with pytest.raises(SweepError, match="unknown sweep backend"):
        run_sweep(spec, tmp_path / "s2", backend="slurm")


def test_cli_dry_run_and_summary(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "sweep.yaml"
    config.write_text(
        "name: c\nbase: {world: commitment, solver: exact}\n"
        "grid: {theory.beta_r: [1.0]}\n"
        "overrides: [{world.name: multigrid, world.options: "
        '{map: "We We We\\nWe Ae We\\nWe We We", max_steps: 2}}]\n'
    )
    assert empo.cli.main(["sweep", "--config", str(config), "--dry-run"]) == 0
    listing = capsys.readouterr().out
    assert "2 runs, all valid" in listing and "beta_r=1.0" in listing
    out = tmp_path / "out"
    argv = ["sweep", "--config", str(config), "--output", str(out)]
    code = run_sweep_command(
        _parse(argv + ["--wandb-mode", "disabled", "--no-progress"])
    )
    captured = capsys.readouterr()
    assert code == 1
    assert "1 failed" in captured.out and "ValueError" in captured.err
    assert run_sweep_command(_parse(["sweep", "--summary", str(out)])) == 0
    summary = capsys.readouterr().out
    assert "2 runs: 1 completed, 1 failed, 0 not run" in summary
    assert "theory.beta_r" in summary.splitlines()[0]
    assert run_sweep_command(_parse(["sweep", "--summary", str(tmp_path)])) == 2
    assert "not a sweep directory" in capsys.readouterr().err
    rows = [
        json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()
    ]
    assert {row["status"] for row in rows} == {"completed", "failed"}
