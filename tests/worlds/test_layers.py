"""Packed state keys, layer-by-layer enumeration and its budget."""

from pathlib import Path

import pytest
import torch

from empo.worlds.budget import BudgetExceededError, StateBudget
from empo.worlds.compiler import compile_world
from empo.worlds.hashing import KeyCodec, hash_rows
from empo.worlds.layer_repeats import LayerRepeats
from empo.worlds.layers import enumerate_layers
from empo.worlds.registry import build_world
from empo.worlds.transition_cache import TransitionCache


def test_key_codec_packs_exactly_and_falls_back_to_hashes() -> None:
    bounds = torch.tensor([[0, -1, 3], [9, 1, 5]])
    codec = KeyCodec(bounds, 3)
    grid = torch.cartesian_prod(
        torch.arange(10), torch.arange(-1, 2), torch.arange(3, 6)
    )
    keys = codec.keys(grid)
    assert codec.exact and codec.bits == 7
    assert keys.tolist() == list(range(90))
    assert torch.equal(codec.rows(keys), grid)
    with pytest.raises(ValueError, match=r"column 1 = 2 lies outside .* \[-1, 1\]"):
        codec.check_rows(torch.tensor([[0, 2, 3]]))
    wide = KeyCodec(torch.tensor([[0] * 3, [2**31] * 3]), 3)
    assert not wide.exact and wide.bits == 94
    assert torch.equal(wide.keys(grid), hash_rows(grid))


def test_layers_hold_the_compiled_states() -> None:
    world = build_world("key_door", {"max_steps": 7})
    layers = enumerate_layers(world)
    compiled = compile_world(world)
    rows = torch.cat([layers.rows(i) for i in range(len(layers.keys))])
    assert layers.values == list(range(8))
    assert sorted(map(tuple, rows.tolist())) == sorted(
        map(tuple, compiled.state_table.tolist())
    )
    assert layers.max_outcomes == compiled.successors.shape[2]
    first = layers.rows(layers.initial_layer)[layers.initial_position]
    assert torch.equal(first, compiled.state_table[compiled.initial_state])


class Backwards:
    """A two-step world whose second step goes back to layer 0 (or leaves the
    bounds)."""

    agents, humans, robots = ("h",), (0,), ()
    action_names, rest_action = (("a",),), (None,)
    state_dim, max_outcomes, layer_column = 2, 1, 0
    goal_names = (("g",),)
    goal_weights = torch.ones(1, 1, dtype=torch.float64)

    def __init__(self, jump: int) -> None:
        self.jump = jump

    def state_bounds(self) -> torch.Tensor:
        return torch.tensor([[0, 0], [2, 1]])

    def initial_states(self) -> torch.Tensor:
        return torch.tensor([[0, 0]])

    def is_terminal(self, states: torch.Tensor) -> torch.Tensor:
        return states[:, 0] >= 2

    def action_mask(self, states: torch.Tensor) -> torch.Tensor:
        return torch.ones(len(states), 1, 1, dtype=torch.bool)

    def transitions(self, states: torch.Tensor, actions: torch.Tensor) -> tuple:
        step = torch.where(states[:, :1] == 1, self.jump, 1)
        following = states + torch.cat([step, torch.zeros_like(step)], 1)
        return following[:, None], torch.ones(len(states), 1, dtype=torch.float64)

    def goal_membership(self, states: torch.Tensor) -> torch.Tensor:
        return torch.ones(len(states), 1, 1, dtype=torch.bool)


def test_enumeration_refuses_backward_steps_and_rows_outside_the_bounds() -> None:
    assert enumerate_layers(Backwards(jump=1)).sizes == [1, 1, 1]
    with pytest.raises(ValueError, match="from layer 1 leads to layer 0"):
        enumerate_layers(Backwards(jump=-1))
    with pytest.raises(ValueError, match="column 0 = 3 lies outside"):
        enumerate_layers(Backwards(jump=2))


def test_budget_stops_enumeration_with_one_line() -> None:
    world = build_world("key_door_2h", {"max_steps": 6})
    total = enumerate_layers(world).num_states
    budget = StateBudget(max_states=total - 1, world="key_door_2h")
    with pytest.raises(BudgetExceededError) as error:
        enumerate_layers(world, budget=budget)
    message = str(error.value)
    assert "\n" not in message
    assert message.startswith("world 'key_door_2h': at least ")
    assert f"more than exact.max_states = {total - 1:,}" in message
    small = StateBudget(memory_bytes=2**20, world="key_door_2h")
    with pytest.raises(BudgetExceededError, match="layered solver, more than the "):
        enumerate_layers(world, budget=small, chunk_bytes=2**19)
    with pytest.raises(BudgetExceededError, match="in-memory solver"):
        compile_world(world, budget=small)


REUSE_WORLDS = {
    "key_door": {"max_steps": 9},
    "key_door_2h": {"max_steps": 4},
    "off_switch": {"max_steps": 5},
    "unsteady": {"max_steps": 5},
    "multigrid": {
        "map": "We We We We We\nWe Ay CB Ae We\nWe .. DC .. We\nWe We We We We",
        "orientations": ["e", "w"],
        "max_steps": 4,
    },
}


@pytest.mark.parametrize("name", sorted(REUSE_WORLDS))
def test_reused_layers_equal_expanded_layers(
    name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Reusing the previous layer's successors for repeated configurations gives
    the same layers and byte for byte the same kept transitions as expanding every
    state, and sends fewer states to the world model where configurations repeat
    (the control-button map, whose forced actions make configurations recur
    irregularly, is expanded where the reuse does not apply)."""
    world = build_world(name, REUSE_WORLDS[name])
    bases: dict[bool, int] = {}
    transitions = type(world).transitions

    def counted(self: object, states: torch.Tensor, actions: torch.Tensor):
        bases[reuse] += len(states)
        return transitions(self, states, actions)

    monkeypatch.setattr(type(world), "transitions", counted)
    result, files = {}, {}
    for reuse in (False, True):
        bases[reuse] = 0
        cache = TransitionCache(tmp_path / str(reuse))
        result[reuse] = enumerate_layers(world, cache=cache, reuse=reuse)
        files[reuse] = {p.name: p.read_bytes() for p in cache.directory.iterdir()}
        assert sum(cache.bases.values()) > 0
    expanded, reused = result[False], result[True]
    assert len(reused.keys) == len(expanded.keys)
    assert all(torch.equal(a, b) for a, b in zip(reused.keys, expanded.keys))
    assert reused.first_reader == expanded.first_reader
    assert reused.max_outcomes == expanded.max_outcomes
    assert files[True] == files[False]
    if name != "multigrid":
        assert bases[True] < bases[False]


def test_layer_repeats_match_only_when_every_configuration_recurs() -> None:
    """Keys of layer 2 reuse layer 1 only if all of layer 1's configurations (the
    keys without the layer column) are among them and the shifted successors stay
    within the layer column's bounds."""
    codec = KeyCodec(torch.tensor([[0, 0], [3, 9]]), 2)
    previous = LayerRepeats(codec, 0, 1, codec.keys(torch.tensor([[1, 2], [1, 5]])))
    previous.found = {2: codec.keys(torch.tensor([[2, 3], [2, 6]]))}
    later = codec.keys(torch.tensor([[2, 1], [2, 2], [2, 5]]))
    assert previous.match(later, 2).tolist() == [False, True, True]
    assert previous.match(later[:2], 2) is None
    shifted = previous.successors(2)
    assert list(shifted) == [3] and codec.rows(shifted[3]).tolist() == [[3, 3], [3, 6]]
    assert previous.match(later + 10, 3) is None


_HELD = (
    "configurations",
    "found",
    "state_bases",
    "state_entries",
    "base_offsets",
    "entry_offsets",
    "keys",
    "rows",
)
"""Attributes of ``LayerRepeats`` and of the pending keys that hold tensors."""


def _nbytes(value: object) -> int:
    """Bytes of the tensors in ``value`` (a tensor, lists and dicts of them, or an
    object's :data:`_HELD` attributes)."""
    if value is None:
        return 0
    if isinstance(value, torch.Tensor):
        return value.numel() * value.element_size()
    if isinstance(value, dict):
        value = list(value.values())
    if isinstance(value, (list, tuple)):
        return sum(_nbytes(v) for v in value)
    return sum(_nbytes(getattr(value, name, None)) for name in _HELD)


def test_enumeration_bookkeeping_stays_within_the_estimate(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The bytes the enumeration holds besides the keys (the layer's decoded rows,
    the pending keys of later layers and the reuse bookkeeping of two adjacent
    layers), measured as each layer's bookkeeping closes, stay within
    ``enumeration_bytes`` of the largest layer, the budget's estimate."""
    import weakref

    from empo.worlds import layers as layers_module
    from empo.worlds.budget import enumeration_bytes
    from empo.worlds.layers import world_size

    repeats: weakref.WeakSet = weakref.WeakSet()
    pending: weakref.WeakSet = weakref.WeakSet()
    held: list[int] = []

    class Repeats(LayerRepeats):
        def __init__(self, *args: object) -> None:
            super().__init__(*args)
            repeats.add(self)

        def close(self) -> None:
            for stage in range(2):
                rows = 8 * world.state_dim * len(self.configurations)
                held.append(rows + sum(_nbytes(x) for x in [*repeats, *pending]))
                if stage == 0:
                    super().close()

    class Pending(layers_module._Pending):
        def __init__(self) -> None:
            super().__init__()
            pending.add(self)

    monkeypatch.setattr(layers_module, "LayerRepeats", Repeats)
    monkeypatch.setattr(layers_module, "_Pending", Pending)
    world = build_world("key_door", {"max_steps": 12})
    cache = TransitionCache(tmp_path)
    layers = enumerate_layers(world, cache=cache)
    cache.close()
    largest = max(layers.sizes)
    estimate = enumeration_bytes(world_size(world, layers.max_outcomes), largest)
    assert len(held) > 10 and max(held) > largest * 8 * world.state_dim
    assert max(held) <= estimate
