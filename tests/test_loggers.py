"""Logging through TorchRL's loggers: the choice of logger and what each writes."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from torchrl.record.loggers import CSVLogger

from empo import Parameters, run_experiment
from empo.utils.loggers import flat_config

PARAMS = Parameters(world="commitment", evaluation={"rollouts": 0})


def _csv_rows(path: Path) -> list[tuple[int, float]]:
    with path.open() as handle:
        return [(int(step), float(value)) for step, value in csv.reader(handle)]


def test_csv_logger_writes_metrics_series_and_config(tmp_path: Path) -> None:
    result = run_experiment(PARAMS, output_dir=tmp_path, logger="csv", progress=False)
    scalars = result.run_dir / "csv" / "scalars"
    assert _csv_rows(scalars / "v_r_s0.csv") == [(0, result.metrics["v_r_s0"])]
    alive = _csv_rows(scalars / "eval" / "alive.csv")
    assert alive == [(t, a) for t, a in enumerate(result.evaluation.alive.tolist())]
    config = (result.run_dir / "csv" / "texts" / "hparams0.txt").read_text()
    assert "theory.beta_r: 5.0" in config and "world.name: commitment" in config
    assert not (result.run_dir / "wandb").exists()


def test_tensorboard_logger_writes_events(tmp_path: Path) -> None:
    result = run_experiment(
        PARAMS, output_dir=tmp_path, logger="tensorboard", progress=False
    )
    events = EventAccumulator(str(result.run_dir / "tensorboard"))
    events.Reload()
    (v_r,) = events.Scalars("v_r_s0")
    assert v_r.step == 0 and v_r.value == pytest.approx(result.metrics["v_r_s0"])
    assert len(events.Scalars("eval/alive")) == len(result.evaluation.alive)
    assert "power_over_time" in events.Tags()["images"]


def test_a_logger_instance_is_used_and_left_open(tmp_path: Path) -> None:
    logger = CSVLogger(exp_name="mine", log_dir=str(tmp_path / "logs"))
    result = run_experiment(
        PARAMS, output_dir=tmp_path / "runs", logger=logger, progress=False
    )
    scalars = tmp_path / "logs" / "mine" / "scalars"
    assert _csv_rows(scalars / "v_r_s0.csv") == [(0, result.metrics["v_r_s0"])]
    logger.log_scalar("after", 1.0, step=3)
    assert _csv_rows(scalars / "after.csv") == [(3, 1.0)]


def test_none_logs_nothing_and_bad_names_are_refused(tmp_path: Path) -> None:
    result = run_experiment(PARAMS, output_dir=tmp_path, logger="none", progress=False)
    assert {p.name for p in result.run_dir.iterdir()}.isdisjoint(
        {"wandb", "csv", "tensorboard"}
    )
    with pytest.raises(ValueError, match="allowed: wandb, tensorboard, csv, none"):
        run_experiment(PARAMS, output_dir=tmp_path, logger="mlflow", run_name="x")
    assert not (tmp_path / "x").exists()


def test_flat_config_has_dotted_scalar_entries() -> None:
    flat = flat_config({"a": {"b": 1, "c": [1, 2]}, "d": None, "e": "x"})
    assert flat == {"a.b": 1, "a.c": "[1, 2]", "d": "None", "e": "x"}
