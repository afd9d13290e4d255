"""The Solution protocol: exact solutions answered on state rows; row lookup."""

import pytest
import torch

from empo.exact import solve
from empo.parameters import TheoryParameters
from empo.solution import Solution, SolutionTables, robot_action_parts
from empo.worlds.paradigms import commitment
from empo.worlds.registry import build_world, compile_any
from empo.worlds.rows import StateIndex, compiled_rows, world_model


@pytest.fixture(scope="module")
def corridor():
    world = build_world("corridor")
    return world, solve(compile_any(world), TheoryParameters())


def test_exact_solution_answers_on_rows(corridor) -> None:
    world, exact = corridor
    assert isinstance(exact, Solution) and isinstance(exact, SolutionTables)
    ids = torch.tensor([0, 5, 17, 400, exact.world.num_states - 1])
    rows = exact.world.state_table[ids]
    assert torch.equal(exact.robot_probs(rows), exact.phase2["pi_r"][ids])
    assert torch.equal(exact.human_power(rows), exact.phase2["x_h"][ids])
    assert torch.equal(exact.robot_values(rows), exact.phase2["v_r"][ids])
    goals = torch.tensor([[0], [1], [2], [3], [0]])
    got = exact.human_probs(rows, goals)
    assert got.shape == (5, 1, exact.phase1["pi_h"].shape[-1])
    for i, s in enumerate(ids.tolist()):
        g = int(goals[i, 0])
        assert torch.equal(got[i, 0], exact.phase1["pi_h"][s, 0, g])
    assert exact.tabulate() is exact and exact.tabulate(exact.world) is exact


def test_state_index_finds_every_state_and_rejects_unknown_rows(corridor) -> None:
    _, exact = corridor
    index = StateIndex(exact.world)
    every = compiled_rows(exact.world)
    assert torch.equal(index.ids(every), torch.arange(exact.world.num_states))
    unknown = every[:2].clone()
    unknown[1, 0] = 10_000
    with pytest.raises(KeyError, match="is not a state of the compiled world"):
        index.ids(unknown)
    with pytest.raises(KeyError, match="width"):
        index.ids(every[:1, :-1])


def test_tabular_rows_are_compiled_ids() -> None:
    world = commitment()
    exact = solve(world.compile(), TheoryParameters())
    model = world_model(world)
    s0 = model.initial_states()
    assert s0.tolist() == [[exact.world.initial_state]]
    assert torch.equal(exact.robot_probs(s0)[0], exact.phase2["pi_r"][0])
    with pytest.raises(KeyError):
        exact.robot_probs(torch.tensor([[exact.world.num_states]]))


def test_robot_action_parts_is_the_mixed_radix_over_robots() -> None:
    parts = robot_action_parts((2, 3, 4), (0, 2))
    assert parts.tolist() == [[a, b] for a in range(2) for b in range(4)]
    assert robot_action_parts((2,), ()).shape == (1, 0)
