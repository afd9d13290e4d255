"""``python -m empo``: runs, defaults, overrides, and one-line errors on bad input."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

import empo.exact

from empo import Parameters
from empo.cli import DEFAULT_PARAMETERS, build_parser, main, parse_assignment
from empo.parameters import DEFAULT_WORLD, ParameterError

ROOT = Path(__file__).resolve().parents[1]


def cli(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(argv)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_defaults_prints_loadable_yaml(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = cli(["defaults"], capsys)
    assert code == 0
    assert Parameters.from_dict(yaml.safe_load(out)) == Parameters()
    assert DEFAULT_PARAMETERS == Parameters(world=DEFAULT_WORLD, solver="exact")


def test_run_with_config_and_overrides(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = Parameters(
        world="commitment", theory={"zeta": 1.5}, evaluation={"rollouts": 10}
    )
    config.save(tmp_path / "run.yaml")
    argv = [
        "run",
        "--config",
        str(tmp_path / "run.yaml"),
        "--set",
        "theory.beta_r=10",
        "--set",
        "seed=3",
        "--set",
        "theory.beta_h=.inf",
        "--output-dir",
        str(tmp_path / "runs"),
        "--run-name",
        "x",
        "--wandb",
        "disabled",
        "--no-progress",
    ]
    code, out, err = cli(argv, capsys)
    assert code == 0, err
    run_dir = tmp_path / "runs" / "x"
    saved = Parameters.load(run_dir / "params.yaml")
    assert saved == config.with_overrides(
        {"theory.beta_r": 10, "seed": 3, "theory.beta_h": math.inf}
    )
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["status"] == "completed"
    assert "Robot policy at the start: " in out
    assert "Most likely trajectory (" in out
    assert "Human power W_h [bits]:" in out
    assert f"V_r(s_0) = {metrics['v_r_s0']:.4g}" in out
    assert f"{metrics['w_h/human/s0']:>8.4g}  " in out
    assert f"Run directory: {run_dir}" in out
    best = max(
        (k for k in metrics if k.startswith("robot_policy_s0/")), key=metrics.get
    )
    assert f"start: {best.split('/', 1)[1]} {metrics[best]:.3f}" in out
    assert "wandb sync" not in out


def test_wandb_offline_summary_names_the_sync_command(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("WANDB_MODE", raising=False)
    argv = ["run", "--set", "world.name=commitment", "--output-dir", str(tmp_path)]
    argv += ["--run-name", "w", "--no-progress"]
    code, out, err = cli(argv + ["--wandb", "offline"], capsys)
    assert code == 0, err
    offline = next((tmp_path / "w" / "wandb").glob("offline-run-*"))
    assert f"wandb sync {offline}" in out
    assert Parameters.load(offline / "files" / "params.yaml") == Parameters(
        world="commitment"
    )


@pytest.mark.parametrize(
    ("argv", "fragment"),
    [
        (["--set", "theory.bta_r=1"], "did you mean 'theory.beta_r'"),
        (["--set", "theory.zeta=-1"], "theory.zeta = -1.0 is out of range"),
        (["--set", "solver=magic"], "solver = 'magic' is not allowed"),
        (["--set", "seed"], "expected KEY=VALUE"),
        (["--set", "=3"], "expected KEY=VALUE"),
        (["--set", "theory.beta_r=[1"], "not valid YAML"),
        (["--config", "missing.yaml"], "missing.yaml does not exist"),
        (["--config", "bad.yaml"], "bad.yaml is malformed"),
        (["--config", "wrong.yaml"], "wrong.yaml: unknown parameter theroy"),
        (["--set", "output.quantities=[v_r, pi]"], "output.quantities = ('v_r', 'pi')"),
        (["--config", "adir"], "parameter file adir is a directory, not a file"),
        (["--config", "bin.yaml"], "bin.yaml is not a UTF-8 text file"),
        (["--config", "dup.yaml"], "duplicate key 'seed' (first on line 1)"),
        (["--set", "theory={beta_r: 1, beta_r: 2}"], "duplicate key 'beta_r'"),
        (["--output-dir", "afile/x"], "afile is a file, not a directory"),
        (["--set", "world.options.max_step=3"], "did you mean 'max_steps'"),
        (["--set", "world.options.max_steps=0"], "max_steps = 0 is out of range"),
        (["--set", f"world.options.max_steps={2**63}"], "1 ≤ value ≤ 10000"),
        (["--set", "world.options.max_steps=true"], "must be an integer"),
        (
            [
                "--set",
                "world.name=multigrid",
                "--set",
                "world.options.path=nowhere.yaml",
            ],
            "world.options.path: MultiGrid world file not found: nowhere.yaml",
        ),
        (
            ["--set", "world.name=multigrid", "--set", "world.options.path=odd.yaml"],
            "odd.yaml: map row 1 has 1 cells, expected 2 as in row 0",
        ),
        (
            ["--set", "world.name=menu_size", "--set", "world.options.max_k=1e9"],
            "world.options.max_k = '1e9' must be an integer",
        ),
    ],
)
def test_bad_input_is_one_clear_line(
    argv: list[str],
    fragment: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "bad.yaml").write_text("theory: {beta_r: 1\n")
    (tmp_path / "wrong.yaml").write_text("theroy:\n  beta_r: 1\n")
    (tmp_path / "adir").mkdir()
    (tmp_path / "bin.yaml").write_bytes(b"seed: 1\n\xff\xfe\x00")
    (tmp_path / "dup.yaml").write_text("seed: 1\nworld: commitment\nseed: 2\n")
    (tmp_path / "afile").write_text("")
    (tmp_path / "odd.yaml").write_text("map: |\n  We We\n  We\n")
    code, out, err = cli(["run", "--wandb", "disabled", *argv], capsys)
    assert code == 2
    assert fragment in err
    assert err.startswith("empo: error: ") and err.count("\n") == 1
    assert "Traceback" not in err and out == ""
    assert not (tmp_path / "runs").exists()


def test_failed_run_exits_non_zero_naming_the_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("solver broke")

    monkeypatch.setattr(empo.exact, "solve", broken)
    argv = ["run", "--set", "world.name=commitment", "--output-dir", str(tmp_path)]
    code, out, err = cli(argv + ["--run-name", "bad", "--wandb", "disabled"], capsys)
    assert code == 1
    assert err.startswith("empo: run failed: RuntimeError: solver broke")
    assert str(tmp_path / "bad") in err and "Traceback" not in err
    metrics = json.loads((tmp_path / "bad" / "metrics.json").read_text())
    assert metrics["status"] == "failed"


def test_argparse_errors_and_help(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    code, _, err = cli(["run", "--wandb", "sometimes"], capsys)
    assert code == 2 and "invalid choice: 'sometimes'" in err
    monkeypatch.setenv("WANDB_MODE", "dryrun")
    assert build_parser().parse_args(["run"]).wandb == "offline"
    monkeypatch.setenv("WANDB_MODE", "disabled")
    assert build_parser().parse_args(["run"]).wandb == "disabled"
    code, _, err = cli(["frobnicate"], capsys)
    assert code == 2 and "invalid choice" in err
    code, out, _ = cli(["run", "--help"], capsys)
    assert code == 0
    for option in (
        "--config",
        "--set",
        "--device",
        "--wandb",
        "--wandb-group",
        "--output-dir",
        "--run-name",
        "--no-progress",
    ):
        assert option in out
    code, out, _ = cli(["--help"], capsys)
    assert code == 0 and "defaults" in out and "run" in out


def test_set_values_parse_as_yaml_scalars() -> None:
    assert parse_assignment("theory.beta_r=10") == ("theory.beta_r", 10)
    assert parse_assignment("theory.beta_h=.inf") == ("theory.beta_h", math.inf)
    assert parse_assignment("world=key_door") == ("world", "key_door")
    assert parse_assignment("phase1.hidden_sizes=[8, 8]") == (
        "phase1.hidden_sizes",
        [8, 8],
    )
    assert parse_assignment("evaluation.horizon=null") == ("evaluation.horizon", None)
    assert parse_assignment("world.options.name=a=b") == ("world.options.name", "a=b")
    with pytest.raises(ParameterError, match="expected KEY=VALUE"):
        parse_assignment("no-equals")


@pytest.mark.slow
def test_python_m_empo_runs_the_default_experiment(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "WANDB_MODE": "disabled",
        "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""),
    }
    done = subprocess.run(
        [sys.executable, "-m", "empo"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    run_dirs = list((tmp_path / "runs").iterdir())
    assert len(run_dirs) == 1
    assert run_dirs[0].name.startswith(f"{DEFAULT_WORLD.value}-")
    assert f"world {DEFAULT_WORLD.value}, solver exact" in done.stdout
    assert "V_r(s_0) = " in done.stdout
    metrics = json.loads((run_dirs[0] / "metrics.json").read_text())
    assert metrics["status"] == "completed"
    bad = subprocess.run(
        [sys.executable, "-m", "empo", "run", "--set", "seed=-1"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert bad.returncode == 2
    assert bad.stderr.strip() == (
        "empo: error: seed = -1 is out of range; allowed: 0 ≤ seed < 2**63"
    )
