"""Runs choose the exact solver by the memory budget; worlds too large fail early."""

import json
import subprocess
import sys
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pytest
import torch

from empo import run_experiment
from empo.exact import auto
from empo.exact.layered import solve_layered
from empo.parameters.theory import TheoryParameters
from empo.theory import power_bits
from empo.worlds import transition_cache
from empo.worlds.budget import BudgetExceededError
from empo.worlds.layers import enumerate_kept, enumerate_layers
from empo.worlds.multigrid.world import MultiGridWorld
from empo.worlds.registry import build_world

FAST = {"wandb_mode": "disabled", "progress": False}
KEY_DOOR_2H = {"name": "key_door_2h", "options": {"max_steps": 5}}


def test_auto_solves_layer_by_layer_when_memory_would_not_fit(tmp_path: Path) -> None:
    """At 0.15 GiB the in-memory solver (about 0.23 GiB) does not fit: the run
    solves layer by layer, writes per-state files and the same V_r(s0) and W_h(s0)
    as an in-memory run."""
    in_memory = run_experiment(
        {"world": KEY_DOOR_2H, "evaluation": {"rollouts": 0}},
        output_dir=tmp_path,
        **FAST,
    )
    layered = run_experiment(
        {
            "world": KEY_DOOR_2H,
            "exact": {"memory_gib": 0.15},
            "output": {"quantities": ["x_h"]},
        },
        output_dir=tmp_path,
        **FAST,
    )
    assert layered.metrics["exact/method"] == "layered"
    assert "exact/method" not in in_memory.metrics
    assert layered.metrics["exact/in_memory_gib_estimate"] > 0.15
    for key in ("v_r_s0", "w_h/human0/s0", "w_h/human1/s0"):
        assert layered.metrics[key] == pytest.approx(in_memory.metrics[key], abs=1e-9)
    files = sorted(p.name for p in (layered.run_dir / "exact").iterdir())
    assert files == [
        "keys.npy",
        "layers.json",
        "v_e.npy",
        "v_m.npy",
        "v_r.npy",
        "x_h.npy",
    ]
    states = layered.metrics["num_states"]
    assert np.load(layered.run_dir / "exact" / "x_h.npy", mmap_mode="r").shape == (
        states,
        2,
    )
    layers = json.loads((layered.run_dir / "exact" / "layers.json").read_text())
    assert [entry["layer"] for entry in layers] == list(range(6))
    assert sum(entry["states"] for entry in layers) == states
    trajectory = json.loads((layered.run_dir / "trajectory.json").read_text())
    assert len(trajectory["states"]) == 6


@pytest.mark.parametrize("method", ["layered", "in_memory"])
def test_runs_call_the_world_model_only_while_enumerating(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, method: str
) -> None:
    """A run enumerates once: the solver it chooses (layered, or in memory from the
    enumerated layers) reads the transitions the enumeration kept instead of
    calling the world model, whose transitions the run's enumeration calls as
    often as an enumeration alone; the results are those of the layered solver
    regenerating its transitions."""
    calls: dict[str, list[int]] = {"alone": [], "enumerate": [], "solve": []}
    phase = ["alone"]
    transitions = MultiGridWorld.transitions

    def counted(self: MultiGridWorld, states: torch.Tensor, actions: torch.Tensor):
        calls[phase[0]].extend(states[:, 0].unique().tolist())
        return transitions(self, states, actions)

    def during(name: str, function: Callable) -> Callable:
        def wrapped(*args: Any, **kwargs: Any) -> Any:
            phase[0] = name
            try:
                return function(*args, **kwargs)
            finally:
                phase[0] = "after"

        return wrapped

    world = build_world(KEY_DOOR_2H["name"], KEY_DOOR_2H["options"])
    reference = solve_layered(world, TheoryParameters())
    s0 = world.initial_states()
    expected = [float(reference.robot_values(s0)[0])]
    expected += power_bits(reference.human_power(s0)[0]).tolist()
    calls["after"] = []
    monkeypatch.setattr(MultiGridWorld, "transitions", counted)
    enumerate_layers(world)
    monkeypatch.setattr(auto, "enumerate_kept", during("enumerate", enumerate_kept))
    monkeypatch.setattr(auto, "solve_layered", during("solve", auto.solve_layered))
    monkeypatch.setattr(auto, "compile_layers", during("solve", auto.compile_layers))
    scratches: list[Path] = []
    make_directory = transition_cache.tempfile.mkdtemp

    def recorded(*args: Any, **kwargs: Any) -> str:
        directory = make_directory(*args, **kwargs)
        scratches.append(Path(directory))
        return directory

    monkeypatch.setattr(transition_cache.tempfile, "mkdtemp", recorded)
    memory_gib = 0.15 if method == "layered" else 4.0
    result = run_experiment(
        {
            "world": KEY_DOOR_2H,
            "exact": {"memory_gib": memory_gib},
            "evaluation": {"rollouts": 0},
            "output": {"plots": False},
        },
        output_dir=tmp_path,
        **FAST,
    )
    assert calls["enumerate"] == calls["alone"] and len(calls["alone"]) >= 5
    assert calls["solve"] == []
    # the kept transitions lived in the run's directory, and are gone
    assert scratches and {d.parent for d in scratches} == {result.run_dir}
    assert not any(d.exists() for d in scratches)
    assert result.metrics.get("exact/method", "in_memory") == method
    got = [result.metrics[k] for k in ("v_r_s0", "w_h/human0/s0", "w_h/human1/s0")]
    assert got == pytest.approx(expected, abs=1e-9)


def test_method_errors(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="exact.method = 'layered' needs a world"):
        run_experiment(
            {"world": "commitment", "exact": {"method": "layered"}},
            output_dir=tmp_path,
            **FAST,
        )
    with pytest.raises(ValueError, match="solver = 'both' compares on every state"):
        run_experiment(
            {"world": KEY_DOOR_2H, "solver": "both", "exact": {"method": "layered"}},
            output_dir=tmp_path,
            **FAST,
        )
    with pytest.raises(BudgetExceededError, match="more than exact.max_states = 100"):
        run_experiment(
            {"world": KEY_DOOR_2H, "exact": {"max_states": 100}},
            output_dir=tmp_path,
            **FAST,
        )


OVERSIZED = """
import resource, sys
resource.setrlimit(resource.RLIMIT_AS, (3 * 2**30, 3 * 2**30))
import torch
torch.set_num_threads(1)
from empo import run_experiment
rows = [["We"] * 10] + [["We"] + [".."] * 8 + ["We"] for _ in range(8)] + [["We"] * 10]
rows[1][1:4] = ["Ay", "Ay", "Ae"]
world = {"name": "multigrid", "options": {
    "map": "\\n".join(" ".join(row) for row in rows), "max_steps": 40}}
try:
    run_experiment({"world": world, "exact": {"memory_gib": 0.5}},
                   output_dir=sys.argv[1], wandb_mode="disabled", progress=False)
except Exception as error:
    print(type(error).__name__, error)
"""


@pytest.mark.slow
def test_oversized_world_fails_early_with_bounded_memory(tmp_path: Path) -> None:
    """A 10x10 open map with two humans and a robot for 40 steps (hundreds of
    millions of states) stops during enumeration with the budget message, within a 3 GiB
    address-space limit (issue 17)."""
    done = subprocess.run(
        [sys.executable, "-c", OVERSIZED, str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    line = done.stdout.strip().splitlines()[-1]
    assert line.startswith("BudgetExceededError world 'multigrid': at least ")
    assert "in the layered solver, more than the budget exact.memory_gib = 0.5" in line
    status = json.loads(next(tmp_path.glob("*/metrics.json")).read_text())
    assert status["status"] == "failed"
