"""The sampled learned solver end to end: dispatch, accuracy, resume, run outputs."""

from __future__ import annotations

import json
import math
from typing import Any

import pytest
import torch

from empo import Parameters, run_experiment
from empo.analysis import compare
from empo.exact import solve
from empo.learning import train
from empo.learning.sampled import SampledSolution, enumerable, uses_sampled
from empo.parameters.validation import ParameterError
from empo.worlds.registry import build_world, compile_any
from empo.worlds.transport.builtin import large, small

TINY = {
    "num_frames": 64,
    "frames_per_batch": 32,
    "batch_size": 8,
    "buffer_size": 64,
    "num_envs": 8,
    "samples_per_state": 1,
    "embed_dim": 8,
    "hidden_sizes": [16],
}
SCALED_LARGE = {"rows": 3, "cols": 3, "n_vehicles": 1, "n_humans": 2, "horizon": 6}


def _params(
    phase1: dict[str, Any], phase2: dict[str, Any], world: Any = "transport_small"
) -> Parameters:
    return Parameters.from_dict(
        {
            "world": world,
            "solver": "learned",
            "phase1": {**phase1, "world_access": "sampled"},
            "phase2": phase2,
        }
    )


def test_auto_access_samples_only_worlds_too_large_to_enumerate() -> None:
    auto = Parameters()
    assert not enumerable(large()) and uses_sampled(large(), auto)
    assert enumerable(small()) and not uses_sampled(small(), auto)
    assert not uses_sampled(compile_any(small()), auto)
    assert not uses_sampled(build_world("commitment"), auto)
    assert uses_sampled(small(), Parameters(phase1={"world_access": "sampled"}))
    assert not uses_sampled(large(), Parameters(phase1={"world_access": "compiled"}))


def test_train_dispatches_and_runs_on_the_default_large_world() -> None:
    solution = train(large(), Parameters(phase1=TINY, phase2=TINY), progress=False)
    assert isinstance(solution, SampledSolution)
    assert solution.stats["phase1/frames"] == 64 == solution.stats["phase2/frames"]
    assert math.isfinite(solution.v_r_s0) and solution.v_r_s0 < 0
    assert len(solution.w_h_s0) == 4
    rows = solution.model.initial_state[None].repeat(3, 1)
    pi_r = solution.pi_r(rows)
    assert pi_r.shape == (3, 25)
    assert torch.allclose(pi_r.sum(-1), torch.ones(3))
    assert torch.all(pi_r[:, ~solution.model.robot_mask(rows)[0]] == 0)
    assert solution.v_e(rows).shape == (3, 4, 16)
    assert torch.allclose(solution.v_r(rows), torch.full((3,), solution.v_r_s0))
    bits = torch.log2(solution.x_h(rows[:1]))[0]
    assert torch.allclose(bits, torch.tensor(solution.w_h_s0))


def test_tabular_world_forced_to_sampled_trains_on_state_ids() -> None:
    world = build_world("commitment")
    params = _params(TINY, TINY, world="commitment")
    solution = train(world, params, progress=False)
    exact = solve(world, params.theory)
    tables = solution.on_compiled(exact.world)
    assert tables.phase2["pi_r"].shape == exact.phase2["pi_r"].shape
    assert tables.phase1["pi_h"].shape == exact.phase1["pi_h"].shape
    errors = compare(tables, exact)
    assert all(0.0 <= value < math.inf for value in errors.values())


def test_knobs_that_need_an_enumerated_world_are_rejected_by_name() -> None:
    world = small()
    with pytest.raises(ValueError, match="phase2.variant = 'actor_critic'"):
        train(world, _params(TINY, {**TINY, "variant": "actor_critic"}))
    with pytest.raises(ValueError, match="phase1.uniform_state_fraction"):
        train(world, _params({**TINY, "uniform_state_fraction": 0.5}, TINY))
    with pytest.raises(ValueError, match="phase1.shaping_scale"):
        train(world, _params({**TINY, "shaping_scale": 1.0}, TINY))
    with pytest.raises(ParameterError, match="phase1.world_access"):
        Parameters(phase1={"world_access": "streamed"})
    with pytest.raises(ParameterError, match="phase2.samples_per_state"):
        Parameters(phase2={"samples_per_state": 0})


def test_interrupted_sampled_run_resumes_to_the_same_parameters(tmp_path) -> None:
    knobs = {
        **TINY,
        "num_frames": 96,
        "checkpoint_interval": 1,
        "expected_targets": False,
        "samples_per_state": 2,
    }
    params = _params(knobs, {**knobs, "beta_r_steps": 48})
    reference = train(small(), params, progress=False, run_dir=tmp_path / "a")

    class Interrupt(Exception):
        pass

    calls = []

    def interrupting(metrics: dict[str, float], step: int) -> None:
        calls.append(step)
        if len(calls) in (2, 5):  # in phase 1, then in phase 2
            raise Interrupt

    run_dir = tmp_path / "b"
    for _ in range(2):
        with pytest.raises(Interrupt):
            train(small(), params, progress=False, logger=interrupting, run_dir=run_dir)
    resumed = train(
        small(), params, progress=False, logger=interrupting, run_dir=run_dir
    )
    assert any(step > 96 for step in calls[:5])
    for key in ("phase1", "phase2"):
        ref = reference.networks[key].state_dict()
        got = resumed.networks[key].state_dict()
        assert ref.keys() == got.keys()
        for name in ref:
            assert torch.equal(ref[name], got[name]), f"{key}.{name} differs"
    assert resumed.v_r_s0 == reference.v_r_s0
    assert resumed.stats["phase2/frames"] == reference.stats["phase2/frames"]


def test_run_experiment_learned_on_a_scaled_down_large_world(tmp_path) -> None:
    world = {"name": "transport_large", "options": SCALED_LARGE}
    result = run_experiment(
        _params(TINY, TINY, world=world),
        output_dir=tmp_path,
        wandb_mode="disabled",
        progress=False,
    )
    names = {path.name for path in result.run_dir.iterdir()}
    assert {"params.yaml", "metrics.json", "trajectory.json", "rollout.gif"} <= names
    assert "solution.pt" not in names and "power_over_time.png" not in names
    metrics = json.loads((result.run_dir / "metrics.json").read_text())
    assert metrics["status"] == "completed"
    assert metrics["learned/phase1/frames"] == 64
    assert metrics["learned/phase2/grad_steps"] == 8
    for key in (
        "learned/V_r(s0)",
        "learned/W_h(s0)/human_0",
        "learned/W_h(s0)/human_1",
    ):
        assert math.isfinite(metrics[key])
    trajectory = json.loads((result.run_dir / "trajectory.json").read_text())
    built = large(**SCALED_LARGE)
    assert trajectory["states"][0] == built.initial_states()[0].tolist()
    assert [row[0] for row in trajectory["states"]] == list(range(7))
    assert trajectory["labels"][0].startswith("t=0")
    assert len(trajectory["actions"]) == 6
    assert set(trajectory["actions"][0]) == set(built.agents)


def test_solver_both_refuses_a_world_it_cannot_enumerate(tmp_path) -> None:
    with pytest.raises(ValueError, match="needs a world that can be enumerated"):
        run_experiment(
            {"world": "transport_large", "solver": "both"},
            output_dir=tmp_path,
            wandb_mode="disabled",
            progress=False,
        )
    (run_dir,) = tmp_path.iterdir()
    assert not (run_dir / "solution.pt").exists()
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert "world = 'transport_large'" in metrics["error"]


def test_forced_sampled_both_on_transport_small_writes_the_comparison(tmp_path) -> None:
    params = Parameters.from_dict({**_params(TINY, TINY).to_dict(), "solver": "both"})
    result = run_experiment(
        params, output_dir=tmp_path, wandb_mode="disabled", progress=False
    )
    comparison = json.loads((result.run_dir / "comparison.json").read_text())
    assert set(comparison) == {"v_m", "pi_h", "v_e", "x_h", "v_r", "v_r_rel", "pi_r"}
    assert all(0.0 <= value < math.inf for value in comparison.values())
    learned = torch.load(result.run_dir / "solution_learned.pt", weights_only=True)
    assert learned["phase2"]["pi_r"].shape == (115, 3)


ACCURATE = {
    "learning_rate": 3e-3,
    "learning_rate_decay": 0.1,
    "updates_per_batch": 8,
    "frames_per_batch": 128,
    "num_frames": 10000,
    "batch_size": 64,
    "samples_per_state": 4,
    "target_update_tau": 0.05,
    "epsilon_start": 0.5,
    "epsilon_steps": 3000,
    "buffer_size": 4000,
    "num_envs": 16,
}


@pytest.mark.slow
def test_sampled_solver_matches_exact_on_transport_small() -> None:
    params = _params(ACCURATE, {**ACCURATE, "beta_r_steps": 4000})
    world = small()
    solution = train(world, params, progress=False)
    compiled = compile_any(world)
    exact = solve(compiled, params.theory)
    errors = compare(solution.on_compiled(compiled), exact)
    assert errors["v_m"] <= 0.02 and errors["pi_h"] <= 0.04
    assert errors["v_e"] <= 0.05 and errors["pi_r"] <= 0.1
    assert errors["v_r_rel"] <= 0.1
    w_h = math.log2(float(exact.phase2["x_h"][compiled.initial_state, 0]))
    assert abs(solution.w_h_s0[0] - w_h) <= 0.1
