"""Differential test of empo's MultiGrid world against the public research code.

Not part of CI: it needs a copy of the research code (mensch72/empo) and a separate
Python environment in which that code runs (``scripts/multigrid_research_worker.py``
runs there). It compares, one step at a time, the
explicit transition model of :class:`empo.worlds.multigrid.world.MultiGridWorld`
with the research code's ``MultiGridEnv.transition_probabilities``
(``vendor/multigrid/gym_multigrid/multigrid.py``).

How it works
------------
The script runs in two processes. The main process (empo's venv) loads each world
with :func:`empo.worlds.multigrid.builtin.from_file` and picks the states to test:
``--states`` reachable ones (seeded breadth-first layers from the initial state, then
batched random walks) and ``--random-states`` random valid ones (agents, pickable
objects, blocks, rocks, door, bush, magic wall, switch and button states drawn at
random; these reach interactions that walks rarely do). For each state it takes every joint action, or a seeded random subset of
``min(--joint-actions, --max-pairs / states)`` of them, and computes empo's successor
distribution with ``transitions`` (in batches, as the compiler does). It then starts
``scripts/multigrid_research_worker.py`` with ``--python`` (the research venv); the
worker builds the research environment from the same YAML file, sets each state and
returns ``transition_probabilities`` for the same pairs as JSON. Both sides are
mapped to the common form described in the worker's docstring (every agent, object,
door, bush, magic wall, switch and button field). Distributions must agree outcome by
outcome (``|Δp| <= --tol``, default ``1e-9``). A static check compares the parsed
layout cell by cell, agent colours and abilities, action names, the horizon, the
stumble, solidify, magic-entry and bush probabilities and the initial state. Each mismatch is recomputed by empo alone (a batch of one row); if that
equals the research result the mismatch is counted as ``batch_dependent``. Each
world's line also counts covered features (states with a carried object, a changed
door, a moved pickable, a pushed object, a terminated agent, a paused agent, a
forced action, a changed bush, magic wall, switch or button; pairs with more than
one outcome). A research-code exception for a pair is counted as ``research_error``
(like ``deviation``, it fails the run only with ``--strict``).

Research-code quirks accounted for
----------------------------------
* Its compact state omits objects on the floor, and its ``set_state`` cannot restore
  every state; the worker wraps both (see its docstring).
* empo's documented deviations (module docstring of
  :mod:`empo.worlds.multigrid.world`) make some pairs *deviation-prone*
  (:func:`deviation_reason`): an object on a goal, lava, unsteady, switch or door
  cell (terrain under objects); an agent allowed to enter magic walls facing an
  all-sides magic wall; a kill or pause toggle while the grey agents it affects only
  turn (the research code's shortcuts skip the random order there). Their
  mismatches are counted as ``deviation`` and fail the run only with ``--strict``.
* Rewards, goals and the research code's ``U_r``/float16 conventions do not enter:
  only dynamics are compared.

Usage
-----
::

    /tmp/venv/bin/python scripts/diff_multigrid.py --research /tmp/research_empo \\
        --python /tmp/research_venv/bin/python [--worlds NAME ...] [--states N] \\
        [--random-states N] [--joint-actions M] [--max-pairs P] [--seed S] \\
        [--tol T] [--max-report R] [--report FILE] [--strict]

``--worlds`` selects worlds whose name contains one of the given strings (names are
``research/<dir>/<file>``, ``empo/<file>`` for empo's built-in YAML worlds and
``synthetic/<name>`` for the small stress maps in :data:`SYNTHETIC`). ``--report``
writes all findings as markdown. The research code is a working copy of
mensch72/empo (e.g. ``git archive`` of a clone); its venv needs numpy, gymnasium,
pyyaml, tqdm and matplotlib (a plain ``python3 -m venv`` plus ``pip install``).
Exit code 0 when everything compared matches, 1 otherwise.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
WORKER = Path(__file__).resolve().parent / "multigrid_research_worker.py"

# Small stress maps: interior rows ("/"-separated, a wall border is added),
# orientations, horizon and extra YAML options.
SYNTHETIC: dict[str, tuple[str, list[str], int, dict[str, Any]]] = {
    "lava_goal": ("Ay .. La ../.. La Gg Ae/Ae .. .. Ay", ["e", "w", "n", "w"], 8, {}),
    "keys_doors": (
        "Ay Kg .. Lg ../.. Ae Kg We ../Kr .. Ay Cr ../.. Op .. We Gg",
        ["e", "w", "n"],
        10,
        {},
    ),
    "key_race": ("Ay Kr Ae ../.. Ay .. ..", ["e", "w", "n"], 6, {}),
    "door_race": (
        "Ay Cg Ae Kp ../.. We .. Lp ../Ay .. .. .. Gg",
        ["e", "w", "s"],
        10,
        {},
    ),
    "tiny_mix": (".. Kr .. Bl/Kg Ay Ae ../We Or We We/We .. We We", ["n", "w"], 6, {}),
    "tiny_mix3": (
        ".. Kr Ay Bl/Kg Ay Ae ../We Cr We We/We .. We We",
        ["w", "n", "w"],
        6,
        {},
    ),
    "unsteady_pair": (
        "Ay Un Un ../Un Un Bl Ae/.. La .. Ay",
        ["e", "w", "n"],
        8,
        {"stumble_probability": 0.3},
    ),
    "unsteady_keys": ("Ay Un Kr ../Un Ay Ae Un/Kg Un Op Bl", ["e", "s", "w"], 6, {}),
    "push_chain": (
        "Ae Bl Bl .. ../.. Ro .. Ay ../Ay .. Ro Bl Ae",
        ["e", "w", "n", "w"],
        8,
        {},
    ),
    "magic_mix": (
        "Ae Mn .. Ms/.. .. Ay ../Mw Ay Bl Me/Ae .. Ms ..",
        ["s", "e", "n", "e"],
        6,
        {"can_enter_magic_walls": "ey", "solidify_probability": 0.3},
    ),
    "magic_all_sides": (
        "Ae .. Ay/.. Ma ../Ay .. Ae",
        ["s", "w", "e", "n"],
        5,
        {"can_enter_magic_walls": "ey"},
    ),
    "bush_mix": (
        "Ay Bu Bu Ae/Bu Un Ay Bu/Ar Bu Bl Un",
        ["e", "w", "s", "n"],
        6,
        {"enter_bush_success_prob": 0.6, "stumble_probability": 0.4},
    ),
    "switches": (
        "Ay Ki .. Ae/Pa .. Dk Ay/Ae dP Ps DC",
        ["e", "w", "n", "s", "e"],
        6,
        {},
    ),
    "control": (
        "Ay CB Ae ../CB .. CB Ae/.. Ay DC Ro",
        ["e", "w", "s", "n"],
        6,
        {},
    ),
    "control_kill": (
        "Ay CB Ae Ki/.. Ae .. Ay/Pa Un dC ..",
        ["e", "w", "n", "e"],
        6,
        {},
    ),
    "balls_boxes": (
        "Ay Br Xg Ae/Kr .. Xb ../Lr Ay Be Ae",
        ["e", "e", "n", "w"],
        6,
        {},
    ),
}


def synthetic_config(name: str) -> dict[str, Any]:
    """The YAML configuration of the synthetic world ``name`` (walled map)."""
    interior, orientations, max_steps, extra = SYNTHETIC[name]
    rows = [r.strip() for r in interior.split("/")]
    wall = " ".join(["We"] * (len(rows[0].split()) + 2))
    grid = [wall] + [f"We {r} We" for r in rows] + [wall]
    config = {"map": "\n".join(grid), "orientations": orientations}
    return {**config, "max_steps": max_steps, **extra}


def common_key(common: dict[str, Any]) -> str:
    """Canonical string of a state in common form (for hashing and comparing)."""
    return json.dumps(common, sort_keys=True, separators=(",", ":"))


# ---------------------------------------------------------------------- empo side


def _empo_static(world: Any) -> dict[str, Any]:
    from empo.worlds.multigrid.objects import Terrain

    spec = world.spec
    names = {
        Terrain.EMPTY: "empty",
        Terrain.WALL: "wall",
        Terrain.GOAL: "goal",
        Terrain.LAVA: "lava",
        Terrain.UNSTEADY: "unsteadyground",
        Terrain.SWITCH: "switch",
        Terrain.BUSH: "bush",
        Terrain.KILL_BUTTON: "killbutton",
        Terrain.PAUSE_SWITCH: "pauseswitch",
        Terrain.CONTROL_BUTTON: "controlbutton",
    }
    targets = {
        Terrain.KILL_BUTTON: "killbutton",
        Terrain.PAUSE_SWITCH: "pauseswitch",
        Terrain.CONTROL_BUTTON: "controlbutton",
    }
    cells = [[names.get(t, "?") for t in row] for row in spec.terrain]
    for (x, y), side in zip(
        spec.fixtures.get(Terrain.MAGIC_WALL, []), spec.magic_sides
    ):
        cells[y][x] = f"magicwall:{side}"
    placed = spec.fixtures.get(Terrain.DISABLING_SWITCH, [])
    for (x, y), target in zip(placed, spec.disabling_targets):
        cells[y][x] = f"disablingswitch:{targets[target]}"
    for x, y, color, _ in spec.doors:
        cells[y][x] = f"door:{color}"
    for kind, objects in (
        ("key", spec.keys),
        ("ball", spec.balls),
        ("box", spec.boxes),
    ):
        for x, y, color in objects:
            cells[y][x] = f"{kind}:{color}"
    for x, y in spec.blocks:
        cells[y][x] = "block"
    for x, y in spec.rocks:
        cells[y][x] = "rock"
    for a in spec.agents:
        cells[a.y][a.x] = f"agent:{a.color}"
    present = {t for row in spec.terrain for t in row}
    magic = Terrain.MAGIC_WALL in present
    return {
        "cells": cells,
        "agents": [
            [a.color, bool(a.can_push_rocks), bool(a.can_enter_magic_walls)]
            for a in spec.agents
        ],
        "actions": list(world.action_names[0]),
        "max_steps": spec.max_steps,
        "stumble": [spec.stumble_probability] if Terrain.UNSTEADY in present else [],
        "solidify": [spec.solidify_probability] if magic else [],
        "magic_entry": [world.layout.magic_entry_prob] if magic else [],
        "bush": [spec.enter_bush_success_prob] if Terrain.BUSH in present else [],
    }


def empo_to_common(world: Any, row: list[int]) -> dict[str, Any]:
    """Map one empo state row to the common form (see the worker's docstring)."""
    from empo.worlds.multigrid.objects import DoorState, Terrain

    spec, lay, w = world.spec, world.layout, world.spec.width
    pickables = (
        [("key", c) for _, _, c in spec.keys]
        + [("ball", c) for _, _, c in spec.balls]
        + [("box", c) for _, _, c in spec.boxes]
    )
    agents = []
    for i in range(len(spec.agents)):
        pos, d, dead, carry = row[1 + 4 * i : 5 + 4 * i]
        paused = row[lay.paused_col + i] if lay.n_pause else 0
        forced = row[lay.forced_col + i] if lay.n_control else -1
        carried = list(pickables[carry]) if carry >= 0 else None
        agents.append(
            [pos % w, pos // w, d, int(dead), paused, None if forced < 0 else forced]
            + [carried]
        )
    doors = [
        [x, y, DoorState(row[lay.door_col + k]).name.lower()]
        for k, (x, y, _, _) in enumerate(spec.doors)
    ]
    objects = [
        [kind, row[lay.key_col + k] % w, row[lay.key_col + k] // w, color]
        for k, (kind, color) in enumerate(pickables)
        if row[lay.key_col + k] >= 0
    ]
    push = row[lay.push_col : lay.push_end]

    def fixture(kind: Terrain, col: int, stride: int) -> list[list[Any]]:
        placed = spec.fixtures.get(kind, [])
        return sorted(
            [x, y] + row[col + stride * j : col + stride * (j + 1)]
            for j, (x, y) in enumerate(placed)
        )

    control = [
        e[:3] + [None if e[3] < 0 else e[3], None if e[4] < 0 else e[4], e[5]]
        for e in fixture(Terrain.CONTROL_BUTTON, lay.control_col, 4)
    ]
    return {
        "t": row[0],
        "agents": agents,
        "doors": sorted(doors),
        "objects": sorted(objects),
        "blocks": sorted([[c % w, c // w] for c in push[: lay.n_blocks]]),
        "rocks": sorted([[c % w, c // w] for c in push[lay.n_blocks :]]),
        "bushes": fixture(Terrain.BUSH, lay.bush_col, 1),
        "magic": fixture(Terrain.MAGIC_WALL, lay.magic_col, 1),
        "kill": fixture(Terrain.KILL_BUTTON, lay.kill_col, 1),
        "pause": fixture(Terrain.PAUSE_SWITCH, lay.pause_col, 2),
        "control": sorted(control),
    }


def deviation_reason(
    world: Any, common: dict[str, Any], actions: tuple[int, ...]
) -> str | None:
    """Why a pair may differ by one of empo's documented deviations, or ``None``.

    ``terrain``: a block, rock or floor object on a goal, lava, unsteady, switch or
    door cell (empo keeps terrain under objects). ``magic all sides``: an agent that
    may enter magic walls moves forward into an active ``Ma`` wall (the research
    code's shortcut paths ignore such attempts). ``kill or pause order``: a yellow
    agent toggles an enabled kill button or pause switch while every other active
    agent only turns (the research code's shortcut then runs the agents in index
    order instead of a random order). ``unpaused``: an agent paused at the start of
    the step chooses an action while another agent may unpause it (the research
    code lets it act when the step has no conflict and no random move and it comes
    after the unpausing agent in index order; empo never does).
    """
    from empo.worlds.multigrid.objects import Terrain

    terrain, spec = world.spec.terrain, world.spec
    cells = common["blocks"] + common["rocks"] + [o[1:3] for o in common["objects"]]
    under = [terrain[y][x] for x, y in cells]
    if any(t not in (Terrain.EMPTY, Terrain.BUSH) for t in under):
        return "terrain"
    kinds = world.layout.action_kinds.tolist()
    steps = [(1, 0), (0, 1), (-1, 0), (0, -1)]
    active, toggles = [], False
    magic = {tuple(m[:2]): m[2] for m in common["magic"]}
    placed = map(tuple, spec.fixtures.get(Terrain.MAGIC_WALL, []))
    sides = dict(zip(placed, spec.magic_sides))
    triggers = {tuple(k[:2]): k[2] for k in common["kill"]}
    triggers.update({tuple(p[:2]): p[3] for p in common["pause"]})
    switched_on = {tuple(p[:2]) for p in common["pause"] if p[2] and p[3]}
    placed = spec.fixtures.get(Terrain.DISABLING_SWITCH, [])
    unpausers = {
        tuple(c)
        for c, t in zip(placed, spec.disabling_targets)
        if switched_on
        if t == Terrain.PAUSE_SWITCH
    }
    waiting = unpausing = False
    for i, (x, y, d, dead, paused, forced, _) in enumerate(common["agents"]):
        kind = kinds[actions[i] if forced is None else forced]
        front = (x + steps[d][0], y + steps[d][1])
        waiting = waiting or (paused and not dead and kind != 0)
        if dead or paused or kind == 0:
            continue
        colour = spec.agents[i].color
        unpausing = (
            unpausing
            or kind == 6
            and (
                (colour == "yellow" and front in switched_on)
                or (colour == "grey" and front in unpausers)
            )
        )
        active.append((i, kind))
        if kind == 3 and spec.agents[i].can_enter_magic_walls:
            if sides.get(front) == 4 and magic.get(front):
                return "magic all sides"
        yellow = spec.agents[i].color == "yellow"
        toggles = toggles or (kind == 6 and yellow and triggers.get(front) == 1)
    grey = [i for i, _ in active if spec.agents[i].color == "grey"]
    moving = [i for i, kind in active if kind not in (1, 2)]
    if toggles and grey and len(moving) < 2:
        return "kill or pause order"
    return "unpaused" if waiting and unpausing else None


def _joint_actions(
    n_actions: int, n_agents: int, cap: int, rng: random.Random
) -> list[tuple[int, ...]]:
    total = n_actions**n_agents
    if total <= cap:
        return list(itertools.product(range(n_actions), repeat=n_agents))
    picked = rng.sample(range(total), cap)
    return [
        tuple((p // n_actions**k) % n_actions for k in reversed(range(n_agents)))
        for p in sorted(picked)
    ]


def explore(world: Any, n_states: int, seed: int) -> list[list[int]]:
    """Up to ``n_states`` distinct non-terminal states, BFS layers then random walks.

    Half of the budget goes to breadth-first layers from the initial state (each
    layer a seeded sample of the previous layer's successors under random joint
    actions), the rest to batched random walks with uniform joint actions sampled
    with :meth:`MultiGridWorld.sample`.
    """
    import torch

    gen = torch.Generator().manual_seed(seed)
    rng = random.Random(seed)
    init = world.initial_states()
    seen: dict[tuple[int, ...], None] = {tuple(init[0].tolist()): None}
    n_agents, n_actions = len(world.agents), len(world.action_names[0])
    frontier = init
    while len(seen) < n_states // 2 and frontier.shape[0] > 0:
        reps = 8
        states = frontier.repeat_interleave(reps, dim=0)
        actions = torch.randint(
            0, n_actions, (states.shape[0], n_agents), generator=gen
        )
        nxt, probs = world.transitions(states, actions)
        cand = nxt[probs > 0]
        cand = cand[~world.is_terminal(cand)]
        fresh = [r for r in dict.fromkeys(map(tuple, cand.tolist())) if r not in seen]
        rng.shuffle(fresh)
        fresh = fresh[: n_states // 2 - len(seen)]
        seen.update(dict.fromkeys(fresh))
        frontier = torch.tensor(fresh, dtype=torch.long).reshape(-1, init.shape[1])
    walks, stalls = 16, 0
    while len(seen) < n_states and stalls < 5:
        before = len(seen)
        states = init.repeat(walks, 1)
        for _ in range(world.max_steps - 1):
            actions = torch.randint(0, n_actions, (walks, n_agents), generator=gen)
            states = world.sample(states, actions, gen)
            states = states[~world.is_terminal(states)]
            for r in map(tuple, states.tolist()):
                if len(seen) < n_states:
                    seen.setdefault(r)
            if states.shape[0] == 0:
                break
            walks = states.shape[0]
        walks = 16
        stalls = stalls + 1 if len(seen) == before else 0
    return [list(r) for r in seen]


def random_states(world: Any, n_states: int, seed: int) -> list[list[int]]:
    """``n_states`` random valid states, reachable or not (in empo's encoding).

    Nothing is placed on the grid's outermost cells: the research code does not
    bound-check moves off the grid (``Grid.get`` wraps to the next row or raises),
    which matters only for maps without a wall border. Doors, bushes, magic walls,
    switches and buttons take random states (a control button awaits only a
    controlled agent; its controlled agent is grey, its action not ``still``); agents
    stand on distinct cells they could stand on (open doors, trampled bushes, intact
    bushes for agents that do not trample, magic walls for agents that may enter
    them; an agent on lava is terminated, the others with probability 1/5); grey
    agents are paused and forced at random where pause switches and control buttons
    exist; each pickable object is carried by an agent not already carrying one, or
    lies on a free empty cell, or (boxes) is opened; blocks and rocks lie on free
    empty cells (so no state has an object on other terrain); the step is uniform
    below the horizon.
    """
    from empo.worlds.multigrid.objects import DoorState, Terrain

    spec, lay, rng, w = world.spec, world.layout, random.Random(seed + 1), spec_w(world)
    terrain = {
        y * w + x: t for y, row in enumerate(spec.terrain) for x, t in enumerate(row)
    }
    inner = {
        c: t
        for c, t in terrain.items()
        if 0 < c % w < w - 1 and 0 < c // w < spec.height - 1
    }
    empty = [c for c, t in inner.items() if t == Terrain.EMPTY]
    steady = (Terrain.EMPTY, Terrain.GOAL, Terrain.UNSTEADY, Terrain.LAVA)
    walkable = [c for c, t in inner.items() if t in steady + (Terrain.SWITCH,)]
    door_cells = [y * w + x for x, y, _, _ in spec.doors]
    bush_cells = [y * w + x for x, y in spec.fixtures.get(Terrain.BUSH, [])]
    magic_cells = [y * w + x for x, y in spec.fixtures.get(Terrain.MAGIC_WALL, [])]
    n_pick, n_push = lay.n_pick, lay.n_push
    grey = [i for i, a in enumerate(spec.agents) if a.color == "grey"]
    non_still = [a for a, k in enumerate(lay.action_kinds.tolist()) if k != 0]
    rows = []
    while len(rows) < n_states:
        doors = [rng.choice(list(DoorState)) for _ in spec.doors]
        trampled = [rng.randrange(2) for _ in bush_cells]
        cells = []
        for i, a in enumerate(spec.agents):
            mine = walkable + [c for c, d in zip(door_cells, doors) if d == 0]
            tramples = bool(lay.can_trample[i])
            mine += [c for c, t in zip(bush_cells, trampled) if t or not tramples]
            mine += magic_cells if a.can_enter_magic_walls else []
            options = [c for c in mine if c not in cells]
            if not options:
                break
            cells.append(rng.choice(options))
        free = [c for c in empty if c not in cells]
        if len(cells) < len(spec.agents) or len(free) < n_pick + n_push:
            continue
        objects = rng.sample(free, n_pick + n_push)
        carriers = list(range(len(cells)))
        rng.shuffle(carriers)
        carry, picks = [-1] * len(cells), []
        for k in range(n_pick):
            draw = rng.random()
            if carriers and draw < 0.4:
                carry[carriers.pop()] = k
                picks.append(-1)
            elif k >= lay.box_col - lay.key_col and draw > 0.8:
                picks.append(-2)
            else:
                picks.append(objects[k])
        row = [rng.randrange(spec.max_steps)]
        for i, c in enumerate(cells):
            dead = terrain[c] == Terrain.LAVA or rng.random() < 0.2
            row += [c, rng.randrange(4), int(dead), carry[i]]
        row += [int(d) for d in doors] + picks
        row += sorted(objects[n_pick : n_pick + lay.n_blocks])
        row += sorted(objects[n_pick + lay.n_blocks :])
        row += trampled
        row += [rng.randrange(2) for _ in range(lay.n_magic + lay.n_kill)]
        row += [rng.randrange(2) for _ in range(2 * lay.n_pause)]
        for _ in range(lay.n_control):
            ctrl = rng.choice([-1] + grey)
            awaiting = int(ctrl >= 0 and rng.random() < 0.5)
            row += [rng.randrange(2), ctrl, rng.choice([-1] + non_still), awaiting]
        if lay.n_pause:
            row += [int(i in grey and rng.random() < 0.5) for i in range(len(cells))]
        if lay.n_control:
            row += [
                rng.choice(non_still) if i in grey and rng.random() < 0.3 else -1
                for i in range(len(cells))
            ]
        rows.append(row)
    return rows


def spec_w(world: Any) -> int:
    """Width of the world's grid."""
    return world.spec.width


def empo_distributions(
    world: Any, rows: list[list[int]], joint: list[list[tuple[int, ...]]]
) -> list[dict[str, float]]:
    """empo's successor distribution (common form) of every (state, joint action)."""
    import torch

    pairs = [(r, a) for r, acts in zip(rows, joint) for a in acts]
    out: list[dict[str, float]] = []
    for start in range(0, len(pairs), 1024):
        chunk = pairs[start : start + 1024]
        states = torch.tensor([p[0] for p in chunk], dtype=torch.long)
        actions = torch.tensor([p[1] for p in chunk], dtype=torch.long)
        nxt, probs = world.transitions(states, actions)
        for succ, prob in zip(nxt.tolist(), probs.tolist()):
            dist: dict[str, float] = {}
            for s, p in zip(succ, prob):
                if p > 0:
                    key = common_key(empo_to_common(world, s))
                    dist[key] = dist.get(key, 0.0) + p
            out.append(dist)
    return out


def coverage(
    world: Any, commons: list[dict[str, Any]], dists: list[dict[str, float]]
) -> dict[str, int]:
    """How many explored states show each feature, and how many pairs are random."""
    init = empo_to_common(world, world.initial_states()[0].tolist())
    fixtures = ("bushes", "magic", "kill", "pause", "control")
    counts = {
        "carry": sum(any(a[6] for a in c["agents"]) for c in commons),
        "door_changed": sum(c["doors"] != init["doors"] for c in commons),
        "object_moved": sum(c["objects"] != init["objects"] for c in commons),
        "pushed": sum(
            (c["blocks"], c["rocks"]) != (init["blocks"], init["rocks"])
            for c in commons
        ),
        "dead": sum(any(a[3] for a in c["agents"]) for c in commons),
        "paused": sum(any(a[4] for a in c["agents"]) for c in commons),
        "forced": sum(any(a[5] is not None for a in c["agents"]) for c in commons),
        "fixture_changed": sum(any(c[k] != init[k] for k in fixtures) for c in commons),
        "random_pairs": sum(len(d) > 1 for d in dists),
    }
    return {k: v for k, v in counts.items() if v}


def _dist_diff(a: dict[str, float], b: dict[str, float], tol: float) -> bool:
    return any(abs(a.get(k, 0.0) - b.get(k, 0.0)) > tol for k in set(a) | set(b))


def _fmt_dist(dist: dict[str, float]) -> str:
    return "\n".join(f"    {p!r:22}  {k}" for k, p in sorted(dist.items()))


def compare_world(
    name: str, path: Path, args: argparse.Namespace
) -> tuple[str, dict[str, Any], list[str]]:
    """Compare one world; return its status, counts and mismatch descriptions."""
    from empo.worlds.multigrid.builtin import from_file

    world = from_file(path)
    t0 = time.time()
    rng = random.Random(args.seed)
    rows = explore(world, args.states, args.seed)
    n_explored = len(rows)
    rows += random_states(world, args.random_states, args.seed)
    n_agents, n_actions = len(world.agents), len(world.action_names[0])
    per_state = max(1, min(args.joint_actions, args.max_pairs // len(rows)))
    joint = [_joint_actions(n_actions, n_agents, per_state, rng) for _ in rows]
    commons = [empo_to_common(world, r) for r in rows]
    ours = empo_distributions(world, rows, joint)
    job = {"path": str(path), "states": commons, "actions": joint}
    proc = subprocess.run(
        [args.python, str(WORKER), "--research", str(args.research)],
        input=json.dumps(job),
        capture_output=True,
        text=True,
        env={**os.environ, "MPLBACKEND": "Agg"},
    )
    if proc.returncode != 0:
        return "error", {"reason": proc.stderr[-2000:]}, []
    theirs = json.loads(proc.stdout)
    mine = _empo_static(world)
    mine["initial"] = empo_to_common(world, world.initial_states()[0].tolist())
    theirs["static"]["initial"] = theirs["initial"]
    problems = [
        f"static `{k}` differs:\n  research: {v}\n  empo:     {mine[k]}"
        for k, v in theirs["static"].items()
        if mine[k] != v
    ]
    names = world.action_names[0]
    counts = {
        "explored": n_explored,
        "random": len(rows) - n_explored,
        "pairs": len(ours),
        "mismatch": 0,
        "deviation": 0,
        "batch_dependent": 0,
        "research_error": 0,
    }
    row_of = {common_key(c): r for c, r in zip(commons, rows)}
    pairs = [(c, a) for c, acts in zip(commons, joint) for a in acts]
    shown = 0
    for (common, act), mine_d, their_d in zip(pairs, ours, theirs["results"]):
        if their_d is None or "error" in their_d:
            counts["research_error"] += 1
            problems.append(
                f"[research_error] state {common_key(common)}\n  actions "
                f"{[names[a] for a in act]}\n  {their_d or 'research: terminal'}"
            )
            continue
        if not _dist_diff(mine_d, their_d, args.tol):
            continue
        reason = deviation_reason(world, common, act)
        kind = "deviation" if reason else "mismatch"
        counts[kind] += 1
        if reason:
            counts[f"deviation ({reason})"] = counts.get(f"deviation ({reason})", 0) + 1
        alone = empo_distributions(world, [row_of[common_key(common)]], [[act]])[0]
        batch_dependent = not _dist_diff(alone, their_d, args.tol)
        counts["batch_dependent"] += int(batch_dependent)
        if shown < args.max_report:
            shown += 1
            note = " (this row alone in a batch: equals research)" * batch_dependent
            problems.append(
                f"[{kind}{': ' + reason if reason else ''}] state "
                f"{common_key(common)}\n  actions "
                f"{[names[a] for a in act]}\n  research:\n{_fmt_dist(their_d)}\n"
                f"  empo{note}:\n{_fmt_dist(mine_d)}"
            )
    counts.update(coverage(world, commons, ours))
    counts["seconds"] = round(time.time() - t0, 1)
    static_bad = any(not p.startswith("[") for p in problems)
    lenient = counts["deviation"] + counts["research_error"]
    failed = counts["mismatch"] or static_bad or (args.strict and lenient)
    return ("FAIL" if failed else "ok"), counts, problems


def world_list(args: argparse.Namespace, tmp: Path) -> list[tuple[str, Path]]:
    """All candidate worlds (name, YAML path), filtered by ``--worlds``."""
    import yaml

    worlds = [
        (f"research/{p.relative_to(args.research / 'multigrid_worlds')}", p)
        for p in sorted((args.research / "multigrid_worlds").rglob("*.yaml"))
    ]
    worlds += [
        (f"empo/{p.name}", p)
        for p in sorted((ROOT / "empo/worlds/multigrid/worlds").glob("*.yaml"))
    ]
    for name in SYNTHETIC:
        path = tmp / f"{name}.yaml"
        path.write_text(yaml.safe_dump(synthetic_config(name)))
        worlds.append((f"synthetic/{name}", path))
    if args.worlds:
        worlds = [w for w in worlds if any(s in w[0] for s in args.worlds)]
    return worlds


def main() -> int:
    """Command-line entry point (see the module docstring)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--research", type=Path, required=True)
    parser.add_argument("--python", default=sys.executable)
    parser.add_argument("--worlds", nargs="*", default=[])
    parser.add_argument("--states", type=int, default=150)
    parser.add_argument("--random-states", type=int, default=100)
    parser.add_argument("--joint-actions", type=int, default=343)
    parser.add_argument("--max-pairs", type=int, default=30000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--tol", type=float, default=1e-9)
    parser.add_argument("--max-report", type=int, default=5)
    parser.add_argument("--report", type=Path)
    parser.add_argument("--strict", action="store_true")
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT))
    import torch

    torch.set_num_threads(1)
    args.research = args.research.resolve()
    lines, failed = [], False
    totals = {"worlds": 0, "pairs": 0, "mismatch": 0, "deviation": 0}
    totals["research_error"] = 0
    with tempfile.TemporaryDirectory() as tmp:
        for name, path in world_list(args, Path(tmp)):
            status, counts, problems = compare_world(name, path, args)
            failed = failed or status in ("FAIL", "error")
            totals["worlds"] += 1
            for key, value in counts.items():
                if key in totals or key.startswith("deviation ("):
                    totals[key] = totals.get(key, 0) + value
            summary = ", ".join(f"{k}={v}" for k, v in counts.items())
            print(f"{status:8s} {name}: {summary}", flush=True)
            lines.append(f"## {status} {name}\n\n{summary}\n")
            lines += [f"```\n{p}\n```\n" for p in problems]
            for p in problems:
                print("  " + p.replace("\n", "\n  "), flush=True)
    total = "total: " + ", ".join(f"{k}={v}" for k, v in totals.items())
    print(total, flush=True)
    lines.append(f"## {total}\n")
    if args.report:
        args.report.write_text("\n".join(lines))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
