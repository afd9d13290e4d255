"""run_experiment: run directory, metrics, reproducibility, failures, hooks, W&B."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import Any

import imageio.v2 as imageio
import numpy as np
import pytest
import torch
from tensordict import TensorDict

import empo.exact
import empo.learning
from empo import Parameters, RunResult, run_experiment
from empo.parameters import ParameterError
from empo.utils.run_dir import create_run_dir, default_run_name
from empo.utils.seeding import derive_seed, solution_digest
from empo.utils.solution_files import ALL_KEYS, DEFAULT_KEYS
from empo.worlds.paradigms import commitment
from empo.worlds.registry import build_world

FAST = {"wandb_mode": "disabled", "progress": False}


def run(tmp_path: Path, params: Parameters | None = None, **kwargs: Any) -> RunResult:
    return run_experiment(
        params or Parameters(world="commitment", evaluation={"rollouts": 50}),
        output_dir=tmp_path,
        **{**FAST, **kwargs},
    )


def test_default_run_writes_a_complete_run_directory(tmp_path: Path) -> None:
    result = run(tmp_path, run_name="first")
    assert result.status == "completed"
    assert result.run_dir == tmp_path / "first"
    names = {p.name for p in result.run_dir.iterdir()}
    assert {
        "params.yaml",
        "metrics.json",
        "solution.pt",
        "trajectory.json",
        "run.log",
        "power_over_time.png",
        "robot_policy_s0.png",
    } <= names
    assert Parameters.load(result.run_dir / "params.yaml") == result.params
    metrics = json.loads((result.run_dir / "metrics.json").read_text())
    assert metrics == result.metrics
    assert metrics["status"] == "completed"
    solution = result.solution
    s0 = solution.world.initial_state
    assert metrics["num_states"] == solution.world.num_states
    assert metrics["v_r_s0"] == pytest.approx(float(solution.phase2["v_r"][s0]))
    # V_r(s_0) is the discounted expected robot reward along the propagated states
    assert metrics["u_r/expected_discounted_return"] == pytest.approx(
        metrics["v_r_s0"], abs=1e-12
    )
    pi_r = solution.phase2["pi_r"][s0].tolist()
    for name, p in zip(solution.robot_action_names, pi_r):
        assert metrics[f"robot_policy_s0/{name}"] == pytest.approx(p, abs=1e-12)
    w_h = torch.log2(solution.phase2["x_h"][s0, 0]).item()
    assert metrics["w_h/human/s0"] == pytest.approx(w_h)
    saved = torch.load(result.run_dir / "solution.pt", weights_only=True)
    assert torch.equal(saved["phase2"]["v_r"], solution.phase2["v_r"].float().cpu())
    assert set(saved["phase1"]) == {"v_m"}
    assert set(saved["phase2"]) == {"q_r", "pi_r", "v_e", "x_h", "u_r", "v_r"}
    log_text = (result.run_dir / "run.log").read_text()
    assert "completed" in log_text and "compiled" in log_text
    assert 0 < result.duration_s < 60
    phases = metrics["time/exact_phase1_s"] + metrics["time/exact_phase2_s"]
    assert 0 < phases <= metrics["time/exact_solve_s"]


def test_same_parameters_give_bit_identical_solutions(tmp_path: Path) -> None:
    params = Parameters(
        world="commitment", theory={"beta_r": 3.0}, seed=11, evaluation={"rollouts": 30}
    )
    first = run(tmp_path, params)
    second = run(tmp_path, params)
    assert first.run_dir != second.run_dir
    assert first.metrics["solution_sha256"] == second.metrics["solution_sha256"]
    digests = [
        solution_digest(torch.load(r.run_dir / "solution.pt", weights_only=True))
        for r in (first, second)
    ]
    assert digests[0] == digests[1]
    full = run(
        tmp_path,
        params.with_overrides({"output": {"quantities": ["all"], "dtype": "float64"}}),
    )
    saved = torch.load(full.run_dir / "solution.pt", weights_only=True)
    assert solution_digest(saved) == first.metrics["solution_sha256"]
    assert torch.equal(saved["phase1"]["pi_h"], full.solution.phase1["pi_h"].cpu())
    assert first.metrics["sampled/discounted_return_mean"] == (
        second.metrics["sampled/discounted_return_mean"]
    )
    other = run(tmp_path, params.with_overrides({"theory.beta_r": 4.0}))
    assert other.metrics["solution_sha256"] != first.metrics["solution_sha256"]


def test_failed_run_records_status_and_reraises(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("solver broke")

    monkeypatch.setattr(empo.exact, "solve", broken)
    with pytest.raises(RuntimeError, match="solver broke") as info:
        run(tmp_path, run_name="broken")
    metrics = json.loads((tmp_path / "broken" / "metrics.json").read_text())
    assert metrics["status"] == "failed"
    assert metrics["error"] == "RuntimeError: solver broke"
    assert "Traceback" in (tmp_path / "broken" / "run.log").read_text()
    assert any("broken" in note for note in info.value.__notes__)


def test_learned_solver_without_train_is_a_clear_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delattr(empo.learning, "train", raising=False)
    with pytest.raises(NotImplementedError, match="solver 'learned'"):
        run(
            tmp_path,
            Parameters(world="commitment", solver="learned"),
            run_name="learned",
        )
    metrics = json.loads((tmp_path / "learned" / "metrics.json").read_text())
    assert metrics["status"] == "failed"


def test_both_solvers_write_the_comparison(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from empo.exact import solve

    calls: dict[str, Any] = {}

    def fake_train(world: Any, params: Parameters, **kwargs: Any) -> Any:
        calls.update(kwargs)
        kwargs["logger"]({"phase1/loss": 0.5}, 1)
        return solve(world, params.theory)

    monkeypatch.setattr(empo.learning, "train", fake_train, raising=False)
    result = run(
        tmp_path, Parameters(world="commitment", solver="both"), run_name="both"
    )
    comparison = json.loads((result.run_dir / "comparison.json").read_text())
    assert comparison["v_r"] == 0.0 and comparison["pi_r"] == 0.0
    assert result.metrics["comparison/v_r"] == 0.0
    policy = comparison["policy"]
    v_r_s0 = float(result.solution.phase2["v_r"][0])
    assert policy["v_r_s0"] == {"robot": v_r_s0, "exact": v_r_s0}
    curves = policy["w_h_expected"]["human"]
    assert curves["robot"] == curves["exact"]
    assert max(e["error"] for e in policy["largest_errors"].values()) == 0.0
    assert result.metrics["comparison/policy/v_r_s0/robot"] == v_r_s0
    assert calls["run_dir"] == result.run_dir and calls["progress"] is False
    assert calls["exact"] is result.solution
    assert (result.run_dir / "solution_learned.pt").is_file()


def test_run_names_never_collide(tmp_path: Path) -> None:
    a = run(tmp_path, run_name="same")
    b = run(tmp_path, run_name="same")
    assert (a.run_dir.name, b.run_dir.name) == ("same", "same-1")
    made: list[Path] = []
    threads = [
        threading.Thread(target=lambda: made.append(create_run_dir(tmp_path, "race")))
        for _ in range(8)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(set(made)) == 8
    assert create_run_dir(tmp_path, "a/b c").name == "a_b_c"
    name = default_run_name(Parameters())
    assert name.startswith("key_door-") and len(name.split("-")[-1]) == 8
    assert name.split("-")[-1] != default_run_name(Parameters(seed=1)).split("-")[-1]


def test_sub_seeds_are_stable_and_distinct() -> None:
    assert derive_seed(0, "torch") == derive_seed(0, "torch")
    assert derive_seed(0, "torch") != derive_seed(0, "numpy")
    assert derive_seed(0, "torch") != derive_seed(1, "torch")
    assert 0 <= derive_seed(2**63 - 1, "x") < 2**63
    td = TensorDict({"a": torch.arange(3.0)}, batch_size=[3])
    assert solution_digest({"p": td}) == solution_digest(
        {"p": {"a": torch.arange(3.0)}}
    )
    assert solution_digest({"p": td}) != solution_digest({"p": {"a": torch.ones(3)}})


class DrawableWorld:
    """The commitment game with the rendering hooks of the MultiGrid worlds."""

    def __init__(self) -> None:
        self.inner = commitment()
        self.heatmap_calls: list[tuple[int, int, tuple[int, ...]]] = []

    def compile(self, device: Any = None, dtype: torch.dtype = torch.float64) -> Any:
        return self.inner.compile(device=device, dtype=dtype)

    def render_state(self, label: Any) -> np.ndarray:
        image = np.zeros((6, 9, 3), dtype=np.uint8)
        image[: label[0] + 1] = 255
        return image

    def power_heatmap(
        self, compiled: Any, w_h: torch.Tensor, human: int, reference_state: int
    ) -> np.ndarray:
        self.heatmap_calls.append((human, reference_state, tuple(w_h.shape)))
        grid = np.full((2, 3), np.nan)
        grid[0, 0] = float(w_h[reference_state, human])
        return grid


def test_world_drawing_hooks_give_gif_and_heatmaps(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    world = DrawableWorld()
    monkeypatch.setattr(
        "empo.parameters.world_options.build_world", lambda name, options: world
    )
    result = run(tmp_path, run_name="drawn")
    frames = imageio.mimread(result.run_dir / "rollout.gif")
    assert len(frames) == len(result.evaluation.trajectory) == 4
    assert [int(f[:, :, :3].max(axis=1).sum() // (255 * 3)) for f in frames] == [
        1,
        2,
        3,
        4,
    ]
    assert (result.run_dir / "power_heatmap_human.png").is_file()
    assert (result.run_dir / "power_heatmap_human_peak.png").is_file()
    num_states = result.metrics["num_states"]
    peak = world.heatmap_calls[1][1]
    assert world.heatmap_calls == [(0, 0, (num_states, 1)), (0, peak, (num_states, 1))]
    compiled = result.solution.world
    live = [s for s in result.evaluation.trajectory if not compiled.terminal[s]]
    x_h = result.solution.phase2["x_h"][:, 0]
    assert peak in live and x_h[peak] == max(x_h[s] for s in live)


def test_wandb_offline_run_holds_the_config(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("WANDB_MODE", raising=False)
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    monkeypatch.setenv("WANDB_SILENT", "true")
    params = Parameters(world="commitment", theory={"beta_r": 7.0})
    result = run_experiment(
        params,
        output_dir=tmp_path,
        run_name="offline",
        wandb_mode="offline",
        wandb_group="g",
        progress=False,
    )
    runs = list((result.run_dir / "wandb").glob("offline-run-*"))
    assert len(runs) == 1
    files = runs[0] / "files"
    assert Parameters.load(files / "params.yaml") == params
    assert json.loads((files / "metrics.json").read_text())["status"] == "completed"
    record = next(runs[0].glob("*.wandb"))
    deadline = time.monotonic() + 20  # wandb-core may still be flushing the record
    while b"beta_r" not in record.read_bytes() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert b"beta_r" in record.read_bytes()
    assert list((files / "media" / "images").glob("power_over_time*.png"))


def test_bad_wandb_mode_and_parameters_dicts(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="allowed: offline, online, disabled"):
        run(tmp_path, wandb_mode="sometimes", run_name="never")
    assert not (tmp_path / "never").exists()
    result = run(tmp_path, {"theory": {"beta_r": 2}}, run_name="from-dict")
    assert result.params.theory.beta_r == 2.0
    with pytest.raises(ParameterError, match="theory.beta_r"):
        run(tmp_path, {"theory": {"beta_r": -2}})


def test_builder_of_the_registry_is_used(tmp_path: Path) -> None:
    assert build_world("commitment").initial_state == commitment().initial_state


def test_wandb_online_without_credentials_never_prompts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import wandb

    asked: list[dict] = []

    def no_credentials(**kwargs: Any) -> bool:
        asked.append(kwargs)
        return False

    monkeypatch.setattr(wandb, "login", no_credentials)
    with pytest.raises(RuntimeError, match="wandb login"):
        run(tmp_path, wandb_mode="online", run_name="online")
    assert asked == [{"prompt": False, "verify": False}]
    metrics = json.loads((tmp_path / "online" / "metrics.json").read_text())
    assert metrics["status"] == "failed" and "WANDB_API_KEY" in metrics["error"]


@pytest.mark.slow
def test_learned_and_both_solvers_end_to_end(tmp_path: Path) -> None:
    knobs = {"num_frames": 300, "frames_per_batch": 100, "num_envs": 4}
    params = Parameters(
        world="commitment", solver="learned", phase1=knobs, phase2=knobs
    )
    learned = run(tmp_path, params, run_name="learned")
    assert learned.status == "completed" and learned.solution is learned.learned
    policy = [v for k, v in learned.metrics.items() if k.startswith("robot_policy_s0/")]
    assert sum(policy) == pytest.approx(1.0)
    assert learned.metrics["learned/phase1/frames"] >= 300
    assert (learned.run_dir / "solution_learned.pt").is_file()
    assert not (learned.run_dir / "solution.pt").exists()
    both = run(tmp_path, params.with_overrides({"solver": "both"}), run_name="both")
    comparison = json.loads((both.run_dir / "comparison.json").read_text())
    assert {"v_r", "pi_r", "x_h", "policy"} <= set(comparison)
    assert both.metrics["comparison/pi_r"] == comparison["pi_r"]
    assert comparison["policy"]["v_r_s0"]["exact"] == both.metrics["v_r_s0"]
    assert both.solution is not both.learned  # the exact solution is evaluated
    assert both.metrics["solution_sha256"] == run(tmp_path).metrics["solution_sha256"]


def _solution_bytes(result: RunResult, keys: tuple[str, ...], itemsize: int) -> int:
    tensors = {**result.solution.phase1.to_dict(), **result.solution.phase2.to_dict()}
    return sum(tensors[k].numel() * itemsize for k in keys)


def test_solution_file_holds_the_chosen_quantities_at_their_size(
    tmp_path: Path,
) -> None:
    params = Parameters(world="two_humans_door", evaluation={"rollouts": 0})
    result = run(tmp_path, params)
    size = (result.run_dir / "solution.pt").stat().st_size
    default = _solution_bytes(result, DEFAULT_KEYS, 4)
    assert default < size < default + 20_000  # float32 data plus the zip container
    assert default < 0.25 * _solution_bytes(result, ALL_KEYS, 8)
    chosen = run(
        tmp_path,
        params.with_overrides(
            {"output": {"quantities": ["pi_r", "v_r", "w_h"], "dtype": "float64"}}
        ),
    )
    saved = torch.load(chosen.run_dir / "solution.pt", weights_only=True)
    assert {p: set(v) for p, v in saved.items()} == {
        "phase1": set(),
        "phase2": {"pi_r", "v_r", "w_h"},
    }
    assert saved["phase2"]["v_r"].dtype == torch.float64
    x_h = chosen.solution.phase2["x_h"].cpu()
    assert torch.equal(saved["phase2"]["w_h"], torch.log2(x_h))
    none = run(
        tmp_path, params.with_overrides({"output.quantities": []}), run_name="none"
    )
    assert not (none.run_dir / "solution.pt").exists()
    with pytest.raises(ParameterError, match=r"output.quantities = \('pi',\)"):
        params.with_overrides({"output.quantities": ["pi"]})


@pytest.mark.slow
def test_default_run_writes_no_file_over_25_mb(tmp_path: Path) -> None:
    result = run(tmp_path, Parameters())
    sizes = {p.name: p.stat().st_size for p in result.run_dir.rglob("*") if p.is_file()}
    assert max(sizes.values()) < 25_000_000, sizes
    assert 10_000_000 < sizes["solution.pt"]  # key_door's 82,658 states are in it
