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
from tensordict import TensorDict

from empo import Parameters
from empo.analysis import compare
from empo.exact import solve
from empo.learning import Phase1Loss, TransitionModel, train
from empo.learning.modules import GoalConditionedTable, Tabular, joint_backup_module
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
    model = TransitionModel(world)
    net = joint_backup_module(
        Tabular(model.num_states),
        model.num_humans,
        model.num_goals,
        model.num_joint,
        embed_dim=1,
        hidden=(1,),
    )
    with torch.no_grad():
        net.module.weight.uniform_(0.0, 1.0, generator=torch.Generator().manual_seed(0))
    loss = Phase1Loss(net, model, Parameters().theory, tabular=True)
    table = loss.z_network_params["module", "weight"]
    states = torch.tensor([0, 2])
    # no target copy: the targets bootstrap from the table itself
    torch.testing.assert_close(loss.target_z_network_params["module", "weight"], table)
    with torch.no_grad():
        prediction = loss.joint_backups(loss.z_network_params, states)
        successors, prob = model.successors_of(states, sampled=False)
        v_next = loss.phase1_values(loss.z_network_params, successors.flatten())
        v_next = v_next["v_m"].reshape(*successors.shape, *v_next["v_m"].shape[1:])
        in_goal = model.in_goal(successors)
        backup = torch.where(in_goal, 1.0, Parameters().theory.gamma_h * v_next)
        target = (prob[..., None, None] * backup).sum(2).permute(0, 2, 3, 1)
    before = table.detach().clone()
    loss(TensorDict({"state": states}, batch_size=[]))["loss_z"].backward()
    assert table.grad.is_sparse
    torch.optim.SGD([table], lr=0.3).step()
    after = table.detach()
    untouched = torch.ones(model.num_states, dtype=torch.bool)
    untouched[states] = False
    assert torch.equal(after[untouched], before[untouched])
    valid = model.joint_mask[states][:, None, None, :].expand_as(prediction)
    moved = (after[states] - before[states]).reshape(prediction.shape)
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
    errors = compare(train(world, params, progress=False), exact)
    assert errors["v_m"] < 1e-5 and errors["pi_h"] < 1e-5
    # the actor's logits move by α (weights − π_r) per visit, a gradient step
    # rather than a replacement, so the actor-critic variant converges more slowly
    tol = 1e-4 if variant == "dqn" else 5e-3
    assert errors["v_e"] < tol and errors["x_h"] < 10 * tol
    assert errors["pi_r"] < tol and errors["v_r_rel"] < 10 * tol


def test_tables_reproduce_the_commitment_paradigm() -> None:
    params = _params("commitment")
    learned = train(build_world("commitment"), params, progress=False)
    exact = solve(learned.world, params.theory)
    errors = compare(learned, exact)
    assert max(errors.values()) < 1e-5
    torch.testing.assert_close(
        learned.phase2["pi_r"], exact.phase2["pi_r"].float(), atol=1e-5, rtol=0
    )


def test_sampled_world_access_refuses_tables() -> None:
    world = random_layered_world(8, num_actions=2, num_goals=2, num_layers=3, seed=1)
    params = _params("commitment", world_access="sampled")
    with pytest.raises(ValueError, match="phase1.state_encoding = 'table'"):
        train(world, params, progress=False)


def test_goal_conditioned_table_reads_the_entries_of_each_triple() -> None:
    table = GoalConditionedTable(10, num_humans=2, num_goals=3, out_dim=4)
    with torch.no_grad():
        table.weight.normal_(generator=torch.Generator().manual_seed(1))
    states = torch.tensor([1, 5, 7])
    entries = table.weight.detach()[states].reshape(3, 2, 3, 4)
    every_pair = table(
        states[:, None, None], torch.arange(2)[None, :, None], torch.arange(3)[None]
    )
    assert torch.equal(every_pair, entries)
    some = table(states, torch.tensor([1, 0, 1]), torch.tensor([2, 2, 0]))
    assert torch.equal(
        some, torch.stack([entries[0, 1, 2], entries[1, 0, 2], entries[2, 1, 0]])
    )
    reversed_goals = table(
        states[:, None, None], torch.arange(2)[None, :, None], torch.arange(2, -1, -1)
    )
    assert torch.equal(reversed_goals, entries.flip(2))


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
    errors = compare(train(world, params, progress=False), solve(world, params.theory))
    assert errors["pi_h"] < 0.01 and errors["v_e"] < 0.01 and errors["pi_r"] < 0.02
