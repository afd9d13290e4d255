"""The three sweep backends give the same table for a grid of exact runs.

Ray runs locally with 2 CPUs, started once for the module; it never reaches the
network (no dashboard, usage statistics off).
"""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any, Iterator

import pytest
import yaml

from empo import Parameters
from empo.sweep import SweepSpec, run_sweep
from empo.sweep.backends import BackendOptions, RunTask, run_multiprocess
from empo.sweep.pool import start_context
from empo.sweep.worker import DRAWING_MODULES, WORKER_MODULES, worker_modules

pytestmark = pytest.mark.slow

SPEC = SweepSpec.from_grid(
    "b",
    Parameters(world="commitment", solver="exact"),
    {"theory.beta_r": [1.0, 10.0]},
    overrides=[
        {"seed": 2},
        {
            "world.name": "multigrid",
            "world.options": {"map": "We We We\nWe Ae We\nWe We We", "max_steps": 2},
        },
    ],
)
VARYING = ("duration_s", "run_dir")


@pytest.fixture(scope="module")
def ray_local() -> Iterator[None]:
    import ray

    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    ray.init(
        num_cpus=2,
        include_dashboard=False,
        log_to_driver=False,
        configure_logging=False,
    )
    yield
    ray.shutdown()


def _table(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert {Path(row["run_dir"]).parent.name for row in rows if row["run_dir"]} == {
        "runs"
    }
    return [
        {k: v for k, v in row.items() if k not in VARYING and not k.startswith("time/")}
        for row in rows
    ]


@pytest.fixture(scope="module")
def sequential_table(tmp_path_factory: pytest.TempPathFactory) -> list[dict[str, str]]:
    out = tmp_path_factory.mktemp("sequential")
    result = run_sweep(SPEC, out, wandb_mode="disabled", progress=False)
    assert [row["status"] for row in result.rows] == ["completed"] * 3 + ["failed"]
    return _table(result.csv_path)


def test_multiprocess_gives_the_sequential_table(
    tmp_path: Path, sequential_table: list[dict[str, str]]
) -> None:
    result = run_sweep(
        SPEC,
        tmp_path,
        backend="multiprocess",
        workers=2,
        wandb_mode="disabled",
        progress=False,
    )
    assert _table(result.csv_path) == sequential_table
    assert "ValueError" in result.failed[0]["error"]


def test_ray_gives_the_sequential_table(
    tmp_path: Path, sequential_table: list[dict[str, str]], ray_local: None
) -> None:
    result = run_sweep(
        SPEC, tmp_path, backend="ray", workers=2, wandb_mode="disabled", progress=False
    )
    assert _table(result.csv_path) == sequential_table
    assert "ValueError" in result.failed[0]["error"]


def test_multiprocess_records_a_worker_that_dies_without_a_result(
    tmp_path: Path,
) -> None:
    unwritable_log = tmp_path / "a_directory"
    unwritable_log.mkdir()
    task = RunTask(
        name="dies",
        params=SPEC.base.to_dict(),
        overrides={"seed": 5},
        output_dir=str(tmp_path / "runs"),
        log_path=str(unwritable_log),
        wandb_group="b",
        wandb_mode="disabled",
    )
    rows: list[dict[str, Any]] = []
    run_multiprocess([task], rows.append, BackendOptions(workers=1))
    assert len(rows) == 1
    assert rows[0]["status"] == "failed" and rows[0]["overrides"] == {"seed": 5}
    assert "worker process exited with code 1" in rows[0]["error"]


def test_cpu_workers_fork_and_gpu_workers_start_from_a_fork_server(
    tmp_path: Path,
) -> None:
    assert start_context(()).get_start_method() == "fork"
    assert start_context(("cuda:0",)).get_start_method() == "forkserver"
    task = RunTask(
        name="served",
        params=SPEC.base.to_dict(),
        overrides={"seed": 5},
        output_dir=str(tmp_path / "runs"),
        log_path=str(tmp_path / "served.log"),
        wandb_group="b",
        wandb_mode="disabled",
    )
    rows: list[dict[str, Any]] = []
    run_multiprocess([task], rows.append, BackendOptions(workers=1, devices=("cpu",)))
    assert [row["status"] for row in rows] == ["completed"]
    assert rows[0]["metrics"]["threads"] == 1 and rows[0]["metrics"]["device"] == "cpu"


def test_workers_import_what_the_runs_need_before_they_start() -> None:
    drawing = RunTask("a", SPEC.base.to_dict(), {}, "out", "a.log", "b")
    quiet_params = Parameters.from_dict(
        {**SPEC.base.to_dict(), "output": {"plots": False}}
    ).to_dict()
    quiet = RunTask("b", quiet_params, {}, "out", "b.log", "b")
    assert worker_modules([quiet]) == WORKER_MODULES
    assert worker_modules([quiet, drawing]) == WORKER_MODULES + DRAWING_MODULES
    sys.modules.pop("wave", None)
    assert start_context((), ("wave",)).get_start_method() == "fork"
    assert "wave" in sys.modules  # imported by the parent: forked workers have it


def test_ray_sweep_started_from_the_command_line_starts_and_stops_its_own_ray(
    tmp_path: Path,
) -> None:
    config = tmp_path / "sweep.yaml"
    overrides = [{"theory.beta_r": 1.0}, {"theory.beta_r": 10.0}]
    config.write_text(
        yaml.safe_dump(
            {"name": "r", "base": {"world": "commitment"}, "overrides": overrides}
        )
    )
    argv = [sys.executable, "-m", "empo", "sweep", "--config", str(config)]
    argv += ["--backend", "ray", "--workers", "2", "--output", str(tmp_path / "out")]
    environment = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0"}
    environment.pop("RAY_ADDRESS", None)
    done = subprocess.run(
        argv + ["--wandb-mode", "disabled", "--no-progress"],
        env=environment,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr
    lines = (tmp_path / "out" / "results.jsonl").read_text().splitlines()
    rows = [json.loads(line) for line in lines]
    assert sorted(row["overrides"]["theory.beta_r"] for row in rows) == [1.0, 10.0]
    assert {row["status"] for row in rows} == {"completed"}
    assert {row["metrics"]["threads"] for row in rows} == {1}
