"""End-to-end training of the learned solver against the exact one, and resuming."""

from __future__ import annotations

from typing import Any

import pytest
import torch

from empo import Parameters
from empo.analysis import compare
from empo.exact import solve
from empo.learning import train
from empo.parameters.validation import ParameterError
from empo.worlds.random_world import random_layered_world

ACCURATE = {
    "learning_rate": 1e-2,
    "learning_rate_decay": 0.01,
    "batch_size": 64,
    "num_frames": 6000,
    "frames_per_batch": 100,
    "updates_per_batch": 20,
    "num_envs": 10,
    "max_episode_steps": 50,
    "buffer_size": 5000,
    "uniform_state_fraction": 1.0,
    "target_update_tau": 0.2,
    "embed_dim": 32,
    "hidden_sizes": [64, 64],
    "epsilon_start": 0.5,
    "epsilon_end": 0.1,
    "epsilon_steps": 2000,
}
THEORY = {"beta_h": 5.0, "gamma_h": 0.95, "gamma_r": 0.95}


def _params(phase1: dict[str, Any], phase2: dict[str, Any], **extra: Any) -> Parameters:
    return Parameters(
        world="commitment",
        solver="learned",
        theory=THEORY,
        phase1=phase1,
        phase2=phase2,
        **extra,
    )


@pytest.mark.slow
def test_learned_solution_matches_exact_on_a_small_world() -> None:
    world = random_layered_world(
        30, num_actions=3, num_goals=3, num_layers=5, rest_action=True, seed=3
    )
    params = _params(
        ACCURATE,
        {
            **ACCURATE,
            "beta_r_start": 0.5,
            "beta_r_steps": 2000,
            "goal_resample_steps": 10,
        },
        seed=1,
    )
    exact = solve(world, params.theory)
    learned = train(world, params, progress=False)
    errors = compare(learned, exact)
    assert errors["pi_r"] <= 0.05
    assert errors["v_e"] <= 0.03
    assert errors["pi_h"] <= 0.01 and errors["v_m"] <= 0.01
    assert learned.phase2["v_r"].shape == exact.phase2["v_r"].shape
    torch.testing.assert_close(
        learned.joint_policy().sum(-1)[~exact.world.terminal].double(),
        torch.ones(int((~exact.world.terminal).sum()), dtype=torch.float64),
    )


@pytest.mark.parametrize(
    ("variant", "encoding"),
    [
        ("dqn", "embedding"),
        ("actor_critic", "embedding"),
        ("dqn", "table"),
        ("actor_critic", "table"),
    ],
)
def test_interrupted_run_resumes_to_the_same_parameters(
    tmp_path, variant: str, encoding: str
) -> None:
    world = random_layered_world(16, num_actions=2, num_goals=2, num_layers=4, seed=5)
    knobs = {
        **ACCURATE,
        "state_encoding": encoding,
        "num_frames": 120,
        "frames_per_batch": 20,
        "updates_per_batch": 2,
        "batch_size": 8,
        "buffer_size": 64,
        "uniform_state_fraction": 0.5,
        "checkpoint_interval": 2,
        "log_interval": 1,
        "expected_targets": False,
    }
    phase2 = {**knobs, "beta_r_steps": 60, "variant": variant}
    params = _params(knobs, phase2, seed=3)
    reference = train(world, params, progress=False, run_dir=tmp_path / "a")

    class Interrupt(Exception):
        pass

    calls = []

    def interrupting(metrics: dict[str, float], step: int) -> None:
        calls.append(step)
        if len(calls) in (5, 9):  # 3rd phase-1 collection... and in phase 2
            raise Interrupt

    run_dir = tmp_path / "b"
    for _ in range(2):
        with pytest.raises(Interrupt):
            train(world, params, progress=False, logger=interrupting, run_dir=run_dir)
    resumed = train(world, params, progress=False, logger=interrupting, run_dir=run_dir)
    assert any(step > 120 for step in calls)  # an interruption fell in phase 2
    for key in ("phase1", "phase2"):
        ref = reference.networks[key].state_dict()
        got = resumed.networks[key].state_dict()
        assert ref.keys() == got.keys()
        for name in ref:
            assert torch.equal(ref[name], got[name]), f"{key}.{name} differs"
    assert torch.equal(reference.phase2["pi_r"], resumed.phase2["pi_r"])
    phase2_names = reference.networks["phase2"].state_dict().keys()
    actor = any("policy_network" in name for name in phase2_names)
    assert actor == (variant == "actor_critic")


def test_resume_refuses_other_parameters(tmp_path) -> None:
    world = random_layered_world(8, num_actions=2, num_goals=2, num_layers=3, seed=1)
    knobs = {
        "num_frames": 20,
        "frames_per_batch": 20,
        "batch_size": 8,
        "buffer_size": 32,
    }
    train(world, _params(knobs, knobs), progress=False, run_dir=tmp_path)
    with pytest.raises(ValueError, match="other parameters"):
        train(world, _params(knobs, knobs, seed=9), progress=False, run_dir=tmp_path)


def test_bad_knobs_are_rejected_with_the_field_name() -> None:
    with pytest.raises(ParameterError, match="phase1.state_encoding"):
        Parameters(phase1={"state_encoding": "pixels"})
    with pytest.raises(ParameterError, match="phase2.learning_rate_decay"):
        Parameters(phase2={"learning_rate_decay": 0.0})
    with pytest.raises(ParameterError, match="phase1.buffer_size"):
        Parameters(phase1={"buffer_size": 100, "frames_per_batch": 200})
    world = random_layered_world(8, num_actions=2, num_goals=2, num_layers=3, seed=1)
    with pytest.raises(ValueError, match="state_table"):
        train(world, Parameters(phase1={"state_encoding": "features"}), progress=False)


def test_run_experiment_both_saves_the_comparison(tmp_path) -> None:
    import json

    from empo import run_experiment

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
    assert set(comparison) == {"v_m", "pi_h", "v_e", "x_h", "v_r", "v_r_rel", "pi_r"}
    assert all(0.0 <= value < float("inf") for value in comparison.values())
    assert (run_dir / "learned_checkpoint.pt").exists()


@pytest.mark.slow
def test_potential_based_shaping_keeps_the_phase1_fixed_point() -> None:
    world = random_layered_world(
        30, num_actions=3, num_goals=3, num_layers=5, rest_action=True, seed=3
    )
    tiny = {"num_frames": 20, "frames_per_batch": 20, "batch_size": 8}
    params = _params({**ACCURATE, "shaping_scale": 1.0}, tiny, seed=2)
    exact = solve(world, params.theory)
    learned = train(world, params, progress=False)
    errors = compare(learned, exact)
    assert errors["v_m"] <= 0.01 and errors["pi_h"] <= 0.01
