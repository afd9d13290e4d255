"""Layered exact solver: agreement with the in-memory solver on every quantity."""

from pathlib import Path

import pytest
import torch

from empo.exact import solve
from empo.exact.layered import solve_layered
from empo.parameters.theory import TheoryParameters
from empo.worlds.compiler import compile_layers, compile_world
from empo.worlds.layers import enumerate_layers
from empo.worlds.random_world import random_layered_world
from empo.worlds.registry import build_world
from empo.worlds.table_model import TableModel
from empo.worlds.transition_cache import SENTINEL, TransitionCache

QUANTITIES = ("q_m", "pi_h", "v_m", "q_r", "pi_r", "v_e", "x_h", "u_r", "v_r")
OUTPUTS = ("q_m", "pi_h", "q_r", "pi_r", "x_h", "u_r", "w_h")


def assert_agree(reference, layered, ids: torch.Tensor, tol: float = 1e-9) -> None:
    """Every quantity of the in-memory ``reference`` at ``ids`` equals the layered
    solution's (same infinities)."""
    for name in QUANTITIES:
        expected = reference[name][ids]
        got = layered[name].to(expected.dtype)
        finite = torch.isfinite(expected)
        assert torch.equal(finite, torch.isfinite(got)), name
        assert torch.equal(expected[~finite], got[~finite]), name
        assert torch.allclose(got[finite], expected[finite], atol=tol, rtol=0), name


def compiled_ids(compiled, layered) -> torch.Tensor:
    """The compiled id of every layered state id."""
    order = torch.empty(compiled.num_states, dtype=torch.int64)
    order[layered.state_ids(compiled.state_table)] = torch.arange(compiled.num_states)
    return order


@pytest.mark.parametrize(
    "name, options",
    [
        ("two_humans_door", {}),
        ("key_door", {"max_steps": 6}),
        ("key_door_2h", {"max_steps": 3}),
        ("transport_small", {}),
        ("unsteady", {"max_steps": 4}),
    ],
)
def test_layered_matches_in_memory_on_builtin_worlds(name: str, options: dict) -> None:
    world = build_world(name, options)
    theory = TheoryParameters(beta_h=3.0, beta_r=4.0)
    compiled = compile_world(world)
    reference = solve(compiled, theory)
    layered = solve_layered(world, theory, outputs=OUTPUTS)
    assert layered.num_states == compiled.num_states
    assert_agree(reference, layered, compiled_ids(compiled, layered))


@pytest.mark.parametrize(
    "options",
    [
        dict(roles="hr"),
        dict(roles="hhr", num_actions=[3, 2, 4], rest_action=True, random_weights=True),
        dict(roles="rhh", window=5, num_goals=[2, 4], terminal_fraction=0.2),
        dict(roles="hrr", num_actions=[2, 3, 2], mask_fraction=0.4),
    ],
)
def test_layered_matches_in_memory_on_random_worlds(options: dict) -> None:
    """Random layered worlds: masks, stochastic outcomes, terminal states in every
    layer and successors two layers ahead (several layers held at once)."""
    world = random_layered_world(500, num_layers=6, max_outcomes=3, seed=3, **options)
    theory = TheoryParameters(beta_h=2.0, gamma_h=0.9, gamma_r=0.95)
    reference = solve(world, theory)
    model = TableModel(world)
    layered = solve_layered(model, theory, outputs=OUTPUTS)
    ids = layered.state_rows(torch.arange(layered.num_states))[:, 1]
    assert_agree(reference, layered, ids)


class Hashed:
    """A world model without state bounds or action effects (hashed keys, every
    joint action expanded)."""

    def __init__(self, model) -> None:
        self.model = model

    def __getattr__(self, name: str):
        if name in ("state_bounds", "action_effects"):
            raise AttributeError(name)
        return getattr(self.model, name)


def test_hashed_keys_float32_and_files(tmp_path: Path) -> None:
    world = build_world("key_door", {"max_steps": 6})
    compiled = compile_world(world)
    exact = solve(compiled, dtype=torch.float32)
    layered = solve_layered(
        Hashed(world),
        dtype=torch.float32,
        directory=tmp_path,
        outputs=("pi_r", "x_h", "w_h"),
    )
    assert not layered.layers.codec.exact
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "pi_r.npy",
        "v_e.npy",
        "v_m.npy",
        "v_r.npy",
        "w_h.npy",
        "x_h.npy",
    ]
    ids = compiled_ids(compiled, layered)
    for name in ("v_r", "pi_r", "x_h", "v_e"):
        assert torch.allclose(layered[name], exact[name][ids], atol=1e-5), name
    live = ~compiled.terminal[ids]
    w_h = torch.log2(exact["x_h"][ids][live])
    assert torch.allclose(layered["w_h"][live], w_h, atol=1e-4)
    assert not layered["w_h"][~live].any()


def test_quantities_anywhere_and_the_solution_protocol() -> None:
    """Every quantity at any state is recomputed from the stored successor values;
    the protocol methods answer on state rows."""
    world = build_world("key_door", {"max_steps": 5})
    compiled = compile_world(world)
    reference = solve(compiled)
    layered = solve_layered(world)
    assert layered.store.names == ("v_m", "v_e", "v_r")
    rows = compiled.state_table[::7]
    ids = torch.arange(compiled.num_states)[::7]
    local = layered.quantities(rows)
    for name in QUANTITIES:
        assert torch.allclose(local[name], reference[name][ids], atol=1e-12), name
    goals = torch.zeros(len(rows), 1, dtype=torch.int64)
    assert torch.equal(layered.robot_probs(rows), local["pi_r"])
    assert torch.equal(layered.human_probs(rows, goals), local["pi_h"][:, :, 0])
    assert torch.allclose(layered.robot_values(rows), reference["v_r"][ids])
    assert layered.tabulate() is None
    outside = rows[:1].clone()
    outside[0, 0] = 0
    outside[0, 1] = 0
    with pytest.raises(KeyError, match="not among"):
        layered.state_ids(outside)


def test_every_tensor_takes_the_solver_device(tmp_path: Path) -> None:
    """Device plumbing, run on the CPU: with the default device set to ``meta``
    (tensors without data, so one created without naming its device fails or
    mismatches), solving with ``device="cpu"`` named explicitly gives the same
    values, kept transitions and files included: every tensor of the layered path
    takes the solver's device, or the CPU for the store and the kept files. (CUDA
    itself has not run here.)"""
    world = build_world("key_door_2h", {"max_steps": 4})
    outputs = ("pi_r", "x_h", "w_h")
    reference = solve_layered(world, outputs=outputs)
    rows = reference.state_rows(torch.arange(0, reference.layers.num_states, 5))
    expected = reference.quantities(rows)
    with torch.device("meta"):
        layered = solve_layered(
            world, device="cpu", directory=tmp_path, outputs=outputs
        )
        local = layered.quantities(rows)
        probs = layered.robot_probs(rows)
    for name in ("v_m", "v_e", "v_r", *outputs):
        assert torch.equal(layered[name], reference[name]), name
    for name, value in expected.items():
        assert local[name].device.type == "cpu"
        assert torch.equal(local[name], value), name
    assert torch.equal(probs, expected["pi_r"])


def test_compile_layers_matches_compile_world() -> None:
    world = build_world("key_door_2h", {"max_steps": 3})
    layers = enumerate_layers(world)
    assert layers.first_reader == [0] + list(range(len(layers.keys) - 1))
    compiled = compile_layers(world, layers)
    compiled.validate()
    reference = compile_world(world)
    ids = torch.tensor([reference.index_of(row) for row in compiled.state_table])
    assert torch.equal(compiled.height, reference.height[ids])
    for name in ("v_r", "x_h", "pi_h"):
        assert torch.allclose(solve(compiled)[name], solve(reference)[name][ids])


def test_kept_and_regenerated_transitions_agree(tmp_path: Path) -> None:
    """Successors kept by the enumeration (read back once, then deleted) and
    successors regenerated from the world model give the same solution."""
    world = build_world("key_door_2h", {"max_steps": 4})
    theory = TheoryParameters(beta_h=3.0, beta_r=4.0)
    cache = TransitionCache(tmp_path / "kept")
    kept = solve_layered(world, theory, layers=enumerate_layers(world, cache=cache))
    assert sum(cache.bases.values()) == 0 and not any(cache.directory.iterdir())
    regenerated = solve_layered(world, theory, layers=enumerate_layers(world))
    for name in ("v_m", "v_e", "v_r"):
        assert torch.equal(kept[name], regenerated[name]), name


def test_transition_cache_reads_in_order_and_checks_counts(tmp_path: Path) -> None:
    cache = TransitionCache(tmp_path)
    cache.append(
        2,
        torch.tensor([[5, SENTINEL], [7, 9]]),
        torch.tensor([[1.0, 0.0], [0.25, 0.75]], dtype=torch.float64),
    )
    cache.append(2, torch.tensor([[3]]), torch.tensor([[1.0]], dtype=torch.float64))
    keys, probs = cache.take(2, 1)
    assert keys.tolist() == [[5]] and probs.tolist() == [[1.0]]
    keys, probs = cache.take(2, 2)
    assert keys.tolist() == [[7, 9], [3, SENTINEL]]
    assert probs.tolist() == [[0.25, 0.75], [1.0, 0.0]]
    with pytest.raises(RuntimeError, match="1 bases asked at base 3, 3 stored"):
        cache.take(2, 1)
    cache.drop(2)
    assert not any(tmp_path.iterdir())
    cache.append(0, torch.tensor([[1]]), torch.tensor([[1.0]], dtype=torch.float64))
    with pytest.raises(RuntimeError, match="0 of 1 bases read"):
        cache.drop(0)
    cache.close()
