"""The code paths agree on maps with bushes, magic walls, switches, buttons, balls and
boxes: the Python step equals the tensor step row by row, batches equal single rows,
the factored enumeration equals the plain rules, probabilities sum to one, and
sampled steps follow the explicit distribution (chi-square).

States come from seeded random walks with the switch, button, bush and magic-wall
columns (and the paused and forced flags) then drawn at random, which reaches
combinations that walks rarely do (a toggle racing a kill, an awaited robot, ...).
"""

import pytest
import torch

from empo.worlds.multigrid import fixtures
from empo.worlds.multigrid.builtin import from_file
from empo.worlds.multigrid.dynamics import sample_successors
from empo.worlds.multigrid.enumeration import _enumerate_chunk
from empo.worlds.multigrid.scalar import sample_one
from empo.worlds.multigrid.world import MultiGridWorld

FORWARD, TOGGLE = 3, 6

MAPS: dict[str, tuple[str, list[str], dict]] = {
    "bush_magic": (
        "Ay Bu Un Ae/Bu Mn Ay Bu/Ae Un Ms Bl",
        ["e", "w", "s", "n"],
        {
            "can_enter_magic_walls": "ey",
            "enter_bush_success_prob": 0.6,
            "stumble_probability": 0.4,
            "solidify_probability": 0.3,
            "action_class": "SmallActions",
        },
    ),
    "switches": ("Ay Ki .. Ae/Pa .. Dk Ay/Ae dP Ps DC", ["e", "w", "n", "s", "e"], {}),
    "control": (
        "Ay CB Ae ../CB .. CB Ae/.. Ay DC Ro/Ae Un Ki ..",
        ["e", "w", "s", "n", "e"],
        {},
    ),
    "balls_boxes": ("Ay Br Xg Ae/Kr .. Xb ../Lr Ay Be Ae", ["e", "e", "n", "w"], {}),
}


def build(name: str) -> MultiGridWorld:
    interior, orientations, options = MAPS[name]
    rows = [r.strip() for r in interior.split("/")]
    wall = " ".join(["We"] * (len(rows[0].split()) + 2))
    grid = [wall] + [f"We {r} We" for r in rows] + [wall]
    options = {"action_class": "ObjectActions", "max_steps": 8, **options}
    return from_file(map="\n".join(grid), orientations=orientations, **options)


def scramble(world: MultiGridWorld, states: torch.Tensor, seed: int) -> torch.Tensor:
    """``states`` with random bush, magic-wall, switch and button columns, paused
    flags and forced actions (of grey agents, as only they can have them)."""
    lay, gen = world.layout, torch.Generator().manual_seed(seed)
    out = states.clone()
    b, n = out.shape[0], lay.n_agents

    def coin(width: int) -> torch.Tensor:
        return torch.randint(0, 2, (b, width), generator=gen)

    out[:, lay.bush_col : lay.pause_col] = coin(lay.pause_col - lay.bush_col)
    out[:, lay.pause_col : lay.control_col] = coin(2 * lay.n_pause)
    n_actions = len(world.action_names[0])
    grey = lay.grey.unsqueeze(0)
    for j in range(lay.n_control):
        col = lay.control_col + 4 * j
        out[:, col] = coin(1)[:, 0]
        agent = torch.randint(0, n, (b,), generator=gen)
        ctrl = torch.where(lay.grey[agent] & (coin(1)[:, 0] == 1), agent, -1)
        out[:, col + 1] = ctrl
        out[:, col + 2] = torch.randint(-1, n_actions, (b,), generator=gen)
        out[:, col + 3] = torch.where(ctrl >= 0, coin(1)[:, 0], 0)
    if lay.n_pause:
        paused = coin(n) * grey
        out[:, lay.paused_col : lay.paused_col + n] = paused
    if lay.n_control:
        forced = torch.randint(1, n_actions, (b, n), generator=gen)
        keep = (torch.rand(b, n, generator=gen) < 0.3) & grey
        out[:, lay.forced_col : lay.forced_col + n] = torch.where(keep, forced, -1)
    return out


def walk_states(
    world: MultiGridWorld, batch: int, steps: int, seed: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Scrambled states of seeded random walks with a joint action each (forward
    and toggle favoured)."""
    gen = torch.Generator().manual_seed(seed)
    n_agents, n_actions = len(world.agents), len(world.action_names[0])

    def actions(b: int) -> torch.Tensor:
        acts = torch.randint(0, n_actions, (b, n_agents), generator=gen)
        draw = torch.rand(b, n_agents, generator=gen)
        acts = torch.where(draw < 0.3, FORWARD, acts)
        if n_actions > TOGGLE:
            acts = torch.where((draw >= 0.3) & (draw < 0.5), TOGGLE, acts)
        return acts

    states = world.initial_states().expand(batch, -1).clone()
    visited = []
    for _ in range(steps):
        visited.append(states)
        states = sample_successors(world.layout, states, actions(batch), gen)
    states = scramble(world, torch.cat(visited), seed)
    return states, actions(states.shape[0])


@pytest.mark.parametrize("name", sorted(MAPS))
def test_python_step_equals_tensor_step(name: str) -> None:
    world = build(name)
    lay = world.layout
    states, actions = walk_states(world, batch=64, steps=6, seed=1)
    expected = sample_successors(lay, states, actions, torch.Generator().manual_seed(7))
    uniforms = torch.rand(
        states.shape[0],
        lay.n_agents,
        generator=torch.Generator().manual_seed(7),
        dtype=torch.float64,
    )
    for b in range(states.shape[0]):
        got = sample_one(
            lay, states[b].tolist(), actions[b].tolist(), uniforms[b].tolist()
        )
        assert got == expected[b].tolist(), (states[b].tolist(), actions[b].tolist())


def distribution(successors: torch.Tensor, probs: torch.Tensor) -> dict:
    result: dict = {}
    for row, p in zip(successors.tolist(), probs.tolist()):
        if p > 0:
            result[tuple(row)] = round(result.get(tuple(row), 0.0) + p, 12)
    return result


@pytest.mark.parametrize("name", sorted(MAPS))
def test_batches_factoring_and_sums(name: str) -> None:
    """Per probe state, 300 joint actions in one batch (as the compiler sends them)
    equal the plain rules (forced actions applied, nothing factored) and a few rows
    sent alone, and each distribution sums to one."""
    world = build(name)
    lay = world.layout
    n_agents, n_actions = len(world.agents), len(world.action_names[0])
    states, _ = walk_states(world, batch=4, steps=4, seed=2)
    gen = torch.Generator().manual_seed(3)
    for row in states[::2]:
        joint = torch.randint(0, n_actions, (300, n_agents), generator=gen)
        joint[:n_actions] = torch.arange(n_actions).unsqueeze(1)  # all-equal rows
        batch = row.expand(joint.shape[0], -1)
        nxt, probs = world.transitions(batch, joint)
        torch.testing.assert_close(probs.sum(1), torch.ones(300, dtype=torch.float64))
        plain = _enumerate_chunk(lay, batch, fixtures.override(lay, batch, joint))
        for i in range(joint.shape[0]):
            assert distribution(nxt[i], probs[i]) == distribution(
                plain[0][i], plain[1][i]
            ), (row.tolist(), joint[i].tolist())
        for i in range(0, joint.shape[0], 30):
            alone = world.transitions(batch[i : i + 1], joint[i : i + 1])
            assert distribution(alone[0][0], alone[1][0]) == distribution(
                nxt[i], probs[i]
            )


def test_forced_actions_enumerate_like_the_override() -> None:
    """A forced agent's own choice does not matter."""
    world = build("control")
    lay = world.layout
    s = world.initial_states()[0].clone()
    s[lay.forced_col + 1] = 1  # left, for the robot at (3,1) facing west
    a = world.transitions(s.expand(2, -1), torch.tensor([[0, 0, 0, 0, 0]] * 2))
    b = world.transitions(s.expand(2, -1), torch.tensor([[0, TOGGLE, 0, 0, 0]] * 2))
    assert distribution(a[0][0], a[1][0]) == distribution(b[0][0], b[1][0])
    robot = world.decode(a[0][0, 0])["agents"][1]
    assert robot["dir"] == 1 and robot["forced"] == -1


def test_sampling_matches_the_explicit_distribution() -> None:
    """Fixed-seed chi-square test on a state with a random bush entry (0.7/0.3), a
    stumble (0.5/0.25/0.25) and a magic-wall attempt (0.5/0.3/0.2): 18 outcomes."""
    world = from_file(
        map="\n".join(
            [
                "We We We We We We",
                "We Ay Bu .. .. We",
                "We .. .. .. .. We",
                "We Un .. Ms .. We",
                "We Ay .. Ae .. We",
                "We We We We We We",
            ]
        ),
        orientations=["e", "n", "n"],
        can_enter_magic_walls="e",
        enter_bush_success_prob=0.7,
        solidify_probability=0.4,
        action_class="SmallActions",
    )
    s = world.initial_states()[0].clone()
    s[5], s[6] = 3 * world.spec.width + 1, 0  # human1 onto unsteady (1,3), east
    actions = torch.tensor([[FORWARD, FORWARD, FORWARD]])
    nxt, probs = world.transitions(s.unsqueeze(0), actions)
    support = distribution(nxt[0], probs[0])
    assert len(support) == 18
    assert sorted(support.values())[:2] == [0.015, 0.015]  # 0.3 * 0.25 * 0.2
    n = 20000
    draws = sample_successors(
        world.layout,
        s.expand(n, -1).clone(),
        actions.expand(n, -1),
        torch.Generator().manual_seed(0),
    )
    rows, numbers = torch.unique(draws, dim=0, return_counts=True)
    counts = {tuple(r.tolist()): int(c) for r, c in zip(rows, numbers)}
    assert set(counts) == set(support)
    chi2 = sum((counts[k] - n * p) ** 2 / (n * p) for k, p in support.items())
    assert chi2 < 40.79  # 99.9% quantile of chi-square with 17 degrees of freedom
