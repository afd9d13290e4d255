"""Data sources: what each tells the solver about states, successors and profiles."""

from __future__ import annotations

import torch

from empo.learning.data import STATE, STATE_ID, CompiledData, RowData, mixed_radix
from empo.learning.modules import ColumnFeatures, hashed_features
from empo.worlds.random_world import random_layered_world
from empo.worlds.registry import compile_any
from empo.worlds.rows import CompiledRows
from empo.worlds.transport.builtin import large, small


def test_mixed_radix_and_robot_joint_actions() -> None:
    assert mixed_radix((2, 3)).tolist() == [
        [0, 0],
        [0, 1],
        [0, 2],
        [1, 0],
        [1, 1],
        [1, 2],
    ]
    data = RowData(large())
    assert data.robot_actions == 25 and data.max_human_actions == 8
    assert data.robot_parts[7].tolist() == [1, 2]
    states = data.initial()
    per_robot = data.world.action_mask(states.get(STATE))[0, 4:, :5]
    expected = (per_robot[0][:, None] & per_robot[1][None, :]).flatten()
    assert torch.equal(data.robot_mask(states)[0], expected)
    assert int(expected.sum()) == 9


def _hhrr() -> CompiledData:
    world = random_layered_world(
        40,
        roles="hhrr",
        num_actions=[2, 3, 2, 3],
        num_goals=3,
        num_layers=5,
        rest_action=True,
        seed=5,
    )
    return CompiledData(world)


def test_compiled_profiles_are_mu_and_the_goal_marginals() -> None:
    data = _hhrr()
    states = data.of_ids(data.alive)
    actions, weights = data.others_profiles(states, 1, None)
    assert actions.shape == (1, 2, 3, 2) and weights.shape == (len(data.alive), 2, 3)
    mask = data.human_mask(states).float()
    # human 0 sees the 3 actions of human 1 (uniform over the allowed ones) and
    # human 1 the 2 actions of human 0, padded with a weight-0 profile
    assert actions[0, 0, :, 1].tolist() == [0, 1, 2]
    assert actions[0, 1, :2, 0].tolist() == [0, 1]
    torch.testing.assert_close(weights[:, 0], mask[:, 1] / mask[:, 1].sum(-1, True))
    torch.testing.assert_close(
        weights[:, 1, :2], mask[:, 0, :2] / mask[:, 0].sum(-1, True)
    )
    assert torch.all(weights[:, 1, 2] == 0)
    pi_bar = torch.tensor([[[0.25, 0.75, 0.0], [0.5, 0.25, 0.25]]])
    actions, weights = data.human_profiles(pi_bar, 1, None)
    assert actions[0].tolist() == mixed_radix((2, 3)).tolist()
    torch.testing.assert_close(
        weights[0], torch.tensor([0.125, 0.0625, 0.0625, 0.375, 0.1875, 0.1875])
    )


def test_row_profiles_are_drawn_from_mu_and_the_goal_marginals() -> None:
    compiled = _hhrr()
    data = RowData(CompiledRows(compiled.world))
    s = int(compiled.alive[0])
    states = data.states(torch.tensor([[s]]))
    generator = torch.Generator().manual_seed(0)
    actions, weights = data.others_profiles(states, 20000, generator)
    assert torch.all(weights == 1 / 20000)
    mask = data.human_mask(states)[0].float()
    for h in range(2):
        share = (
            torch.bincount(actions[0, 0, :, h], minlength=3)[: mask.shape[1]] / 20000
        )
        want = mask[h] / mask[h].sum()
        assert torch.allclose(share, want, atol=0.02)
    pi_bar = torch.tensor([[[0.25, 0.75, 0.0], [0.5, 0.25, 0.25]]])
    actions, _ = data.human_profiles(pi_bar, 20000, generator)
    for h in range(2):
        share = torch.bincount(actions[0, :, h], minlength=3) / 20000
        assert torch.allclose(share, pi_bar[0, h], atol=0.02)


def test_sampled_successors_have_the_model_probabilities() -> None:
    world = random_layered_world(12, num_layers=3, stochastic_fraction=1.0, seed=2)
    compiled = CompiledData(world)
    s = int(compiled.alive[0])
    actions = torch.zeros(1, 20000, 2, dtype=torch.long)
    actions[..., 0] = int(torch.nonzero(world.action_mask[s, 0])[0, 0])
    actions[..., 1] = int(torch.nonzero(world.action_mask[s, 1])[0, 0])
    joint = int(compiled.joint_index(actions[0, 0]))
    exact = torch.zeros(world.num_states)
    exact.index_add_(
        0, world.successors[s, joint], world.probabilities[s, joint].float()
    )
    for data in (compiled, RowData(CompiledRows(world))):
        generator = torch.Generator().manual_seed(0)
        states = data.states(torch.tensor([[s]]))
        succ, prob = data.successors(states, actions, True, generator)
        assert torch.all(prob == 1.0) and prob.shape == (1, 20000, 1)
        ids = succ.get(STATE_ID) if data.enumerated else succ.get(STATE)[..., 0]
        share = torch.bincount(ids.flatten(), minlength=world.num_states) / 20000
        assert torch.allclose(share, exact, atol=0.02)


def test_rows_and_compiled_tensors_give_the_same_successors() -> None:
    world = small(n_humans=2, horizon=3)
    rows = RowData(world)
    compiled = CompiledData(compile_any(world))
    states = compiled.of_ids(compiled.alive)
    mask = compiled.action_mask(states)
    generator = torch.Generator().manual_seed(3)
    actions = (
        torch.multinomial(
            mask.flatten(0, 1).float(), 6, replacement=True, generator=generator
        )
        .reshape(*mask.shape[:2], 6)
        .transpose(1, 2)
    )
    succ_c, prob_c = compiled.successors(states, actions)
    succ_r, prob_r = rows.successors(rows.states(states.get(STATE)), actions)
    unique, inverse = rows.distinct(succ_r, prob_r)
    ids = compiled.states(unique.get(STATE)).get(STATE_ID)[inverse]
    n = compiled.num_states
    want = torch.zeros(*prob_c.shape[:2], n).scatter_add_(
        2, succ_c.get(STATE_ID), prob_c
    )
    got = torch.zeros(*prob_r.shape[:2], n).scatter_add_(2, ids, prob_r)
    torch.testing.assert_close(got, want)


class _StrictWorld:
    """A world model that refuses disallowed actions (as an environment may)."""

    def __init__(self, world: CompiledRows):
        self.inner = world

    def __getattr__(self, name: str):
        return getattr(self.inner, name)

    def transitions(self, states: torch.Tensor, actions: torch.Tensor):
        allowed = torch.gather(self.inner.action_mask(states), 2, actions[..., None])
        assert bool(allowed.all()), "a disallowed action reached the world"
        return self.inner.transitions(states, actions)


def test_rows_never_hand_a_disallowed_action_to_the_world() -> None:
    world = random_layered_world(12, num_actions=3, num_layers=3, seed=4)
    data = RowData(_StrictWorld(CompiledRows(world)))
    mask = world.action_mask
    s = int(torch.nonzero(~mask[:, 0, :3].all(-1) & ~world.terminal)[0, 0])
    bad = int(torch.nonzero(~mask[s, 0, :3])[0, 0])
    good = int(torch.nonzero(mask[s, 1])[0, 0])
    actions = torch.tensor([[[bad, good]]])
    _, prob = data.successors(data.states(torch.tensor([[s]])), actions)
    assert float(prob.sum()) == 0.0


def test_column_features_concatenate_or_hash_into_a_fixed_table() -> None:
    exact = ColumnFeatures(torch.tensor([0, 2]), torch.tensor([3, 2]), 4, True)
    assert exact.embedding.num_embeddings == 5 and exact.state_dim == 8
    weight = exact.embedding.weight
    torch.testing.assert_close(
        exact(torch.tensor([[1, 3]]))[0], torch.cat([weight[1], weight[3 + 1]])
    )
    hashed = hashed_features(3, 4, buckets=8)
    assert hashed.embedding.num_embeddings == 24 and hashed.state_dim == 4
    state = hashed(torch.tensor([[0, -1, 5], [8, 7, 13]]))
    assert torch.allclose(state[0], state[1])
    weight = hashed.embedding.weight
    assert torch.allclose(state[0], weight[0] + weight[8 + 7] + weight[16 + 5])
