"""A run's status is true at every moment, and an interrupted run resumes bit for bit.

``metrics.json`` says ``running`` (with pid, host, start time, threads) from the start,
``completed`` only after W&B has finished, ``interrupted`` after SIGTERM, and a
SIGKILLed run is reported ``killed``; ``python -m empo run --resume`` then ends with
exactly the tensors of an uninterrupted run.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import torch

import empo.run
from empo import Parameters, run_experiment
from empo.cli import main
from empo.learning.checkpoint import CHECKPOINT_NAME
from empo.resume import resume_experiment
from empo.utils.run_dir import RunDirError, run_state

ROOT = Path(__file__).resolve().parents[1]
KNOBS = {"num_frames": 2000, "frames_per_batch": 100, "checkpoint_interval": 1}
LEARNED = Parameters(world="commitment", solver="learned", phase1=KNOBS, phase2=KNOBS)
#: Metrics that describe the process or the clock, not the result.
VARYING = ("pid", "started_at", "duration_s", "status", "error")


def _status(run_dir: Path) -> dict[str, Any]:
    return json.loads((run_dir / "metrics.json").read_text())


def test_status_is_running_during_the_run_and_completed_after_wandb(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: dict[str, Any] = {}
    solve = empo.run._solve

    def watched(params: Parameters, world: Any, *args: Any) -> Any:
        run_dir = next(arg for arg in args if isinstance(arg, Path))
        seen["during"] = _status(run_dir)
        return solve(params, world, *args)

    class Tracker:
        def __getattr__(self, name: str) -> Any:
            return lambda *args, **kwargs: None

        def finish(self, exit_code: int = 0) -> None:
            seen["at_wandb_finish"] = run_state(tmp_path / "r")

    monkeypatch.setattr(empo.run, "_solve", watched)
    monkeypatch.setattr(empo.run.RunLogger, "start", lambda *a: Tracker())
    result = run_experiment(
        Parameters(world="commitment"),
        output_dir=tmp_path,
        run_name="r",
        progress=False,
    )
    during = seen["during"]
    assert during["status"] == "running" and during["pid"] == os.getpid()
    assert during["host"] == socket.gethostname() and during["threads"] == 1
    assert during["device"] == "cpu" and "started_at" in during
    assert seen["at_wandb_finish"] == "running"
    final = _status(result.run_dir)
    assert final["status"] == "completed" and final["pid"] == os.getpid()
    assert final["v_r_s0"] == result.metrics["v_r_s0"]
    assert not list(result.run_dir.glob(".*tmp*")) and not list(
        result.run_dir.glob("tmp*")
    )


def _start(run_dir: Path, config: Path) -> subprocess.Popen[bytes]:
    """A learned CLI run in a subprocess, once its first checkpoint is written."""
    argv = [sys.executable, "-m", "empo", "run", "--config", str(config)]
    argv += ["--output-dir", str(run_dir.parent), "--run-name", run_dir.name]
    process = subprocess.Popen(
        argv + ["--wandb", "disabled", "--no-progress"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    deadline = time.monotonic() + 300
    while not (run_dir / CHECKPOINT_NAME).exists():
        assert process.poll() is None, process.communicate()
        assert time.monotonic() < deadline
        time.sleep(0.05)
    return process


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """An uninterrupted learned run (one torch thread, like the CLI's default) and
    its parameter file."""
    out = tmp_path_factory.mktemp("reference")
    config = LEARNED.save(out / "learned.yaml")
    result = run_experiment(
        LEARNED, output_dir=out, run_name="a", wandb_mode="disabled", progress=False
    )
    return result.run_dir, config


def _assert_same_run(got: Path, expected: Path) -> None:
    solutions = [
        torch.load(d / "solution_learned.pt", weights_only=True)
        for d in (got, expected)
    ]
    for phase in ("phase1", "phase2"):
        assert solutions[0][phase].keys() == solutions[1][phase].keys()
        for key, value in solutions[1][phase].items():
            assert torch.equal(solutions[0][phase][key], value), f"{phase}.{key}"
    metrics = [_status(d) for d in (got, expected)]
    same = [
        {
            k: v
            for k, v in m.items()
            if k not in VARYING
            and not k.startswith("time/")
            and not k.endswith("_seconds")
        }
        for m in metrics
    ]
    assert same[0] == same[1]
    assert metrics[0]["status"] == "completed"


@pytest.mark.slow
def test_sigterm_leaves_interrupted_and_cli_resume_is_bit_identical(
    tmp_path: Path, reference: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    expected, config = reference
    run_dir = tmp_path / "b"
    process = _start(run_dir, config)
    process.send_signal(signal.SIGTERM)
    _, err = process.communicate(timeout=120)
    assert process.returncode == 128 + signal.SIGTERM, err
    assert b"--resume" in err
    status = _status(run_dir)
    assert status["status"] == "interrupted" and "SIGTERM" in status["error"]
    assert run_state(run_dir) == "interrupted"
    assert main(["run", "--resume", str(run_dir), "--wandb", "disabled"]) == 0
    assert f"Run directory: {run_dir}" in capsys.readouterr().out
    _assert_same_run(run_dir, expected)
    with pytest.raises(RunDirError, match="already completed"):
        resume_experiment(run_dir, wandb_mode="disabled")


@pytest.mark.slow
def test_sigkill_leaves_a_killed_run_that_resumes_bit_identical(
    tmp_path: Path, reference: tuple[Path, Path]
) -> None:
    expected, config = reference
    run_dir = tmp_path / "k"
    process = _start(run_dir, config)
    process.kill()
    process.communicate(timeout=60)
    status = _status(run_dir)
    assert status["status"] == "running" and status["pid"] == process.pid
    assert run_state(run_dir) == "killed"
    code = main(["run", "--resume", str(run_dir), "--wandb", "disabled"])
    assert code == 0
    _assert_same_run(run_dir, expected)


def test_resume_refuses_what_it_cannot_continue(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["run", "--resume", str(tmp_path), "--wandb", "disabled"])
    assert code == 2
    assert "not a run directory" in capsys.readouterr().err
    (tmp_path / "params.yaml").write_text("world: commitment\n")
    (tmp_path / "metrics.json").write_text(
        json.dumps({"status": "running", "pid": os.getpid(), "host": "elsewhere"})
    )
    assert main(["run", "--resume", str(tmp_path)]) == 2
    assert "still running" in capsys.readouterr().err
    code = main(["run", "--resume", str(tmp_path), "--set", "seed=2"])
    assert code == 2
    assert "drop --set" in capsys.readouterr().err
