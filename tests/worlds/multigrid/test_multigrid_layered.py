"""The layered exact solver (packed keys from ``state_bounds``, factored actions from
``action_effects``) agrees with the in-memory solver on maps with every object."""

import pytest
import torch

from empo.exact import solve
from empo.exact.layered import solve_layered
from empo.parameters.theory import TheoryParameters
from empo.worlds.compiler import compile_world
from empo.worlds.multigrid.builtin import from_file
from empo.worlds.multigrid.world import MultiGridWorld
from empo.worlds.registry import build_world

QUANTITIES = ("q_m", "pi_h", "v_m", "q_r", "pi_r", "v_e", "x_h", "u_r", "v_r")
PICKUP_DROP = ("still", "pickup", "drop")
OUTPUTS = ("q_m", "pi_h", "q_r", "pi_r", "x_h", "u_r", "w_h")

MAPS = {
    "kill": (
        "We We We We We\nWe Ay Ki Ae We\nWe .. dK .. We\nWe We We We We",
        {"orientations": ["e", "s"], "max_steps": 3},
    ),
    "control": (
        "We We We We We\nWe Ay CB Ae We\nWe .. DC .. We\nWe We We We We",
        {"orientations": ["e", "w"], "max_steps": 4},
    ),
    "handover": (
        "We We We We We\nWe Ae .. Ay We\nWe Kr .. .. We\nWe We We We We",
        {"orientations": ["s", "w"], "max_steps": 4},
    ),
    "bush_magic_ball": (
        "We We We We We\nWe Ay Bu Ms We\nWe Bb .. Ae We\nWe We We We We",
        {
            "orientations": ["e", "w"],
            "max_steps": 4,
            "can_enter_magic_walls": "e",
            "enter_bush_success_prob": 0.5,
        },
    ),
}


def build(name: str) -> MultiGridWorld:
    if name in MAPS:
        rows, options = MAPS[name]
        return from_file(map=rows, action_class="ObjectActions", **options)
    return build_world(name, {"max_steps": 5})


@pytest.mark.parametrize("name", ["off_switch", "pause_switch", *MAPS])
def test_layered_matches_in_memory(name: str) -> None:
    world = build(name)
    bounds = world.state_bounds()
    compiled = compile_world(world)
    table = compiled.state_table
    assert bool(((table >= bounds[0]) & (table <= bounds[1])).all())
    theory = TheoryParameters(beta_h=3.0, beta_r=4.0)
    reference = solve(compiled, theory)
    layered = solve_layered(world, theory, outputs=OUTPUTS)
    assert layered.num_states == compiled.num_states
    order = torch.empty(compiled.num_states, dtype=torch.int64)
    order[layered.state_ids(table)] = torch.arange(compiled.num_states)
    for quantity in QUANTITIES:
        expected = reference[quantity][order]
        got = layered[quantity].to(expected.dtype)
        finite = torch.isfinite(expected)
        assert torch.equal(finite, torch.isfinite(got)), quantity
        assert torch.allclose(got[finite], expected[finite], atol=1e-9), quantity


def distribution(successors: torch.Tensor, probs: torch.Tensor) -> dict:
    result: dict = {}
    for row, p in zip(successors.tolist(), probs.tolist()):
        if p > 0:
            result[tuple(row)] = round(result.get(tuple(row), 0.0) + p, 12)
    return result


@pytest.mark.parametrize("name", ["pause_switch", *MAPS])
def test_action_effects_reproduce_the_transitions(name: str) -> None:
    """For reachable states and random joint actions, the successors of the
    canonical joint action with each agent's shift added equal the successors of the
    joint action itself (the definition the layered solver relies on)."""
    world = build(name)
    table = compile_world(world).state_table
    gen = torch.Generator().manual_seed(0)
    states = table[torch.randperm(table.shape[0], generator=gen)[:60]]
    states = states[~world.is_terminal(states)]
    canonical, column, delta = world.action_effects(states)
    column = column.expand_as(canonical)  # broadcastable: [1, agent, 1]
    n_agents, n_actions = len(world.agents), len(world.action_names[0])
    joint = torch.randint(0, n_actions, (states.shape[0], 20, n_agents), generator=gen)
    rows = torch.arange(states.shape[0]).view(-1, 1, 1)
    agents = torch.arange(n_agents).view(1, 1, -1)
    base = canonical[rows, agents, joint]
    cols, shifts = column[rows, agents, joint], delta[rows, agents, joint]
    flat = states.repeat_interleave(20, 0)
    nxt, probs = world.transitions(flat, joint.reshape(-1, n_agents))
    got, got_p = world.transitions(flat, base.reshape(-1, n_agents))
    live = got_p > 0
    for i in range(n_agents):
        col = cols.reshape(-1, n_agents)[:, i : i + 1].expand_as(live)
        shift = shifts.reshape(-1, n_agents)[:, i : i + 1].expand_as(live)
        got.scatter_add_(2, col.unsqueeze(2), (shift * live).unsqueeze(2))
    for k in range(flat.shape[0]):
        assert distribution(nxt[k], probs[k]) == distribution(got[k], got_p[k]), (
            flat[k].tolist(),
            joint.reshape(-1, n_agents)[k].tolist(),
        )


def test_pickup_and_drop_that_can_do_nothing_act_as_still() -> None:
    """A pickup facing no key is ``still`` unless another agent carrying one faces
    the same cell (its drop comes first when it acts first); a drop into a wall is
    ``still``."""
    world = from_file(
        map="We We We We We\nWe Ae .. Ay We\nWe .. Kr .. We\nWe We We We We",
        orientations=["e", "w"],
        action_class="ObjectActions",
        max_steps=3,
    )
    still, pickup, drop = (world.action_names[0].index(a) for a in PICKUP_DROP)
    start = world.initial_states()[0]
    carrying = start.clone()
    carrying[4], carrying[world.layout.key_col] = 0, -1
    facing_wall = carrying.clone()
    facing_wall[2] = 3
    canonical, _, _ = world.action_effects(torch.stack([start, carrying, facing_wall]))
    assert canonical[:, 1, pickup].tolist() == [still, pickup, still]
    assert canonical[:, 0, drop].tolist() == [still, drop, still]
    successors, probs = world.transitions(
        carrying[None], torch.tensor([[drop, pickup]])
    )
    handed = successors[0, probs[0].argmax()]
    assert probs[0].max() == 1.0 and handed[8] == 0 and handed[4] == -1
