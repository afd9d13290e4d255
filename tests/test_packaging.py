"""Packaging: version ranges, optional extras with errors naming them, ``py.typed``."""

from __future__ import annotations

import ast
import re
import sys
from pathlib import Path

import pytest

from empo import Parameters, run_experiment
from empo.cli import main
from empo.utils.extras import EXTRAS, MissingExtraError, require
from empo.sweep import SweepSpec, run_sweep

ROOT = Path(__file__).resolve().parents[1]


def _setup_assignments() -> dict[str, object]:
    tree = ast.parse((ROOT / "setup.py").read_text())
    return {
        node.targets[0].id: ast.literal_eval(node.value)
        for node in tree.body
        if isinstance(node, ast.Assign)
        and isinstance(node.targets[0], ast.Name)
        and node.targets[0].id in ("INSTALL_REQUIRES", "EXTRAS_REQUIRE")
    }


def _name(requirement: str) -> str:
    return re.split(r"[<>=!~\[ ]", requirement, maxsplit=1)[0].lower()


def test_install_requirements_are_ranges_and_optional_packages_are_extras() -> None:
    setup = _setup_assignments()
    install, extras = setup["INSTALL_REQUIRES"], setup["EXTRAS_REQUIRE"]
    assert all("==" not in r and re.search(r">=", r) for r in install)
    core = {_name(r) for r in install}
    assert {"torch", "torchrl", "tensordict"} <= core
    assert core.isdisjoint({"ray", "wandb", "matplotlib", "tensorboard"})
    assert {k: [_name(r) for r in v] for k, v in extras.items()} == {
        k: list(v) for k, v in EXTRAS.items()
    }
    pinned = (ROOT / "requirements.txt").read_text().split()
    assert all("==" in line for line in pinned)
    assert {_name(line) for line in pinned} == core | {
        m for modules in EXTRAS.values() for m in modules
    }
    assert "beartype==" in (ROOT / "requirements_dev.txt").read_text()
    assert (ROOT / "empo" / "py.typed").is_file()
    assert '"empo": ["py.typed"]' in (ROOT / "setup.py").read_text()


def test_require_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    assert require("math", "plots", "x").sqrt(4.0) == 2.0
    monkeypatch.setitem(sys.modules, "ray", None)
    with pytest.raises(MissingExtraError) as info:
        require("ray", "ray", "the ray sweep backend")
    assert str(info.value) == (
        "the ray sweep backend needs ray, which is not installed: "
        "pip install 'empo[ray]'"
    )


def test_ray_sweep_without_ray_names_the_extra(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)
    spec = SweepSpec.from_grid("s", Parameters(world="commitment"), {"seed": [1]})
    with pytest.raises(MissingExtraError, match=r"pip install 'empo\[ray\]'"):
        run_sweep(
            spec, tmp_path / "s", backend="ray", wandb_mode="disabled", progress=False
        )
    assert not (tmp_path / "s").exists()


def test_sweep_command_without_ray_is_one_line_naming_the_extra(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)
    config = tmp_path / "sweep.yaml"
    config.write_text("name: s\nbase: {world: commitment}\ngrid: {seed: [1, 2]}\n")
    out = tmp_path / "out"
    argv = ["sweep", "--config", str(config), "--output", str(out), "--no-progress"]
    assert main([*argv, "--backend", "ray", "--wandb-mode", "disabled"]) == 2
    err = capsys.readouterr().err
    assert err == (
        "empo: error: the ray sweep backend needs ray, which is not installed: "
        "pip install 'empo[ray]'\n"
    )
    assert not out.exists()


def test_plots_without_matplotlib_fail_before_any_output(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    params = Parameters(world="commitment", evaluation={"rollouts": 0})
    with pytest.raises(MissingExtraError, match=r"pip install 'empo\[plots\]'"):
        run_experiment(params, output_dir=tmp_path / "a", wandb_mode="disabled")
    assert not (tmp_path / "a").exists()
    argv = ["run", "--set", "world=commitment", "--output-dir", str(tmp_path / "b")]
    assert main([*argv, "--wandb", "disabled", "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert err == (
        "empo: error: output.plots (a run's pictures; false draws none) needs "
        "matplotlib, which is not installed: pip install 'empo[plots]'\n"
    )
    assert not (tmp_path / "b").exists()
    spec = SweepSpec.from_grid("s", params, {"seed": [1, 2]})
    with pytest.raises(MissingExtraError, match=r"pip install 'empo\[plots\]'"):
        run_sweep(spec, tmp_path / "s", wandb_mode="disabled", progress=False)
    assert not (tmp_path / "s").exists()
    result = run_experiment(
        params.with_overrides({"output.plots": False}),
        output_dir=tmp_path / "c",
        wandb_mode="disabled",
        progress=False,
    )
    assert result.status == "completed"
    written = {p.suffix for p in result.run_dir.iterdir()}
    assert not written & {".png", ".gif"}


def test_wandb_logging_without_wandb_is_one_line_naming_the_extra(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setitem(sys.modules, "wandb", None)
    with pytest.raises(MissingExtraError, match=r"pip install 'empo\[wandb\]'"):
        run_experiment(
            Parameters(world="commitment"),
            output_dir=tmp_path / "a",
            wandb_mode="offline",
        )
    assert not (tmp_path / "a").exists()
    argv = ["run", "--set", "world=commitment", "--output-dir", str(tmp_path)]
    assert main([*argv, "--wandb", "offline", "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("empo: error: W&B logging (logger 'wandb') needs wandb")
    assert err.count("\n") == 1
