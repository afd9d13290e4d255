"""A sweep stopped by SIGTERM or SIGINT keeps every finished run in its table, and
resuming it adopts finished runs and continues the interrupted ones in place."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from empo.sweep import load_sweep, run_sweep
from empo.sweep.table import read_rows
from empo.utils.run_dir import read_metrics, run_state

ROOT = Path(__file__).resolve().parents[1]
KNOBS = {"frames_per_batch": 100, "checkpoint_interval": 1}
SWEEP = {
    "name": "sig",
    "base": {
        "world": "commitment",
        "solver": "learned",
        "phase1": KNOBS,
        "phase2": KNOBS,
    },
    # A short run that ends first, while the long ones are still learning.
    "overrides": [
        {"phase1.num_frames": 200, "phase2.num_frames": 200},
        {"phase1.num_frames": 6000, "phase2.num_frames": 6000},
        {"phase1.num_frames": 6000, "phase2.num_frames": 6000, "seed": 1},
    ],
}


def _default_sigint() -> None:
    """Give the sweep's process the default SIGINT disposition: a shell that starts
    the test suite in the background without job control (``cmd &`` in a script, as
    CI wrappers do) ignores SIGINT, children inherit that, and a sweep rightly keeps
    an ignored SIGINT ignored."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


@pytest.mark.slow
@pytest.mark.parametrize(
    ("backend", "number"),
    [("multiprocess", signal.SIGTERM), ("sequential", signal.SIGINT)],
)
def test_stopped_sweep_keeps_finished_runs_and_resume_adopts_them(
    tmp_path: Path, backend: str, number: int
) -> None:
    config = tmp_path / "sweep.yaml"
    config.write_text(yaml.safe_dump(SWEEP))
    out = tmp_path / "out"
    argv = [sys.executable, "-m", "empo", "sweep", "--config", str(config)]
    argv += ["--output", str(out), "--backend", backend, "--workers", "2"]
    parent = subprocess.Popen(
        argv + ["--wandb-mode", "disabled", "--no-progress"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        preexec_fn=_default_sigint,
    )
    jsonl = out / "results.jsonl"
    deadline = time.monotonic() + 300
    while not (jsonl.exists() and jsonl.read_text().strip()):
        assert parent.poll() is None, parent.communicate()
        assert time.monotonic() < deadline
        time.sleep(0.05)
    parent.send_signal(number)
    _, err = parent.communicate(timeout=180)
    assert parent.returncode == 128 + number, err
    assert b"run the same command again to resume" in err

    rows = read_rows(out)
    csv_runs = (out / "results.csv").read_text().splitlines()[1:]
    assert sorted(line.split(",")[0] for line in csv_runs) == sorted(rows)
    spec = load_sweep(config)
    states = {run.name: run_state(out / "runs" / run.name) for run in spec.runs}
    assert states[spec.runs[0].name] == "completed", (rows, states)
    if backend == "multiprocess":  # the long run started with the short one
        assert states[spec.runs[1].name] == "interrupted"
    for name, state in states.items():
        assert state in ("completed", "interrupted", None), (name, state)
        assert (rows.get(name, {}).get("status") == "completed") == (
            state == "completed"
        )
        if state == "interrupted":
            pid = read_metrics(out / "runs" / name)["pid"]
            with pytest.raises(ProcessLookupError):
                os.kill(pid, 0)  # the process that made the run is gone

    resumed = run_sweep(spec, out, wandb_mode="disabled", progress=False)
    assert [row["status"] for row in resumed.rows] == ["completed"] * 3
    assert spec.runs[0].name in resumed.skipped
    assert spec.runs[1].name in resumed.executed
    assert sorted(p.name for p in (out / "runs").iterdir()) == sorted(
        run.name for run in spec.runs
    )
    for name, state in states.items():
        if state == "interrupted":
            log = (out / "logs" / f"{name}.log").read_text()
            assert f"continuing run {name} (status interrupted)" in log
