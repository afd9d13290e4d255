"""Each rule of the bushes, magic walls, switches, buttons, balls and boxes, with
hand-computed successors and probabilities (rules in
:mod:`empo.worlds.multigrid.fixtures` and :mod:`empo.worlds.multigrid.dynamics`)."""

import torch

from empo.worlds.multigrid.builtin import from_file
from empo.worlds.multigrid.world import MultiGridWorld

STILL, LEFT, RIGHT, FORWARD, PICKUP, DROP, TOGGLE = range(7)
E, S, W, N = range(4)


def make(rows: list[str], **options: object) -> MultiGridWorld:
    options.setdefault("action_class", "ObjectActions")
    return from_file(map="\n".join(rows), **options)


def outcomes(world: MultiGridWorld, state: torch.Tensor, actions: list[int]) -> dict:
    """``{successor row: probability}`` (duplicates summed; the sum is checked)."""
    nxt, probs = world.transitions(state.unsqueeze(0), torch.tensor([actions]))
    result: dict = {}
    for row, p in zip(nxt[0], probs[0]):
        if p > 0:
            result[tuple(row.tolist())] = result.get(tuple(row.tolist()), 0.0) + float(
                p
            )
    assert abs(sum(result.values()) - 1.0) < 1e-12
    return result


def only(
    world: MultiGridWorld, state: torch.Tensor, actions: list[int]
) -> torch.Tensor:
    result = outcomes(world, state, actions)
    assert len(result) == 1, result
    return torch.tensor(next(iter(result)))


def decoded(world: MultiGridWorld, state: torch.Tensor, actions: list[int]) -> list:
    """``[(probability, decoded successor)]`` sorted by probability."""
    result = outcomes(world, state, actions)
    return sorted(
        ((p, world.decode(torch.tensor(k))) for k, p in result.items()),
        key=lambda x: x[0],
    )


def place(
    world: MultiGridWorld, state: torch.Tensor, agent: int, x: int, y: int, d: int
) -> torch.Tensor:
    out = state.clone()
    out[1 + 4 * agent] = y * world.spec.width + x
    out[2 + 4 * agent] = d
    return out


BUSHES = ["We We We We We", "We Ae Bu .. We", "We Ay Bu .. We", "We We We We We"]


def test_robots_trample_bushes_and_humans_enter_them() -> None:
    world = make(BUSHES)
    s0 = world.initial_states()[0]
    s1 = only(world, s0, [FORWARD, STILL])  # the grey robot tramples bush 0
    d1 = world.decode(s1)
    assert d1["agents"][0]["pos"] == (2, 1)
    assert d1["bushes_trampled"] == [True, False]
    s2 = only(world, s0, [STILL, FORWARD])  # the human enters bush 1, which stays
    d2 = world.decode(s2)
    assert d2["agents"][1]["pos"] == (2, 2) and d2["bushes_trampled"] == [False, False]
    s3 = only(world, s2, [STILL, FORWARD])  # and leaves it intact
    assert world.decode(s3)["agents"][1]["pos"] == (3, 2)
    assert world.decode(s3)["bushes_trampled"] == [False, False]
    robot = world.decode(only(world, place(world, s2, 0, 2, 1, S), [FORWARD, STILL]))
    assert robot["agents"][0]["pos"] == (2, 1)  # the human stands in the bush


def test_random_bush_entry() -> None:
    world = make(BUSHES, enter_bush_success_prob=0.7)
    s0 = world.initial_states()[0]
    got = decoded(world, s0, [STILL, FORWARD])
    assert [(round(p, 12), d["agents"][1]["pos"]) for p, d in got] == [
        (0.3, (1, 2)),
        (0.7, (2, 2)),
    ]
    assert all(d["bushes_trampled"] == [False, False] for _, d in got)
    assert world.decode(only(world, s0, [FORWARD, STILL]))["agents"][0]["pos"] == (
        2,
        1,
    )  # robots trample for sure
    # the attempt resolves after the robot's move: the robot tramples the bush
    # and stands in it, leaving the human's attempt nothing to enter
    world2 = make(
        ["We We We We", "We Ay Bu We", "We .. Ae We", "We We We We"],
        orientations=["e", "n"],
        enter_bush_success_prob=0.5,
    )
    got = decoded(world2, world2.initial_states()[0], [FORWARD, FORWARD])
    assert [(p, d["agents"][0]["pos"], d["agents"][1]["pos"]) for p, d in got] == [
        (1.0, (1, 1), (2, 1))
    ]


def test_objects_cannot_enter_intact_bushes() -> None:
    world = make(["We We We We We", "We Ay Bl Bu We", "We We We We We"])
    s0 = world.initial_states()[0]
    assert torch.equal(only(world, s0, [FORWARD])[1:], s0[1:])
    trampled = s0.clone()
    trampled[world.layout.bush_col] = 1
    pushed = world.decode(only(world, trampled, [FORWARD]))
    assert pushed["blocks"] == [(3, 1)] and pushed["agents"][0]["pos"] == (2, 1)


MAGIC = ["We We We We", "We Ae .. We", "We Mn .. We", "We We We We"]


def test_magic_wall_entry_fail_and_solidify() -> None:
    world = make(
        MAGIC, orientations="s", can_enter_magic_walls="e", solidify_probability=0.2
    )
    s0 = world.initial_states()[0]
    got = decoded(world, s0, [FORWARD])
    summary = [(round(p, 12), d["agents"][0]["pos"], d["magic_active"]) for p, d in got]
    assert summary == [
        (0.1, (1, 1), [False]),
        (0.4, (1, 1), [True]),
        (0.5, (1, 2), [True]),
    ]
    # from inside, the agent steps off; the wall stays
    s_in = place(world, s0, 0, 1, 2, E)
    out = world.decode(only(world, s_in, [FORWARD]))
    assert out["agents"][0]["pos"] == (2, 2) and out["magic_active"] == [True]


def test_magic_wall_needs_permission_side_and_activity() -> None:
    world = make(MAGIC, orientations="s", solidify_probability=0.2)
    s0 = world.initial_states()[0]
    assert torch.equal(only(world, s0, [FORWARD])[1:], s0[1:])  # not allowed
    allowed = make(MAGIC, orientations="s", can_enter_magic_walls="e")
    wrong_side = place(allowed, s0, 0, 2, 2, W)
    assert torch.equal(only(allowed, wrong_side, [FORWARD])[1:], wrong_side[1:])
    inactive = s0.clone()
    inactive[allowed.layout.magic_col] = 0
    assert torch.equal(only(allowed, inactive, [FORWARD])[1:], inactive[1:])
    every_side = make(
        ["We We We We", "We Ae .. We", "We Ma .. We", "We We We We"],
        orientations="s",
        can_enter_magic_walls="e",
        solidify_probability=0.0,
    )
    east = place(every_side, every_side.initial_states()[0], 0, 2, 2, W)
    got = decoded(every_side, east, [FORWARD])
    assert sorted((p, d["agents"][0]["pos"]) for p, d in got) == [
        (0.5, (1, 2)),
        (0.5, (2, 2)),
    ]


KILL = ["We We We We We", "We Ay Ki Ae We", "We .. dK .. We", "We We We We We"]


def test_kill_button() -> None:
    world = make(KILL, orientations=["e", "s"])
    s0 = world.initial_states()[0]
    killed = world.decode(only(world, s0, [TOGGLE, STILL]))
    assert killed["agents"][1]["terminated"] and not killed["agents"][0]["terminated"]
    # the toggle and the robot's move are ordered uniformly at random
    got = decoded(world, s0, [TOGGLE, FORWARD])
    assert sorted(
        (p, d["agents"][1]["pos"], d["agents"][1]["terminated"]) for p, d in got
    ) == [(0.5, (3, 1), True), (0.5, (3, 2), True)]
    disabled = s0.clone()
    disabled[world.layout.kill_col] = 0
    assert torch.equal(only(world, disabled, [TOGGLE, STILL])[1:], disabled[1:])
    # a robot cannot use a kill button
    robot_at_button = place(world, s0, 1, 3, 1, W)
    after = world.decode(only(world, robot_at_button, [STILL, TOGGLE]))
    assert not any(a["terminated"] for a in after["agents"])


def test_disabling_switch_for_kill_buttons() -> None:
    world = make(KILL, orientations=["e", "s"])
    s0 = world.initial_states()[0]
    at_switch = place(world, s0, 1, 3, 2, W)
    off = only(world, at_switch, [STILL, TOGGLE])
    assert world.decode(off)["kill_enabled"] == [False]
    assert world.decode(only(world, off, [STILL, TOGGLE]))["kill_enabled"] == [True]
    human_at_switch = place(world, s0, 0, 1, 2, E)
    assert world.decode(only(world, human_at_switch, [TOGGLE, STILL]))[
        "kill_enabled"
    ] == [True]
    # the robot disabling the button races the human's toggle
    got = decoded(world, at_switch, [TOGGLE, TOGGLE])
    assert sorted(
        (p, d["agents"][1]["terminated"], d["kill_enabled"]) for p, d in got
    ) == [(0.5, False, [False]), (0.5, True, [True])]


PAUSE = [
    "We We We We We We",
    "We Ay Ps Ae Ae We",
    "We .. dP .. .. We",
    "We We We We We We",
]


def test_pause_switch() -> None:
    world = make(PAUSE, orientations=["e", "s", "s"])
    s0 = world.initial_states()[0]
    on = only(world, s0, [TOGGLE, STILL, STILL])
    d_on = world.decode(on)
    assert d_on["pause"] == [{"on": True, "enabled": True}]
    assert [a["paused"] for a in d_on["agents"]] == [False, True, True]
    frozen = only(world, on, [STILL, FORWARD, LEFT])
    assert torch.equal(frozen[1:], on[1:])  # paused robots do nothing
    off = world.decode(only(world, on, [TOGGLE, FORWARD, STILL]))
    # unpaused during the step, the robot still does nothing in that step
    assert off["agents"][1]["pos"] == (3, 1) and not off["agents"][1]["paused"]
    got = decoded(world, s0, [TOGGLE, FORWARD, STILL])
    assert sorted((p, d["agents"][1]["pos"]) for p, d in got) == [
        (0.5, (3, 1)),
        (0.5, (3, 2)),
    ]
    disabled = s0.clone()
    disabled[world.layout.pause_col + 1] = 0
    assert torch.equal(only(world, disabled, [TOGGLE, STILL, STILL])[1:], disabled[1:])


def test_disabling_a_switched_on_pause_switch_unpauses() -> None:
    world = make(PAUSE, orientations=["e", "s", "s"])
    lay = world.layout
    s = place(world, world.initial_states()[0], 1, 3, 2, W)  # robot 1 faces dP
    s[lay.pause_col] = 1  # on, robot 2 paused, robot 1 not (as after two switches)
    s[lay.paused_col + 2] = 1
    after = world.decode(only(world, s, [STILL, TOGGLE, STILL]))
    assert after["pause"] == [{"on": True, "enabled": False}]
    assert [a["paused"] for a in after["agents"]] == [False, False, False]
    again = world.decode(
        only(world, only(world, s, [STILL, TOGGLE, STILL]), [STILL, TOGGLE, STILL])
    )
    assert again["pause"] == [{"on": True, "enabled": True}]
    assert [a["paused"] for a in again["agents"]] == [False, False, False]


CONTROL = ["We We We We We", "We Ay CB Ae We", "We .. .. .. We", "We We We We We"]


def test_control_button_program_and_trigger() -> None:
    world = make(CONTROL, orientations=["e", "w"])
    s0 = world.initial_states()[0]
    s1 = only(world, s0, [STILL, TOGGLE])
    assert world.decode(s1)["control"] == [
        {"enabled": 1, "controlled": 1, "action": -1, "awaiting": 1}
    ]
    s2 = only(world, s1, [STILL, LEFT])  # recorded: the robot's next action
    d2 = world.decode(s2)
    assert d2["control"][0] == {
        "enabled": 1,
        "controlled": 1,
        "action": LEFT,
        "awaiting": 0,
    }
    assert d2["agents"][1]["dir"] == S
    s3 = only(world, s2, [TOGGLE, STILL])  # the human triggers it
    assert world.decode(s3)["agents"][1]["forced"] == LEFT
    assert world.decode(s3)["agents"][1]["dir"] == S
    s4 = world.decode(only(world, s3, [STILL, FORWARD]))  # the robot is forced
    assert s4["agents"][1]["dir"] == E and s4["agents"][1]["pos"] == (3, 1)
    assert s4["agents"][1]["forced"] == -1


def test_control_button_records_a_second_toggle_and_respects_disabling() -> None:
    world = make(CONTROL, orientations=["e", "w"])
    s0 = world.initial_states()[0]
    s1 = only(world, s0, [STILL, TOGGLE])
    s2 = world.decode(only(world, s1, [STILL, TOGGLE]))
    assert s2["control"][0] == {
        "enabled": 1,
        "controlled": 1,
        "action": TOGGLE,
        "awaiting": 0,
    }
    unprogrammed = world.decode(only(world, s0, [TOGGLE, STILL]))
    assert unprogrammed["agents"][1]["forced"] == -1
    disabled = s0.clone()
    disabled[world.layout.control_col] = 0
    assert torch.equal(only(world, disabled, [STILL, TOGGLE])[1:], disabled[1:])
    # an awaited action is recorded even while the button is disabled
    waiting = s1.clone()
    waiting[world.layout.control_col] = 0
    assert (
        world.decode(only(world, waiting, [STILL, FORWARD]))["control"][0]["action"]
        == FORWARD
    )


def test_balls_boxes_and_switch_cells() -> None:
    world = make(
        [
            "We We We We We We",
            "We Ay Br Lr Sw We",
            "We Xg .. .. .. We",
            "We We We We We We",
        ]
    )
    s0 = world.initial_states()[0]
    held = only(world, s0, [PICKUP])
    assert world.decode(held)["balls"] == [None]
    assert world.decode(held)["agents"][0]["carrying"] == 0
    walked = only(world, held, [FORWARD])
    at_door = world.decode(only(world, walked, [TOGGLE]))
    assert at_door["doors"] == ["locked"]  # a red ball is no red key
    down = place(world, s0, 0, 1, 1, S)
    box = world.decode(only(world, down, [PICKUP]))
    assert box["boxes"] == [None] and box["agents"][0]["carrying"] == 1
    opened = world.decode(only(world, down, [TOGGLE]))
    assert opened["boxes_opened"] == [True] and opened["boxes"] == [None]
    on_switch = only(world, place(world, s0, 0, 4, 2, N), [FORWARD])
    assert world.decode(on_switch)["agents"][0]["pos"] == (4, 1)


def test_only_objects_needing_toggle_select_object_actions() -> None:
    kill_only = make(["We We We We", "We Ay Ki We", "We We We We"], action_class=None)
    assert kill_only.action_names[0] == ("still", "left", "right", "forward")
    pause = make(["We We We We", "We Ay Ps We", "We We We We"], action_class=None)
    assert "toggle" in pause.action_names[0]
