"""Generic batched compiler: agreement with TabularWorld.compile and a brute force."""

from collections import deque

import pytest
import torch
from torch import Tensor

import empo.worlds.compiler as compiler
import empo.worlds.hashing as hashing
from empo.worlds import paradigms
from empo.worlds.base import WorldModel
from empo.worlds.compiled import CompiledWorld
from empo.worlds.compiler import compile_world
from empo.worlds.hashing import hash_rows
from empo.worlds.compiled import height_from_edges
from empo.worlds.tabular import TabularWorld


class LineWalk:
    """Human and robot on a line of ``width`` cells for ``horizon`` steps.

    State ``(t, x_h, x_r)``. The human moves left/stay/right and slips (stays) with
    probability 0.2, listed as a *duplicate* outcome when it meant to stay; the robot
    stays or steps right (not allowed at the right end). Goals: the human at cell i.
    """

    agents = ("human", "robot")
    humans = (0,)
    robots = (1,)
    action_names = (("left", "stay", "right"), ("stay", "step"))
    rest_action = (1, 0)
    state_dim = 3
    max_outcomes = 2

    def __init__(self, width: int, horizon: int) -> None:
        self.width, self.horizon = width, horizon
        self.goal_names = (tuple(f"at {i}" for i in range(width)),)
        self.goal_weights = torch.ones(1, width, dtype=torch.float64)

    def initial_states(self) -> Tensor:
        return torch.tensor([[0, 0, self.width - 1], [0, 0, self.width - 1]])

    def is_terminal(self, states: Tensor) -> Tensor:
        return states[:, 0] >= self.horizon

    def action_mask(self, states: Tensor) -> Tensor:
        mask = torch.ones(len(states), 2, 3, dtype=torch.bool)
        mask[:, 1, 2] = False
        mask[:, 1, 1] = states[:, 2] < self.width - 1
        return mask

    def transitions(self, states: Tensor, actions: Tensor) -> tuple[Tensor, Tensor]:
        moved = states.clone()
        moved[:, 0] += 1
        moved[:, 1] = (states[:, 1] + actions[:, 0] - 1).clamp(0, self.width - 1)
        moved[:, 2] = states[:, 2] + actions[:, 1]
        slipped = moved.clone()
        slipped[:, 1] = states[:, 1]
        probs = torch.tensor([0.8, 0.2], dtype=torch.float64).repeat(len(states), 1)
        return torch.stack([moved, slipped], dim=1), probs

    def goal_membership(self, states: Tensor) -> Tensor:
        cells = torch.arange(self.width)
        return (states[:, 1, None] == cells)[:, None, :]


class Scramble:
    """Stochastic layered world with ``k`` outcomes per joint action.

    State ``(t, a)``; outcome ``j`` of joint action ``(x, y)`` leads to
    ``(t + 1, (3 a + 2 x + y + j * j) % width)``, so outcomes repeat (merged) and
    some have probability 0 (outcome 0 never). The robot may only use action 2 when ``a`` is even.
    """

    agents = ("human", "robot")
    humans = (0,)
    robots = (1,)
    action_names = (("a", "b"), ("p", "q", "r"))
    rest_action = (0, 0)
    state_dim = 2

    def __init__(self, width: int, horizon: int, k: int) -> None:
        self.width, self.horizon, self.max_outcomes = width, horizon, k
        self.goal_names = (("zero", "odd"),)
        self.goal_weights = torch.tensor([[1.0, 2.0]], dtype=torch.float64)

    def initial_states(self) -> Tensor:
        return torch.tensor([[0, 1], [0, 2], [0, 1]])

    def is_terminal(self, states: Tensor) -> Tensor:
        return states[:, 0] >= self.horizon

    def action_mask(self, states: Tensor) -> Tensor:
        mask = torch.ones(len(states), 2, 3, dtype=torch.bool)
        mask[:, 0, 2] = False
        mask[:, 1, 2] = states[:, 1] % 2 == 0
        return mask

    def transitions(self, states: Tensor, actions: Tensor) -> tuple[Tensor, Tensor]:
        j = torch.arange(self.max_outcomes)
        base = 3 * states[:, 1] + 2 * actions[:, 0] + actions[:, 1]
        cell = (base[:, None] + j * j) % self.width
        time = (states[:, 0] + 1)[:, None].expand_as(cell)
        weights = ((base[:, None] + j) % 3).double()
        weights[:, 0] += 1
        return torch.stack([time, cell], dim=2), weights / weights.sum(1, keepdim=True)

    def goal_membership(self, states: Tensor) -> Tensor:
        return torch.stack([states[:, 1] == 0, states[:, 1] % 2 == 1], dim=1)[:, None]


def brute_force(model: LineWalk) -> dict[tuple, dict[tuple, dict[tuple, float]]]:
    """Reference enumeration with Python dicts: state -> joint -> successor -> p."""
    start = tuple(model.initial_states()[0].tolist())
    seen, queue, table = {start}, deque([start]), {}
    while queue:
        state = queue.popleft()
        row = torch.tensor([state])
        if model.is_terminal(row)[0]:
            table[state] = {}
            continue
        mask = model.action_mask(row)[0]
        table[state] = {}
        for a in range(3):
            for b in range(2):
                if not (mask[0, a] and mask[1, b]):
                    continue
                nxt, probs = model.transitions(row, torch.tensor([[a, b]]))
                merged: dict[tuple, float] = {}
                for s, p in zip(nxt[0].tolist(), probs[0].tolist()):
                    merged[tuple(s)] = merged.get(tuple(s), 0.0) + p
                table[state][(a, b)] = merged
                for s in merged:
                    if s not in seen:
                        seen.add(s)
                        queue.append(s)
    return table


def dense_kernel(world: CompiledWorld) -> Tensor:
    """``[state, joint, state]`` transition probabilities."""
    kernel = torch.zeros(world.num_states, world.num_joint_actions, world.num_states)
    kernel.scatter_add_(2, world.successors, world.probabilities.float())
    return kernel


def assert_same_up_to_order(
    reference: CompiledWorld, other: CompiledWorld, perm: Tensor
) -> None:
    """``other``'s state ``i`` is ``reference``'s state ``perm[i]``."""
    assert perm.unique().numel() == reference.num_states == other.num_states
    assert int(perm[other.initial_state]) == reference.initial_state
    assert torch.equal(other.terminal, reference.terminal[perm])
    assert torch.equal(other.action_mask, reference.action_mask[perm])
    assert torch.equal(other.goal_membership, reference.goal_membership[:, :, perm])
    assert torch.equal(other.goal_weights, reference.goal_weights)
    assert other.action_names == reference.action_names
    assert other.goal_names == reference.goal_names
    assert other.rest_action == reference.rest_action
    expected = dense_kernel(reference)[perm][:, :, perm]
    assert torch.allclose(dense_kernel(other), expected, atol=1e-12)
    if reference.height is None:
        assert other.height is None
    else:
        assert torch.equal(other.height, reference.height[perm])


@pytest.mark.parametrize(
    "world",
    [
        paradigms.commitment(),
        paradigms.menu_size(max_k=4),
        paradigms.confirmation(max_confirmations=2),
        paradigms.resource_split(units=2),
        paradigms.pause_destroy(),
    ],
    ids=["commitment", "menu_size", "confirmation", "resource_split", "pause"],
)
def test_matches_tabular_compile(world: TabularWorld) -> None:
    reference = world.compile()
    compiled = compile_world(world.as_world_model(), batch_size=7)
    compiled.validate()
    labels = [world.states[i] for i in compiled.state_table[:, 0].tolist()]
    perm = torch.tensor([reference.index_of(label) for label in labels])
    assert_same_up_to_order(reference, compiled, perm)


def test_line_walk_against_brute_force() -> None:
    model = LineWalk(width=4, horizon=3)
    assert isinstance(model, WorldModel)
    table = brute_force(model)
    world = compile_world(model, batch_size=5)
    world.validate()
    assert world.num_states == len(table)
    assert world.successors.shape[2] == 2
    rows = [tuple(r) for r in world.state_table.tolist()]
    assert set(rows) == set(table)
    assert rows[world.initial_state] == (0, 0, 3)
    assert world.height.tolist() == [3 - t for t, _, _ in rows]
    for index, state in enumerate(rows):
        assert bool(world.terminal[index]) == (not table[state])
        for (a, b), outcomes in table[state].items():
            joint = world.joint_action_index([a, b])
            got: dict[tuple, float] = {}
            for s, p in zip(
                world.successors[index, joint].tolist(),
                world.probabilities[index, joint].tolist(),
            ):
                if p > 0:
                    got[rows[s]] = got.get(rows[s], 0.0) + p
            assert got == pytest.approx(outcomes)
        assert world.goal_membership[0, :, index].nonzero().flatten().tolist() == [
            state[1]
        ]


def test_max_states_and_collisions(monkeypatch: pytest.MonkeyPatch) -> None:
    model = LineWalk(width=4, horizon=3)
    total = compile_world(model).num_states
    assert compile_world(model, max_states=total).num_states == total
    with pytest.raises(ValueError, match=f"more than exact.max_states = {total - 1}"):
        compile_world(model, max_states=total - 1)
    monkeypatch.setattr(compiler, "hash_rows", lambda rows: rows[..., 0] * 0)
    with pytest.raises(RuntimeError, match="hash collision"):
        compile_world(model)


def test_cyclic_world_and_dtype() -> None:
    world = paradigms.confirmation(max_confirmations=1)
    compiled = compile_world(world.as_world_model(), dtype=torch.float32)
    assert compiled.height is None
    assert compiled.probabilities.dtype == torch.float32
    assert compiled.metadata["states_per_second"] > 0


def test_hash_regression_rows() -> None:
    rows = torch.tensor(
        [
            [3, 3, -1, 0, -1, 1, -1, 0, -1, 1, -1, 0],
            [3, 3, -1, 0, -1, 1, 1, 1, -1, 1, -1, 0],
        ]
    )
    assert hash_rows(rows).unique().numel() == 2
    grid = torch.cartesian_prod(*[torch.arange(2)] * 16)
    assert hash_rows(grid).unique().numel() == 2**16


FIELDS = (
    "action_mask",
    "successors",
    "probabilities",
    "terminal",
    "goal_membership",
    "goal_weights",
    "height",
    "state_table",
)


@pytest.mark.parametrize("k", [1, 3, 10])
def test_batch_size_does_not_change_the_result(k: int) -> None:
    model = Scramble(width=9, horizon=4, k=k)
    worlds = [compile_world(model, batch_size=size) for size in (1, 7, 40, 1 << 16)]
    worlds[0].validate()
    assert worlds[0].num_states > 20
    for world in worlds[1:]:
        assert world.initial_state == worlds[0].initial_state
        for field in FIELDS:
            assert torch.equal(getattr(world, field), getattr(worlds[0], field)), field


def test_scramble_against_python_merge() -> None:
    model = Scramble(width=7, horizon=2, k=10)
    world = compile_world(model, batch_size=5)
    rows = [tuple(r) for r in world.state_table.tolist()]
    assert len(set(rows)) == len(rows)
    keys = hash_rows(world.state_table)
    for index, state in enumerate(rows):
        if state[0] >= model.horizon:
            assert not world.action_mask[index].any()
            continue
        for joint in range(world.num_joint_actions):
            a, b = divmod(joint, 3)
            if b == 2 and state[1] % 2:
                assert float(world.probabilities[index, joint].sum()) == 0
                continue
            nxt, probs = model.transitions(
                torch.tensor([state]), torch.tensor([[a, b]])
            )
            merged: dict[tuple, float] = {}
            for s, p in zip(nxt[0].tolist(), probs[0].tolist()):
                if p > 0:
                    merged[tuple(s)] = merged.get(tuple(s), 0.0) + p
            live = world.probabilities[index, joint] > 0
            got = world.successors[index, joint][live].tolist()
            assert [rows[s] for s in got] == sorted(
                merged, key=lambda s: int(keys[rows.index(s)])
            )
            for s, p in zip(got, world.probabilities[index, joint][live].tolist()):
                assert p == pytest.approx(merged[rows[s]], abs=1e-15)
    edges = world.probabilities > 0
    src = torch.arange(world.num_states)[:, None, None].expand_as(edges)[edges]
    expected = height_from_edges(src, world.successors[edges], world.num_states)
    assert torch.equal(world.height, expected)
    assert world.height.tolist() == [model.horizon - t for t, _ in rows]


def test_numpy_and_torch_hashes_agree() -> None:
    generator = torch.Generator().manual_seed(3)
    rows = torch.randint(-(2**62), 2**62, (500, 7), generator=generator)
    rows[0] = torch.iinfo(torch.int64).max
    rows[1] = torch.iinfo(torch.int64).min
    for shape_rows in (rows, rows.view(50, 10, 7), rows[:, :0], rows.int()):
        assert torch.equal(hash_rows(shape_rows), hashing._hash_rows_torch(shape_rows))


def test_max_states_counts_distinct_states_across_batches() -> None:
    model = Scramble(width=9, horizon=3, k=3)
    total = compile_world(model).num_states
    assert compile_world(model, max_states=total, batch_size=7).num_states == total
    with pytest.raises(ValueError, match=f"more than exact.max_states = {total - 2}"):
        compile_world(model, max_states=total - 2, batch_size=7)


def test_no_initial_state_is_an_error(monkeypatch: pytest.MonkeyPatch) -> None:
    model = LineWalk(width=3, horizon=2)
    monkeypatch.setattr(model, "initial_states", lambda: torch.zeros(0, 3))
    with pytest.raises(ValueError, match="non-empty"):
        compile_world(model)
