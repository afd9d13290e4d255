"""Targets and row model of the sampled learned solver against the exact solver."""

from __future__ import annotations

import itertools

import pytest
import torch

from empo import Parameters, theory
from empo.exact import solve
from empo.learning.sampled import (
    CompiledRows,
    RowFeatureEncoder,
    RowModel,
    phase1_target,
    phase2_target,
)
from empo.worlds.random_world import random_layered_world
from empo.worlds.transport.builtin import large

THEORY = {"beta_h": 5.0, "gamma_h": 0.9, "gamma_r": 0.95}


@pytest.fixture(scope="module")
def solved() -> tuple[RowModel, object]:
    world = random_layered_world(
        40,
        roles="hhrr",
        num_actions=[2, 3, 2, 3],
        num_goals=3,
        num_layers=5,
        rest_action=True,
        seed=5,
    )
    exact = solve(world, Parameters(theory=THEORY).theory)
    return RowModel(CompiledRows(world)), exact


def _grid(mask: torch.Tensor) -> torch.Tensor:
    """Every combination of allowed human actions of one state, ``[1, M, H]``."""
    allowed = [torch.nonzero(m)[:, 0].tolist() for m in mask]
    return torch.tensor(list(itertools.product(*allowed)))[None]


def test_robot_joint_actions_are_a_mixed_radix_over_the_robots() -> None:
    model = RowModel(large())
    assert model.robot_actions == 25 and model.max_human_actions == 8
    assert model.robot_parts[7].tolist() == [1, 2]
    rows = model.initial_state[None]
    per_robot = model.world.action_mask(rows)[0, 4:, :5]
    expected = (per_robot[0][:, None] & per_robot[1][None, :]).flatten()
    assert torch.equal(model.robot_mask(rows)[0], expected)
    assert int(expected.sum()) == 9


def test_phase1_target_is_eq1_when_the_profiles_cover_mu(solved) -> None:
    model, exact = solved
    v_m = exact.phase1["v_m"]
    world = exact.world
    checked = 0
    for s in torch.nonzero(~world.terminal)[:, 0].tolist():
        rows = torch.tensor([[s]])
        mask = model.human_mask(rows)[0]
        target = phase1_target(
            model, rows, _grid(mask), lambda r: v_m[r[:, 0]], THEORY["gamma_h"]
        )[0]
        valid = mask[:, None, :] & model.goal_mask[:, :, None]
        want = exact.phase1["q_m"][s].to(target.dtype)
        assert torch.allclose(target[valid], want[valid], atol=1e-6), s
        checked += int(valid.sum())
    assert checked > 200


def test_phase2_targets_are_unbiased_for_eqs_4_and_6(solved) -> None:
    model, exact = solved
    world = exact.world
    p1, p2 = exact.phase1, exact.phase2
    pi_bar = theory.goal_marginal_policy(p1["pi_h"], model.goal_weights)

    def successor_values(rows: torch.Tensor) -> dict[str, torch.Tensor]:
        return {"v_e": p2["v_e"][rows[:, 0]], "v_r": p2["v_r"][rows[:, 0]]}

    for s in torch.nonzero(~world.terminal)[:, 0].tolist():
        rows = torch.tensor([[s]])
        mask = model.human_mask(rows)[0]
        ve = torch.zeros_like(p2["v_e"][s])
        qr = torch.zeros_like(p2["q_r"][s])
        for profile in _grid(mask)[0]:
            weight = pi_bar[s, torch.arange(2), profile].prod()
            v, q = phase2_target(
                model,
                rows,
                p1["pi_h"][s][None],
                p2["pi_r"][s][None],
                profile[None, None],
                successor_values,
                THEORY["gamma_h"],
                THEORY["gamma_r"],
            )
            ve += weight * v[0]
            qr += weight * q[0]
        allowed = model.robot_mask(rows)[0]
        assert torch.allclose(qr[allowed], p2["q_r"][s][allowed], rtol=1e-5), s
        goals = model.goal_mask
        assert torch.allclose(ve[goals], p2["v_e"][s][goals], atol=1e-6), s


def test_sampled_successors_have_the_model_probabilities() -> None:
    world = random_layered_world(12, num_layers=3, stochastic_fraction=1.0, seed=2)
    model = RowModel(CompiledRows(world))
    s = int(torch.nonzero(~world.terminal)[0, 0])
    actions = torch.zeros(1, 20000, 2, dtype=torch.long)
    actions[..., 1] = int(torch.nonzero(world.action_mask[s, 1])[0, 0])
    actions[..., 0] = int(torch.nonzero(world.action_mask[s, 0])[0, 0])
    generator = torch.Generator().manual_seed(0)
    succ, prob = model.successors(torch.tensor([[s]]), actions, True, generator)
    assert torch.all(prob == 1.0)
    all_succ, all_prob = model.successors(torch.tensor([[s]]), actions[:, :1])
    for state, p in zip(all_succ[0, 0, :, 0], all_prob[0, 0]):
        share = float((succ[0, :, 0, 0] == state).float().mean())
        total = float(all_prob[0, 0][all_succ[0, 0, :, 0] == state].sum())
        assert abs(share - total) < 0.02


def test_row_feature_encoder_hashes_values_into_a_fixed_table() -> None:
    encoder = RowFeatureEncoder(state_dim=3, embed_dim=4, buckets=8)
    assert encoder.embedding.num_embeddings == 24
    rows = torch.tensor([[0, -1, 5], [8, 7, 13]])
    state, human, goal = encoder(rows)
    assert human is None and goal is None
    assert torch.allclose(state[0], state[1])
    weight = encoder.embedding.weight
    assert torch.allclose(state[0], weight[0] + weight[8 + 7] + weight[16 + 5])


def test_phase1_target_on_transport_rows_matches_the_exact_solver() -> None:
    from empo.worlds.registry import compile_any
    from empo.worlds.transport.builtin import small

    world = small(n_humans=2, horizon=3)
    compiled = compile_any(world)
    exact = solve(compiled, Parameters(theory=THEORY).theory)
    model = RowModel(world)
    table = compiled.state_table
    ids = {tuple(row.tolist()): i for i, row in enumerate(table)}
    v_m = exact.phase1["v_m"]

    def v_next(rows: torch.Tensor) -> torch.Tensor:
        return v_m[torch.tensor([ids[tuple(r.tolist())] for r in rows])]

    alive = torch.nonzero(~compiled.terminal)[:, 0].tolist()
    for s in alive[:: max(1, len(alive) // 15)]:
        rows = table[s][None]
        mask = model.human_mask(rows)[0]
        target = phase1_target(model, rows, _grid(mask), v_next, THEORY["gamma_h"])[0]
        valid = mask[:, None, :] & model.goal_mask[:, :, None]
        want = exact.phase1["q_m"][s].to(target.dtype)
        assert torch.allclose(target[valid], want[valid], atol=1e-6), s
