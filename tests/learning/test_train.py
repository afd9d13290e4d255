"""End-to-end training of the learned solver on either data source: accuracy against
the exact solver, resuming, knob checks and run outputs."""

from __future__ import annotations

import json
import math
from typing import Any, Callable

import pytest
import torch

from empo import Parameters, run_experiment
from empo.analysis import compare
from empo.exact import solve
from empo.learning import CompiledData, LearnedSolution, RowData, enumerable, train
from empo.learning.checkpoint import CHECKPOINT_NAME
from empo.learning.knobs import ACCURATE, ACCURATE_PHASE2
from empo.learning.trainer import make_data
from empo.parameters.validation import ParameterError
from empo.worlds.random_world import random_layered_world
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


def _rows(phase1: dict[str, Any], phase2: dict[str, Any], world: Any) -> Parameters:
    return Parameters.from_dict(
        {
            "world": world,
            "solver": "learned",
            "phase1": {**phase1, "world_access": "sampled", "schedule": "online"},
            "phase2": phase2,
        }
    )


@pytest.mark.slow
@pytest.mark.parametrize("variant", ["dqn", "actor_critic"])
def test_learned_solution_matches_exact_on_a_small_world(
    variant: str, small_world: Any, learned_params: Callable[..., Parameters]
) -> None:
    world = small_world
    params = learned_params(
        ACCURATE, {**ACCURATE, **ACCURATE_PHASE2, "variant": variant}, seed=1
    )
    exact = solve(world, params.theory)
    learned = train(world, params, progress=False)
    tables = learned.tabulate()
    errors = compare(tables, exact)
    assert errors["pi_r"] <= 0.05 and errors["v_e"] <= 0.03
    assert errors["v_r_rel"] <= 0.02
    assert errors["pi_h"] <= 0.01 and errors["v_m"] <= 0.01
    alive = ~exact.world.terminal
    # float32 tables: their sums are 1 to float32 rounding
    joint = tables.joint_policy()
    torch.testing.assert_close(
        joint.sum(-1)[alive], torch.ones(int(alive.sum()), dtype=joint.dtype)
    )
    # the protocol answers on rows what the tables hold
    rows = exact.world.state_table
    ids = torch.arange(exact.world.num_states)
    rows = ids[:, None] if rows is None else rows
    torch.testing.assert_close(learned.robot_probs(rows), tables.phase2["pi_r"])


def test_auto_access_reads_rows_only_of_worlds_too_large_to_enumerate() -> None:
    auto = Parameters()
    assert not enumerable(large()) and isinstance(
        make_data(large(), auto, "cpu"), RowData
    )
    assert enumerable(small())
    assert isinstance(make_data(small(), auto, "cpu"), CompiledData)
    assert isinstance(make_data(compile_any(small()), auto, "cpu"), CompiledData)
    assert isinstance(make_data(build_world("commitment"), auto, "cpu"), CompiledData)
    sampled = Parameters(phase1={"world_access": "sampled"})
    assert isinstance(make_data(small(), sampled, "cpu"), RowData)
    compiled = Parameters(phase1={"world_access": "compiled"})
    assert isinstance(make_data(compile_any(small()), compiled, "cpu"), CompiledData)


@pytest.mark.parametrize(
    ("source", "variant", "encoding"),
    [
        ("compiled", "dqn", "embedding"),
        ("compiled", "actor_critic", "embedding"),
        ("compiled", "dqn", "table"),
        ("compiled", "actor_critic", "table"),
        ("rows", "dqn", "features"),
        ("rows", "actor_critic", "features"),
    ],
)
def test_interrupted_run_resumes_to_the_same_parameters(
    tmp_path,
    source: str,
    variant: str,
    encoding: str,
    resume_world: Any,
    learned_params: Callable[..., Parameters],
    resume_check: Callable[..., Any],
) -> None:
    knobs = {
        **ACCURATE,
        "state_encoding": encoding,
        "num_frames": 120,
        "frames_per_batch": 20,
        "updates_per_batch": 2,
        "batch_size": 8,
        "buffer_size": 64,
        "uniform_state_fraction": 0.5 if source == "compiled" else 0.0,
        "checkpoint_interval": 2,
        "log_interval": 1,
        "expected_targets": False,
        "samples_per_state": 2,
        "world_access": "compiled" if source == "compiled" else "sampled",
    }
    phase2 = {**knobs, "beta_r_steps": 60, "variant": variant}
    del phase2["world_access"]
    params = learned_params(knobs, phase2, seed=3)
    # interrupted at the 3rd phase-1 collection and in phase 2
    reference, resumed, calls = resume_check(resume_world, params, tmp_path, (5, 9))
    assert any(step > 120 for step in calls)  # an interruption fell in phase 2
    rows = torch.arange(resume_world.num_states)[:, None]
    assert torch.equal(reference.robot_probs(rows), resumed.robot_probs(rows))
    assert resumed.stats["phase2/frames"] == reference.stats["phase2/frames"]
    phase2_names = reference.networks["phase2"].state_dict().keys()
    actor = any("policy_network" in name for name in phase2_names)
    assert actor == (variant == "actor_critic")


def test_resume_refuses_other_parameters(
    tmp_path, learned_params: Callable[..., Parameters]
) -> None:
    world = random_layered_world(8, num_actions=2, num_goals=2, num_layers=3, seed=1)
    knobs = {
        "num_frames": 20,
        "frames_per_batch": 20,
        "batch_size": 8,
        "buffer_size": 32,
    }
    train(world, learned_params(knobs, knobs), progress=False, run_dir=tmp_path)
    with pytest.raises(ValueError, match="other parameters"):
        train(
            world,
            learned_params(knobs, knobs, seed=9),
            progress=False,
            run_dir=tmp_path,
        )


def test_bad_knobs_are_rejected_with_the_field_name() -> None:
    with pytest.raises(ParameterError, match="phase1.state_encoding"):
        Parameters(phase1={"state_encoding": "pixels"})
    with pytest.raises(ParameterError, match="phase2.learning_rate_decay"):
        Parameters(phase2={"learning_rate_decay": 0.0})
    with pytest.raises(ParameterError, match="phase1.buffer_size"):
        Parameters(phase1={"buffer_size": 100, "frames_per_batch": 200})
    with pytest.raises(ParameterError, match="phase1.world_access"):
        Parameters(phase1={"world_access": "streamed"})
    with pytest.raises(ParameterError, match="phase2.samples_per_state"):
        Parameters(phase2={"samples_per_state": 0})
    world = small()
    for knob, value in (
        ("uniform_state_fraction", 0.5),
        ("shaping_scale", 1.0),
        ("state_encoding", "table"),
        ("state_encoding", "embedding"),
    ):
        with pytest.raises(ValueError, match=f"phase1.{knob}"):
            train(world, _rows({**TINY, knob: value}, TINY, "transport_small"))


def test_embedding_knob_of_older_files_means_auto() -> None:
    old = {"version": "0.1.0", "phase1": {"state_encoding": "embedding"}}
    assert Parameters.from_dict(old).phase1.state_encoding.value == "auto"
    assert Parameters().phase2.state_encoding.value == "auto"


def test_run_experiment_both_saves_the_comparison(tmp_path) -> None:
    knobs = {
        "num_frames": 40,
        "frames_per_batch": 20,
        "batch_size": 8,
        "buffer_size": 32,
    }
    run_experiment(
        {"world": "commitment", "solver": "both", "phase1": knobs, "phase2": knobs},
        output_dir=tmp_path,
        wandb_mode="disabled",
        progress=False,
    )
    (run_dir,) = tmp_path.iterdir()
    comparison = json.loads((run_dir / "comparison.json").read_text())
    errors = {"v_m", "pi_h", "v_e", "x_h", "v_r", "v_r_rel", "pi_r"}
    assert set(comparison) == errors | {"policy"}
    assert all(0.0 <= comparison[key] < float("inf") for key in errors)
    assert (run_dir / CHECKPOINT_NAME).exists()


def test_train_runs_on_the_default_large_world() -> None:
    online = {**TINY, "schedule": "online"}
    solution = train(large(), Parameters(phase1=online, phase2=TINY), progress=False)
    assert isinstance(solution, LearnedSolution) and solution.tabulate() is None
    assert solution.stats["phase1/frames"] == 64 == solution.stats["phase2/frames"]
    rows = solution.data.initial_row[None].repeat(3, 1)
    pi_r = solution.robot_probs(rows)
    assert pi_r.shape == (3, 25)
    assert torch.allclose(pi_r.sum(-1), torch.ones(3))
    allowed = solution.data.robot_mask(solution.states(rows))[0]
    assert torch.all(pi_r[:, ~allowed] == 0)
    v_r = solution.robot_values(rows)
    assert (
        torch.isfinite(v_r).all() and torch.all(v_r < 0) and v_r.unique().numel() == 1
    )
    assert solution.human_power(rows).shape == (3, 4)
    pi_h = solution.human_probs(rows, torch.zeros(3, 4, dtype=torch.long))
    assert pi_h.shape == (3, 4, 8)
    torch.testing.assert_close(pi_h.sum(-1), torch.ones(3, 4))


def test_tabular_world_reached_by_rows_trains_on_state_ids() -> None:
    world = build_world("commitment")
    params = _rows(TINY, TINY, "commitment")
    solution = train(world, params, progress=False)
    assert isinstance(solution.data, RowData)
    exact = solve(world, params.theory)
    tables = solution.tabulate(exact.world)
    assert tables.phase2["pi_r"].shape == exact.phase2["pi_r"].shape
    assert tables.phase1["pi_h"].shape == exact.phase1["pi_h"].shape
    errors = compare(tables, exact)
    assert all(0.0 <= value < math.inf for value in errors.values())


def test_run_experiment_learned_on_a_scaled_down_large_world(tmp_path) -> None:
    world = {"name": "transport_large", "options": SCALED_LARGE}
    result = run_experiment(
        _rows(TINY, TINY, world),
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
    assert len(trajectory["actions"]) == 6


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


def test_rows_both_on_transport_small_writes_the_comparison(tmp_path) -> None:
    params = Parameters.from_dict(
        {**_rows(TINY, TINY, "transport_small").to_dict(), "solver": "both"}
    )
    result = run_experiment(
        params, output_dir=tmp_path, wandb_mode="disabled", progress=False
    )
    comparison = json.loads((result.run_dir / "comparison.json").read_text())
    errors = {"v_m", "pi_h", "v_e", "x_h", "v_r", "v_r_rel", "pi_r"}
    assert set(comparison) == errors | {"policy"}
    assert all(0.0 <= comparison[key] < math.inf for key in errors)
    assert math.isfinite(comparison["policy"]["v_r_s0"]["robot"])
    learned = torch.load(result.run_dir / "solution_learned.pt", weights_only=True)
    assert learned["phase2"]["pi_r"].shape == (115, 3)


ROWS_ACCURATE = {
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
def test_rows_solver_matches_exact_on_transport_small() -> None:
    params = _rows(
        ROWS_ACCURATE, {**ROWS_ACCURATE, "beta_r_steps": 4000}, "transport_small"
    )
    world = small()
    solution = train(world, params, progress=False)
    compiled = compile_any(world)
    exact = solve(compiled, params.theory)
    errors = compare(solution.tabulate(compiled), exact)
    assert errors["v_m"] <= 0.02 and errors["pi_h"] <= 0.04
    assert errors["v_e"] <= 0.05 and errors["pi_r"] <= 0.1
    assert errors["v_r_rel"] <= 0.1
    s0 = solution.data.initial_row[None]
    w_h = math.log2(float(exact.phase2["x_h"][compiled.initial_state, 0]))
    assert abs(math.log2(float(solution.human_power(s0)[0, 0])) - w_h) <= 0.1


@pytest.mark.slow
def test_potential_based_shaping_keeps_the_phase1_fixed_point(
    small_world: Any, learned_params: Callable[..., Parameters]
) -> None:
    world = small_world
    tiny = {"num_frames": 20, "frames_per_batch": 20, "batch_size": 8}
    params = learned_params({**ACCURATE, "shaping_scale": 1.0}, tiny, seed=2)
    exact = solve(world, params.theory)
    errors = compare(train(world, params, progress=False).tabulate(), exact)
    assert errors["v_m"] <= 0.01 and errors["pi_h"] <= 0.01
