"""Lookup tables (``state_encoding = "table"``): the tabular update and its fixed point.

A table has one entry per state id and output; it is trained by the tabular rule
``y ← y + α (target − y)`` on the distinct states of each batch and bootstraps from
itself (:mod:`empo.learning.trainer`), so with expected targets it must reproduce the
exact solver, not merely approach it.
"""

from __future__ import annotations

from typing import Any

import pytest
import torch

from empo import Parameters
from empo.analysis import compare
from empo.exact import solve
from empo.learning import CompiledData, Phase1Loss, train
from empo.learning.losses import TargetOptions
from empo.learning.modules import GoalTable, goal_network
from empo.learning.targets import phase1_target
from empo.parameters.learning import Phase1Parameters
from empo.worlds.random_world import random_layered_world
from empo.worlds.registry import build_world

TABLE = {
    "state_encoding": "table",
    "learning_rate": 0.5,
    "batch_size": 64,
    "num_frames": 3000,
    "frames_per_batch": 100,
    "updates_per_batch": 10,
    "num_envs": 10,
    "uniform_state_fraction": 1.0,
}
PHASE2 = {**TABLE, "beta_r_start": 0.5, "beta_r_steps": 1000, "goal_resample_steps": 10}
THEORY = {"beta_h": 5.0, "gamma_h": 0.95, "gamma_r": 0.95}


def _params(world: Any, variant: str = "dqn", **phase1: Any) -> Parameters:
    return Parameters(
        world=world,
        solver="learned",
        theory=THEORY,
        seed=1,
        phase1={**TABLE, **phase1},
        phase2={**PHASE2, "variant": variant},
    )


def test_one_step_moves_each_visited_entry_by_alpha_times_its_error() -> None:
    world = random_layered_world(12, num_actions=2, num_goals=2, num_layers=3, seed=4)
    data = CompiledData(world)
    knobs = Phase1Parameters(state_encoding="table")
    net = goal_network(data, knobs, data.max_human_actions, "q_m_raw")
    with torch.no_grad():
        net.module.weight.uniform_(0.0, 1.0, generator=torch.Generator().manual_seed(0))
    theory = Parameters().theory
    loss = Phase1Loss(net, data, theory, TargetOptions(tabular=True))
    table = loss.q_network_params["module", "weight"]
    # no target copy: the targets bootstrap from the table itself
    torch.testing.assert_close(loss.target_q_network_params["module", "weight"], table)
    states = data.of_ids(torch.tensor([0, 2]))
    with torch.no_grad():
        prediction = loss.evaluate(net, loss.q_network_params, states, "q_m_raw")
        others = data.others_profiles(states, 1, None)
        target = phase1_target(data, states, others, loss.successor_v_m, theory.gamma_h)
    before = table.detach().clone()
    loss(states)["loss_q_m"].backward()
    assert table.grad.is_sparse
    torch.optim.SGD([table], lr=0.3).step()
    after = table.detach()
    untouched = torch.ones(data.num_states, dtype=torch.bool)
    untouched[states.get("state_id")] = False
    assert torch.equal(after[untouched], before[untouched])
    valid = (
        data.human_mask(states)[:, :, None, :]
        & data.goal_mask[None, :, :, None]
        & ~data.terminal(states)[:, None, None, None]
    ).expand_as(prediction)
    assert bool(valid.any())
    moved = (after - before)[states.get("state_id")].reshape(prediction.shape)
    torch.testing.assert_close(
        moved[valid], 0.3 * (target - prediction)[valid], atol=1e-6, rtol=1e-5
    )
    torch.testing.assert_close(moved[~valid], torch.zeros_like(moved[~valid]))


@pytest.mark.parametrize("variant", ["dqn", "actor_critic"])
def test_tables_reproduce_the_exact_solver(variant: str) -> None:
    world = random_layered_world(
        30, num_actions=3, num_goals=3, num_layers=5, rest_action=True, seed=3
    )
    params = _params("commitment", variant)
    exact = solve(world, params.theory)
    errors = compare(train(world, params, progress=False).tabulate(), exact)
    assert errors["v_m"] < 1e-5 and errors["pi_h"] < 1e-5
    # the actor's logits move by α (weights − π_r) per visit, a gradient step
    # rather than a replacement, so the actor-critic variant converges more slowly
    tol = 1e-4 if variant == "dqn" else 5e-3
    assert errors["v_e"] < tol and errors["x_h"] < 10 * tol
    assert errors["pi_r"] < tol and errors["v_r_rel"] < 10 * tol


def test_tables_reproduce_the_commitment_paradigm() -> None:
    params = _params("commitment")
    learned = train(build_world("commitment"), params, progress=False).tabulate()
    exact = solve(learned.world, params.theory)
    errors = compare(learned, exact)
    assert max(errors.values()) < 1e-5
    torch.testing.assert_close(
        learned.phase2["pi_r"], exact.phase2["pi_r"].float(), atol=1e-5, rtol=0
    )


def test_goal_table_reads_the_entries_of_each_state() -> None:
    table = GoalTable(10, num_humans=2, num_goals=3, out_dim=4)
    with torch.no_grad():
        table.weight.normal_(generator=torch.Generator().manual_seed(1))
    states = torch.tensor([[1, 5], [7, 1]])
    entries = table.weight.detach()[states].reshape(2, 2, 2, 3, 4)
    assert torch.equal(table(states), entries)
    scalar = GoalTable(10, num_humans=2, num_goals=3, out_dim=1, init=1.0)
    assert torch.equal(scalar(torch.tensor([3])), torch.ones(1, 2, 3))


def test_tables_with_sampled_successors_approach_the_exact_solver() -> None:
    world = random_layered_world(
        30, num_actions=3, num_goals=3, num_layers=5, rest_action=True, seed=3
    )
    sampled = {**TABLE, "expected_targets": False, "learning_rate_decay": 0.01}
    params = _params("commitment").with_overrides(
        {
            **{f"phase1.{k}": v for k, v in sampled.items()},
            **{f"phase2.{k}": v for k, v in sampled.items()},
        }
    )
    learned = train(world, params, progress=False).tabulate()
    errors = compare(learned, solve(world, params.theory))
    assert errors["pi_h"] < 0.01 and errors["v_e"] < 0.01 and errors["pi_r"] < 0.02
