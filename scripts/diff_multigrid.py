"""Differential test of empo's MultiGrid world against the public research code.

Not part of CI: it needs a copy of the research code (mensch72/empo) and a separate
Python environment in which that code runs. It compares, one step at a time, the
explicit transition model of :class:`empo.worlds.multigrid.world.MultiGridWorld`
with the research code's ``MultiGridEnv.transition_probabilities``
(``vendor/multigrid/gym_multigrid/multigrid.py``).

How it works
------------
The script runs in two processes. The main process (empo's venv) loads each world
with :func:`empo.worlds.multigrid.builtin.from_file` and picks the states to test:
``--states`` reachable ones (seeded breadth-first layers from the initial state, then
batched random walks) and ``--random-states`` random valid ones (agents, keys,
blocks, rocks and door states placed at random; these reach interactions that walks
rarely do). For each state it takes every joint action, or a seeded random subset of
``min(--joint-actions, --max-pairs / states)`` of them, and computes empo's successor
distribution with ``transitions`` (in batches, as the compiler does). It then starts
this same file with ``--python`` (the research venv) in worker mode; the worker
builds the research environment from the same YAML file, sets each state and
returns ``transition_probabilities`` for the same pairs as JSON. Both sides are
mapped to a common form: step; per agent cell, direction, terminated flag and the
colour of the carried key; door states; floor keys (cell and colour); block and rock
cells. Distributions must agree outcome by outcome (``|Δp| <= --tol``, default
``1e-9``). A static check compares the parsed layout cell by cell, agent colours,
rock pushing, action names, the horizon, the stumble probability and the initial
state. Each mismatch is recomputed by empo alone (a batch of one row); if that
equals the research result the mismatch is counted as ``batch_dependent``. Each
world's line also counts covered features (states with a carried key, a changed
door, a dropped key, a pushed object, a terminated agent; pairs with more than one
outcome). A research-code exception for a pair is counted as ``research_error``
(like ``deviation``, it fails the run only with ``--strict``).

Research-code quirks accounted for
----------------------------------
* Its compact state omits keys on the floor and its ``set_state`` leaves the grid's
  keys as they are, and objects it moves overwrite terrain (goal, lava, unsteady
  ground, open doors) in its grid. The worker therefore wraps ``get_state`` to append
  the floor keys, and ``set_state`` to rebuild the grid from the pristine layout
  (restoring door states, then the research ``set_state``, then the floor keys)
  before every use, so each query starts from exactly the state asked for.
* empo keeps terrain under objects (documented deviation in
  :mod:`empo.worlds.multigrid.world`). Pairs whose state has a block, rock or floor
  key on a goal, lava, unsteady or door cell are therefore *deviation-prone*: their
  mismatches are counted as ``deviation`` and fail the run only with ``--strict``.
* Worlds with objects empo does not support (balls, boxes, bushes, switches, ...) are
  skipped. Rewards, goals and the research code's ``U_r``/float16 conventions do not
  enter: only dynamics are compared.

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
import types
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent

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


# ---------------------------------------------------------------- research worker


def _load_research(research: Path) -> types.ModuleType:
    """Import the research code's ``gym_multigrid.multigrid`` without its package."""
    os.environ.setdefault("MPLBACKEND", "Agg")
    stub = types.ModuleType("empo")
    stub.__path__ = [str(research / "src" / "empo")]
    sys.modules["empo"] = stub
    sys.path.insert(0, str(research / "vendor" / "multigrid"))
    import gym_multigrid.multigrid as mg

    return mg


def _research_env(mg: types.ModuleType, config: dict[str, Any]) -> Any:
    """Build the research environment and wrap ``get_state``/``set_state``."""
    config = {k: v for k, v in config.items() if k != "possible_goals"}
    env = mg.MultiGridEnv(config=config)
    movable = {"agent", "block", "rock", "key", "ball", "box"}
    pristine = [
        [
            (
                None
                if env.grid.get(i, j) is None or env.grid.get(i, j).type in movable
                else env.grid.get(i, j)
            )
            for i in range(env.width)
        ]
        for j in range(env.height)
    ]
    doors = {pos: obj for pos, obj in env._mutable_objects if obj.type == "door"}

    def get_state() -> tuple:
        keys = []
        for j in range(env.height):
            for i in range(env.width):
                cell = env.grid.get(i, j)
                if cell is not None and cell.type == "key":
                    keys.append((i, j, cell.color))
        return mg.MultiGridEnv.get_state(env) + (tuple(sorted(keys)),)

    def set_state(state: tuple) -> None:
        for j in range(env.height):
            for i in range(env.width):
                env.grid.set(i, j, pristine[j][i])
                env.terrain_grid.set(i, j, None)
        for agent in env.agents:
            agent.pos = None
        for entry in state[3]:
            if entry[0] == "door":
                doors[(entry[1], entry[2])].is_open = entry[3]
                doors[(entry[1], entry[2])].is_locked = entry[4]
        mg.MultiGridEnv.set_state(env, state[:4])
        for x, y, color in state[4]:
            env.grid.set(x, y, mg.Key(env.objects, color=color))

    env.get_state = get_state
    env.set_state = set_state
    return env


def _research_to_common(state: tuple) -> dict[str, Any]:
    agents = [
        [a[0], a[1], a[2], int(bool(a[3])), a[7] if a[6] == "key" else a[6]]
        for a in state[1]
    ]
    doors = [
        [m[1], m[2], "open" if m[3] else ("locked" if m[4] else "closed")]
        for m in state[3]
        if m[0] == "door"
    ]
    return {
        "t": state[0],
        "agents": agents,
        "doors": sorted(doors),
        "keys": sorted([list(k) for k in state[4]]),
        "blocks": sorted([[m[1], m[2]] for m in state[2] if m[0] == "block"]),
        "rocks": sorted([[m[1], m[2]] for m in state[2] if m[0] == "rock"]),
    }


def _common_to_research(env: Any, common: dict[str, Any]) -> tuple:
    agents = tuple(
        (x, y, d, bool(dead), True, False, "key" if c else None, c, None)
        for x, y, d, dead, c in common["agents"]
    )
    mobile = sorted(
        [("block", x, y) for x, y in common["blocks"]]
        + [("rock", x, y) for x, y in common["rocks"]]
    )
    door_state = {(x, y): s for x, y, s in common["doors"]}
    mutable = tuple(
        ("door", x, y, door_state[(x, y)] == "open", door_state[(x, y)] == "locked")
        for (x, y), obj in env._mutable_objects
        if obj.type == "door"
    )
    keys = tuple(sorted((x, y, c) for x, y, c in common["keys"]))
    return (common["t"], agents, tuple(mobile), mutable, keys)


def _research_static(env: Any) -> dict[str, Any]:
    cells = []
    for j in range(env.height):
        row = []
        for i in range(env.width):
            cell = env.grid.get(i, j)
            if cell is None:
                row.append("empty")
            elif cell.type in ("door", "key", "agent"):
                row.append(f"{cell.type}:{cell.color}")
            else:
                row.append(cell.type)
        cells.append(row)
    stumble = sorted(
        {
            env.grid.get(i, j).stumble_probability
            for j in range(env.height)
            for i in range(env.width)
            if env.grid.get(i, j) is not None
            and env.grid.get(i, j).type == "unsteadyground"
        }
    )
    return {
        "cells": cells,
        "agents": [[a.color, bool(a.can_push_rocks)] for a in env.agents],
        "actions": list(env.actions.available),
        "max_steps": env.max_steps,
        "stumble": stumble,
    }


def research_worker(research: Path) -> None:
    """Worker mode: read a job from stdin, write the research code's answers."""
    import yaml

    job = json.load(sys.stdin)
    mg = _load_research(research)
    config = yaml.safe_load(Path(job["path"]).read_text())
    env = _research_env(mg, config)
    static = _research_static(env)
    initial = _research_to_common(env.get_state())
    results = []
    for common, joint_actions in zip(job["states"], job["actions"]):
        state = _common_to_research(env, common)
        for actions in joint_actions:
            try:
                out = env.transition_probabilities(state, list(actions))
            except Exception as err:  # a research-code crash is a finding, not ours
                results.append({"error": repr(err)})
                continue
            dist: dict[str, float] = {}
            for prob, succ in out or []:
                key = common_key(_research_to_common(succ))
                dist[key] = dist.get(key, 0.0) + prob
            results.append(None if out is None else dist)
    json.dump({"static": static, "initial": initial, "results": results}, sys.stdout)


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
    }
    cells = [[names.get(t, "?") for t in row] for row in spec.terrain]
    for x, y, color, _ in spec.doors:
        cells[y][x] = f"door:{color}"
    for x, y, color in spec.keys:
        cells[y][x] = f"key:{color}"
    for x, y in spec.blocks:
        cells[y][x] = "block"
    for x, y in spec.rocks:
        cells[y][x] = "rock"
    for a in spec.agents:
        cells[a.y][a.x] = f"agent:{a.color}"
    unsteady = any(t == Terrain.UNSTEADY for row in spec.terrain for t in row)
    return {
        "cells": cells,
        "agents": [[a.color, bool(a.can_push_rocks)] for a in spec.agents],
        "actions": list(world.action_names[0]),
        "max_steps": spec.max_steps,
        "stumble": [spec.stumble_probability] if unsteady else [],
    }


def empo_to_common(world: Any, row: list[int]) -> dict[str, Any]:
    """Map one empo state row to the common form."""
    from empo.worlds.multigrid.objects import DoorState

    spec, lay, w = world.spec, world.layout, world.spec.width
    agents = []
    for i in range(len(spec.agents)):
        pos, d, dead, carry = row[1 + 4 * i : 5 + 4 * i]
        color = spec.keys[carry][2] if carry >= 0 else None
        agents.append([pos % w, pos // w, d, int(dead), color])
    doors = [
        [x, y, DoorState(row[lay.door_col + k]).name.lower()]
        for k, (x, y, _, _) in enumerate(spec.doors)
    ]
    keys = [
        [row[lay.key_col + k] % w, row[lay.key_col + k] // w, color]
        for k, (_, _, color) in enumerate(spec.keys)
        if row[lay.key_col + k] >= 0
    ]
    push = row[lay.push_col :]
    return {
        "t": row[0],
        "agents": agents,
        "doors": sorted(doors),
        "keys": sorted(keys),
        "blocks": sorted([[c % w, c // w] for c in push[: lay.n_blocks]]),
        "rocks": sorted([[c % w, c // w] for c in push[lay.n_blocks :]]),
    }


def deviation_prone(world: Any, common: dict[str, Any]) -> bool:
    """Whether a block, rock or floor key lies on goal, lava, unsteady or door cells."""
    from empo.worlds.multigrid.objects import Terrain

    terrain = world.spec.terrain
    cells = common["blocks"] + common["rocks"] + [k[:2] for k in common["keys"]]
    return any(terrain[y][x] != Terrain.EMPTY for x, y in cells)


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
    which matters only for maps without a wall border. Agents stand on distinct
    passable cells (open doors included; an agent on lava
    is terminated, no other is), doors take any state, each key is carried by an
    agent not already carrying one or lies on a free empty cell, blocks and rocks lie
    on free empty cells (never on goal, lava, unsteady or door cells, so no state is
    deviation-prone), the step is uniform below the horizon.
    """
    from empo.worlds.multigrid.objects import DoorState, Terrain

    spec, rng, w = world.spec, random.Random(seed + 1), world.spec.width
    terrain = {
        y * w + x: t for y, row in enumerate(spec.terrain) for x, t in enumerate(row)
    }
    inner = {
        c: t
        for c, t in terrain.items()
        if 0 < c % w < w - 1 and 0 < c // w < spec.height - 1
    }
    empty = [c for c, t in inner.items() if t == Terrain.EMPTY]
    walkable = [
        c
        for c, t in inner.items()
        if t in (Terrain.EMPTY, Terrain.GOAL, Terrain.UNSTEADY, Terrain.LAVA)
    ]
    door_cells = [y * w + x for x, y, _, _ in spec.doors]
    n_obj = len(spec.keys) + len(spec.blocks) + len(spec.rocks)
    rows = []
    while len(rows) < n_states:
        doors = [rng.choice(list(DoorState)) for _ in spec.doors]
        cells = walkable + [c for c, d in zip(door_cells, doors) if d == DoorState.OPEN]
        agents = rng.sample(cells, len(spec.agents))
        free = [c for c in empty if c not in agents]
        if len(free) < n_obj:
            continue
        objects = rng.sample(free, n_obj)
        row = [rng.randrange(spec.max_steps)]
        carriers = list(range(len(agents)))
        rng.shuffle(carriers)
        carry = [-1] * len(agents)
        keys = []
        for k in range(len(spec.keys)):
            if carriers and rng.random() < 0.5:
                carry[carriers.pop()] = k
                keys.append(-1)
            else:
                keys.append(objects[k])
        for i, c in enumerate(agents):
            row += [c, rng.randrange(4), int(terrain[c] == Terrain.LAVA), carry[i]]
        row += [int(d) for d in doors] + keys
        n_keys, n_blocks = len(spec.keys), len(spec.blocks)
        row += sorted(objects[n_keys : n_keys + n_blocks])
        row += sorted(objects[n_keys + n_blocks :])
        rows.append(row)
    return rows


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
    return {
        "carry": sum(any(a[4] for a in c["agents"]) for c in commons),
        "door_changed": sum(c["doors"] != init["doors"] for c in commons),
        "key_dropped": sum(
            any(k not in init["keys"] for k in c["keys"]) for c in commons
        ),
        "pushed": sum(
            (c["blocks"], c["rocks"]) != (init["blocks"], init["rocks"])
            for c in commons
        ),
        "dead": sum(any(a[3] for a in c["agents"]) for c in commons),
        "random_pairs": sum(len(d) > 1 for d in dists),
    }


def _dist_diff(a: dict[str, float], b: dict[str, float], tol: float) -> bool:
    return any(abs(a.get(k, 0.0) - b.get(k, 0.0)) > tol for k in set(a) | set(b))


def _fmt_dist(dist: dict[str, float]) -> str:
    return "\n".join(f"    {p!r:22}  {k}" for k, p in sorted(dist.items()))


def compare_world(
    name: str, path: Path, args: argparse.Namespace
) -> tuple[str, dict[str, Any], list[str]]:
    """Compare one world; return its status, counts and mismatch descriptions."""
    from empo.worlds.multigrid.builtin import from_file

    try:
        world = from_file(path)
    except ValueError as err:
        if "unsupported MultiGrid objects" in str(err):
            return "skipped", {"reason": str(err).split(": ", 1)[-1]}, []
        raise
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
        [args.python, str(Path(__file__).resolve()), "--worker"]
        + ["--research", str(args.research)],
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
        kind = "deviation" if deviation_prone(world, common) else "mismatch"
        counts[kind] += 1
        alone = empo_distributions(world, [row_of[common_key(common)]], [[act]])[0]
        batch_dependent = not _dist_diff(alone, their_d, args.tol)
        counts["batch_dependent"] += int(batch_dependent)
        if shown < args.max_report:
            shown += 1
            note = " (this row alone in a batch: equals research)" * batch_dependent
            problems.append(
                f"[{kind}] state {common_key(common)}\n  actions "
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
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        research_worker(args.research)
        return 0
    sys.path.insert(0, str(ROOT))
    import torch

    torch.set_num_threads(1)
    args.research = args.research.resolve()
    lines, failed = [], False
    with tempfile.TemporaryDirectory() as tmp:
        for name, path in world_list(args, Path(tmp)):
            status, counts, problems = compare_world(name, path, args)
            failed = failed or status in ("FAIL", "error")
            summary = ", ".join(f"{k}={v}" for k, v in counts.items())
            print(f"{status:8s} {name}: {summary}", flush=True)
            lines.append(f"## {status} {name}\n\n{summary}\n")
            lines += [f"```\n{p}\n```\n" for p in problems]
            for p in problems:
                print("  " + p.replace("\n", "\n  "), flush=True)
    if args.report:
        args.report.write_text("\n".join(lines))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
